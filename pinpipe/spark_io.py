"""Spark session, the explicit schemas the batch CSVs are read with, and writing the results."""
from __future__ import annotations

import atexit
import csv
import functools
import hashlib
import json
import os
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from . import csv_parts
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

    SPARK_DRIVER_MEMORY (default 4g) sizes the local JVM's heap, all of it reserved at start: 1,000,000 pins
    do not fit in Spark's 1g default.
    """
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    memory = os.environ.get("SPARK_DRIVER_MEMORY", "4g")
    spark = (
        SparkSession.builder.master(master).appName(app_name)
        .config("spark.driver.memory", memory)
        # The whole heap from the start: growing it step by step on the first large batch cost ~2 s at 1M rows.
        .config("spark.driver.extraJavaOptions", f"-Xms{memory}")
        # One batch's geo or user columns fit in memory: broadcast them instead of shuffling both sides.
        .config("spark.sql.autoBroadcastJoinThreshold", "128MB")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.ansi.enabled", "true")
        .getOrCreate()
    )
    # Two shuffle partitions per core, not Spark's 200: a batch is small, and per-task overhead would dominate
    # (on 2 cores, 4 instead of 8 took ~1 s off the nine questions at 1M rows).
    spark.conf.set("spark.sql.shuffle.partitions", str(2 * spark.sparkContext.defaultParallelism))
    return spark


def read_raw(spark: SparkSession, input_dir: str, kind: str) -> DataFrame:
    """One of the extractor's CSVs, every column as text."""
    path = f"{str(input_dir).rstrip('/')}/{CSV_FILES[kind]}"
    return spark.read.options(**CSV_OPTIONS).schema(RAW_SCHEMAS[kind]).csv(_parallel_parts(spark, path))


def _parallel_parts(spark: SparkSession, path: str) -> list[str]:
    """A large local file as part files cut at record boundaries, so it is parsed by several tasks and the
    frames built on it have several partitions; anything else (small, remote, on a cluster) as it is.

    The parts live in the temp directory, are reused while the file is unchanged, and go when the process ends.
    """
    file = Path(path)
    if on_databricks() or not spark.sparkContext.master.startswith("local") or not file.is_file():
        return [path]
    stat = file.stat()
    parts = csv_parts.parts_for(stat.st_size, spark.sparkContext.defaultParallelism)
    if parts == 1:
        return [path]
    key = f"{file.resolve()}:{stat.st_ino}:{stat.st_size}:{stat.st_mtime_ns}:{parts}"
    out = _parts_root() / hashlib.sha256(key.encode()).hexdigest()[:16]
    done = out / "complete"
    if not done.exists():
        shutil.rmtree(out, ignore_errors=True)
        files = csv_parts.split(file, out, parts)
        done.write_text("\n".join(p.name for p in files))
    return [str(out / name) for name in done.read_text().splitlines()]


@functools.cache
def _parts_root() -> Path:
    root = Path(tempfile.mkdtemp(prefix="pinpipe-parts-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    return root


@dataclass(frozen=True)
class Collected:
    """A small result brought to the driver: its columns and rows, values exactly as Spark computed them."""

    columns: list[str]
    rows: list[tuple]

    def to_pandas(self):
        import pandas as pd

        return pd.DataFrame(self.rows, columns=self.columns)


def collect_all(frames: dict[str, DataFrame], threads: int = 4) -> dict[str, Collected]:
    """Collect several small results at once (one Spark job each, from threads): their many short stages
    overlap, so both the cores and the scheduler stay busy."""
    def collect(df: DataFrame) -> Collected:
        return Collected(df.columns, [tuple(row) for row in df.collect()])

    with ThreadPoolExecutor(max_workers=threads) as pool:
        return dict(zip(frames, pool.map(collect, frames.values())))


def write_result_csv(result: Collected, path: Path) -> int:
    """A small result as one plain RFC 4180 file (not a Spark folder); values exactly as computed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL, doublequote=True)
        writer.writerow(result.columns)
        writer.writerows(["" if v is None else v for v in row] for row in result.rows)
    os.replace(tmp, path)
    return len(result.rows)


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


# The cleaned columns with few distinct values. Only these get Parquet dictionary encoding: for the others
# (ids, texts, timestamps, coordinates) a dictionary is built and then abandoned, which cost ~9 % of the save.
FEW_VALUES = {"pin": ("is_image_or_video", "category"), "geo": ("country",), "user": ("age",)}


def save_cleaned(cleaned: dict[str, DataFrame], output_dir: str) -> dict[str, DataFrame]:
    """The cleaned frames to <output_dir>/../cleaned/<name> as Parquet, all at once (one job per frame, from
    threads); returns them read back, so the questions scan a few compact columns instead of the CSVs again."""
    cleaned_dir = output_path(output_dir).parent / "cleaned"

    def save(item: tuple[str, DataFrame]) -> DataFrame:
        name, df = item
        location = spark_path(cleaned_dir / name)
        writer = df.write.mode("overwrite").option("parquet.enable.dictionary", "false")
        for column in FEW_VALUES.get(name, ()):
            writer = writer.option(f"parquet.enable.dictionary#{column}", "true")
        writer.parquet(location)
        return df.sparkSession.read.parquet(location)

    with ThreadPoolExecutor(max_workers=len(cleaned)) as pool:
        return dict(zip(cleaned, pool.map(save, cleaned.items())))


def write_results(results: dict[str, Collected], output_dir: str, input_rows: dict[str, int]) -> dict[str, int]:
    """Each result to <output_dir>/<name>.csv, and summary.json with the rows read and written (what
    run_pipeline.sh reports)."""
    out = output_path(output_dir)
    rows = {name: write_result_csv(result, out / f"{name}.csv") for name, result in results.items()}
    (out / "summary.json").write_text(json.dumps({"input_rows": input_rows, "result_rows": rows}, indent=2) + "\n")
    return rows
