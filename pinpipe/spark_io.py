"""Spark session, the explicit schemas the batch CSVs are read with, and writing the results."""
from __future__ import annotations

import csv
import json
import os
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from .schema import CSV_FILES, FIELDS

# Raw frames are all text: the cleaning step owns every conversion (try_cast), so dirt never fails a read.
RAW_SCHEMAS = {kind: T.StructType([T.StructField(name, T.StringType(), True) for name in names])
               for kind, names in FIELDS.items()}

# RFC 4180 as the extractor writes it: CRLF between rows, fields may span lines, quotes are doubled.
# lineSep must be CRLF: Spark's default turns a CRLF inside a quoted field into a bare LF.
CSV_OPTIONS = {"header": "true", "multiLine": "true", "quote": '"', "escape": '"', "encoding": "UTF-8",
               "lineSep": "\r\n",
               "mode": "PERMISSIVE", "ignoreLeadingWhiteSpace": "false", "ignoreTrailingWhiteSpace": "false"}


def on_databricks() -> bool:
    return "DATABRICKS_RUNTIME_VERSION" in os.environ


def get_spark(master: str = "local[*]", app_name: str = "pinterest-batch") -> SparkSession:
    """The session Databricks (or a caller) already has, else a new one on `master`.

    SPARK_DRIVER_MEMORY (default 4g) sizes the local JVM: a multi-line CSV file is parsed by one task, and
    1,000,000 pins do not fit in Spark's 1g default.
    """
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    return (
        SparkSession.builder.master(master).appName(app_name)
        .config("spark.driver.memory", os.environ.get("SPARK_DRIVER_MEMORY", "4g"))
        .config("spark.sql.shuffle.partitions", "8")  # small batches: 200 shuffle tasks would dominate
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.ansi.enabled", "true")
        .getOrCreate()
    )


def read_raw(spark: SparkSession, input_dir: str, kind: str) -> DataFrame:
    """One of the extractor's CSVs, every column as text."""
    path = f"{str(input_dir).rstrip('/')}/{CSV_FILES[kind]}"
    return spark.read.options(**CSV_OPTIONS).schema(RAW_SCHEMAS[kind]).csv(path)


def write_result_csv(df: DataFrame, path: Path) -> int:
    """A small result as one plain RFC 4180 file (not a Spark folder); values exactly as computed."""
    rows = df.collect()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL, doublequote=True)
        writer.writerow(df.columns)
        writer.writerows(["" if v is None else v for v in row] for row in rows)
    os.replace(tmp, path)
    return len(rows)


def materialize(*frames: DataFrame) -> list[int]:
    """Count (and so fill the cache of) several frames at once: one Spark job per frame, run from threads,
    so the single-task parses of multi-line CSV files use every core instead of one after another."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=len(frames)) as pool:
        return list(pool.map(lambda df: df.count(), frames))


def output_path(output_dir: str) -> Path:
    """Where result files go. On Databricks a relative directory goes under /dbfs/FileStore/, the driver's
    view of DBFS, so the files outlive the cluster and Spark sees them at dbfs:/FileStore/."""
    path = Path(output_dir)
    if on_databricks() and not path.is_absolute():
        return Path("/dbfs/FileStore") / path
    return path


def spark_path(path: Path) -> str:
    """The same location as Spark names it (/dbfs/x is dbfs:/x on Databricks)."""
    text = str(path)
    return "dbfs:" + text[len("/dbfs"):] if text.startswith("/dbfs/") else text


def write_outputs(results: dict[str, DataFrame], cleaned: dict[str, DataFrame], output_dir: str) -> dict[str, int]:
    """Each result to <output_dir>/<name>.csv, the cleaned frames to <output_dir>/../cleaned/ as Parquet,
    and summary.json with the rows read and written (what run_pipeline.sh reports)."""
    out = output_path(output_dir)
    rows = {name: write_result_csv(df, out / f"{name}.csv") for name, df in results.items()}
    input_rows = {}
    for name, df in cleaned.items():
        df.write.mode("overwrite").parquet(spark_path(out.parent / "cleaned" / name))
        input_rows[name] = df.count()
    (out / "summary.json").write_text(json.dumps({"input_rows": input_rows, "result_rows": rows}, indent=2) + "\n")
    return rows
