"""Reading a batch and writing what comes of it: the three CSV files read with explicit all-text schemas and
their headers checked, the cleaned tables saved as Parquet, the small results collected and written out. The
session they run on comes from session.py."""
from __future__ import annotations

import atexit
import contextlib
import csv
import functools
import hashlib
import json
import os
import re
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from pinpipe.common import csv_format
from pinpipe.common.schema import CSV_FILES, FIELDS
from pinpipe.spark import csv_header, csv_parts, locations
from pinpipe.spark.session import is_connect, local_cores, on_databricks, quiet_logger

# Raw frames are all text: the cleaning step owns every conversion (try_cast), so dirt never fails a read.
RAW_SCHEMAS = {kind: T.StructType([T.StructField(name, T.StringType(), True) for name in names])
               for kind, names in FIELDS.items()}

# RFC 4180: fields may span lines, quotes are doubled. The line separator is the file's own (CRLF as the
# extractor writes, or LF), set per file from its header row: Spark's default turns a CRLF inside a quoted
# field into a bare LF, and a CRLF separator on an LF file reads the whole file as one row.
CSV_OPTIONS = {**csv_format.SPARK, "multiLine": "true", "mode": "PERMISSIVE", "ignoreLeadingWhiteSpace": "false",
               "ignoreTrailingWhiteSpace": "false"}


def single_partition(df: DataFrame) -> DataFrame:
    """`df` in one partition, which every aggregation, window, sort and sort-merge join accepts as it is: Spark
    plans no shuffle, so a question on a small batch runs as one stage of one task instead of a job per
    exchange (analytics.all_results(small=True) joins by sort-merge, as a broadcast would be a job too)."""
    return df.coalesce(1)


def batch_bytes(input_dir: str) -> int | None:
    """The size of a batch's three CSV files (or part-file folders) when the driver can read them; else None."""
    try:
        location = locations.resolve(str(input_dir), on_databricks())
    except locations.LocationError:
        return None
    if location.local is None:
        return None
    total = 0
    for name in CSV_FILES.values():
        path = Path(location.local) / name
        if path.is_file():
            total += path.stat().st_size
        elif path.is_dir():
            total += sum(part.stat().st_size for part in path.rglob("*") if part.is_file())
        else:
            return None
    return total


def read_batch(spark: SparkSession, input_dir: str, small: bool = False) -> dict[str, DataFrame]:
    """The three batch files in `input_dir`, each checked by its header first: a missing, empty, header-only
    file or a wrong set of columns stops here, with one message naming every bad file. `small`: each frame in a
    single partition (single_partition)."""
    frames, problems = {}, []
    for kind in CSV_FILES:
        try:
            frame = read_raw(spark, input_dir, kind)
            frames[kind] = single_partition(frame) if small else frame
        except csv_header.InputFileError as error:
            problems.append(str(error))
    if problems:
        raise csv_header.InputFileError("cannot read the batch:\n  " + "\n  ".join(problems))
    return frames


def read_raw(spark: SparkSession, input_dir: str, kind: str) -> DataFrame:
    """One batch file, every column as text, columns matched by name (any order in the file)."""
    label = locations.join(str(input_dir), CSV_FILES[kind])
    location = locations.resolve(str(input_dir), on_databricks()).child(CSV_FILES[kind])
    header = _head(spark, label, location)
    in_file_order = csv_header.column_order(label, header, FIELDS[kind])
    schema = T.StructType([T.StructField(name, T.StringType(), True) for name in in_file_order])
    if len(header.line_sep) > 1:
        _quiet_line_separator_warning(spark)
    reader = spark.read.options(**CSV_OPTIONS, lineSep=header.line_sep).schema(schema)
    return reader.csv(_parallel_parts(spark, location)).select(*FIELDS[kind])


def _quiet_line_separator_warning(spark: SparkSession) -> None:
    """Spark's CSV reader warns, each time it plans or reads with a two-character line separator (CRLF, the
    extractor's), that such a separator is not fully supported inside quoted values. These reads do handle it:
    CRLF inside quoted values arrives exactly (tests/integration/test_csv_inputs.py). So that one logger is set to
    errors only, and the warning stops filling the logs."""
    quiet_logger(spark, "org.apache.spark.sql.catalyst.csv.CSVOptions")


def _head(spark: SparkSession, label: str, location: locations.Location) -> csv_header.CsvHeader:
    """The file's header, read by Python where the driver can open the file, else its first lines by Spark."""
    if location.local is not None and (os.path.isfile(location.local) or not os.path.exists(location.local)):
        return csv_header.read_head(label, location.local)
    try:
        lines = [row[0] for row in spark.read.text(location.spark, lineSep="\n").limit(2).collect()]
    except Exception as error:
        if "PATH_NOT_FOUND" in str(error) or "does not exist" in str(error):
            raise csv_header.InputFileError(f"{label}: no such file") from None
        raise
    return csv_header.parse_head(label, "\n".join(lines).encode("utf-8") + (b"\n" if len(lines) > 1 else b""))


def _parallel_parts(spark: SparkSession, location: locations.Location) -> list[str]:
    """A large local file read by a local classic session as part files cut at record boundaries, so it is
    parsed by several tasks and the frames built on it have several partitions; anything else as it is.

    The parts live in the temp directory, are reused while the file is unchanged, and go when the process ends.
    Where the temp directory has no room for them (_no_room_for_parts) or the copy fails, the file is read whole,
    by one task, with a warning: slower, never a failed read.
    """
    cores = None if is_connect(spark) or on_databricks() else local_cores(spark.conf.get("spark.master", ""))
    if not cores or location.local is None or not os.path.isfile(location.local):
        return [location.spark]
    file = Path(location.local)
    stat = file.stat()
    parts = csv_parts.parts_for(stat.st_size, cores)
    if parts == 1:
        return [location.spark]
    key = f"{file.resolve()}:{stat.st_ino}:{stat.st_size}:{stat.st_mtime_ns}:{parts}"
    root = _parts_root()
    out = root / hashlib.sha256(key.encode()).hexdigest()[:16]
    done = out / "complete"
    if not done.exists():
        shutil.rmtree(out, ignore_errors=True)
        problem = _no_room_for_parts(root, stat.st_size)
        if problem is None:
            try:
                files = csv_parts.split(file, out, parts)
                done.write_text("\n".join(p.name for p in files))
            except OSError as error:
                shutil.rmtree(out, ignore_errors=True)
                problem = f"copying it there failed: {error.strerror or error}"
        if problem is not None:
            warnings.warn(f"{file}: read whole, by one task, instead of cut into {parts} parts in the temp directory "
                          f"{root.parent} to be parsed in parallel: {problem}. Set TMPDIR to a roomier directory "
                          f"to parse it faster.", stacklevel=2)
            return [location.spark]
    return [str(out / name) for name in done.read_text().splitlines()]


# A file is cut into parts only where the temp directory has room for the copy and as much again after it: Spark's
# shuffle files and, often, the cleaned tables go to the same disk, and a temp directory in memory (tmpfs) is RAM.
PARTS_ROOM_FACTOR = 2


def _no_room_for_parts(root: Path, size: int) -> str | None:
    """Why the parts of a file of `size` bytes do not fit in `root`'s file system, or None when they do."""
    free, wanted = shutil.disk_usage(root).free, PARTS_ROOM_FACTOR * size
    if free >= wanted:
        return None
    return f"{free / 2**20:,.0f} MB free there, {wanted / 2**20:,.0f} MB wanted (the copy, and as much again)"


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
    schema: T.StructType | None = None

    def to_pandas(self):
        import pandas as pd

        return pd.DataFrame(self.rows, columns=self.columns)


def collect_all(frames: dict[str, DataFrame], threads: int | None = None) -> dict[str, Collected]:
    """Collect several small results at once (one Spark job each, from `threads` threads, by default one per
    frame): their many short stages overlap, so both the cores and the scheduler stay busy. Tasks still run
    one per core, so more jobs at once do not need more memory. One thread per question, not four: faster at 1M
    (README, "Benchmarks")."""
    def collect(df: DataFrame) -> Collected:
        return Collected(df.columns, [tuple(row) for row in df.collect()], df.schema)

    with ThreadPoolExecutor(max_workers=threads or max(1, len(frames))) as pool:
        return dict(zip(frames, pool.map(collect, frames.values())))


def write_result_csv(result: Collected, path: str) -> int:
    """A small result as one plain RFC 4180 file (not a Spark folder); values exactly as computed."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, **csv_format.WRITER)
        writer.writerow(result.columns)
        writer.writerows(["" if v is None else v for v in row] for row in result.rows)
    os.replace(tmp, path)
    return len(result.rows)


def output_locations(input_dir: str, output_dir: str | None = None,
                     cleaned_dir: str | None = None) -> tuple[str, str]:
    """(output_dir, cleaned_dir) as given, or by default `<input_dir>/results` and `cleaned` beside the
    output directory."""
    output = output_dir or locations.join(str(input_dir), "results")
    return output, cleaned_dir or locations.sibling(output, "cleaned")


# The cleaned columns with few distinct values. Only these get Parquet dictionary encoding: for the others
# (ids, texts, timestamps, coordinates) a dictionary is built and then abandoned, a waste of the save's time.
FEW_VALUES = {"pin": ("is_image_or_video", "category"), "geo": ("country",), "user": ("age",)}


class SaveError(RuntimeError):
    """A cleaned table or a result could not be written; the message names it, where, and the innermost cause."""


def save_cleaned(cleaned: dict[str, DataFrame], cleaned_dir: str, small: bool = False) -> dict[str, DataFrame]:
    """The cleaned frames to <cleaned_dir>/<name> as Parquet, all at once (one job per frame, from threads);
    returns them read back, so the questions scan a few compact columns instead of the CSVs again. `small`: read
    back in a single partition each (single_partition). A write that fails raises SaveError, whose one line says
    why (a full disk, a path that is not a folder) where Spark's own error puts it under a page of Java frames."""
    target = locations.resolve(cleaned_dir, on_databricks())

    def save(item: tuple[str, DataFrame]) -> DataFrame:
        name, df = item
        location = target.child(name).spark
        writer = df.write.mode("overwrite").option("parquet.enable.dictionary", "false")
        for column in FEW_VALUES.get(name, ()):
            writer = writer.option(f"parquet.enable.dictionary#{column}", "true")
        with _saving(f"the cleaned {name} table", location):
            writer.parquet(location)
        saved = df.sparkSession.read.schema(df.schema).parquet(location)  # no job to read a footer for it
        return single_partition(saved) if small else saved

    with ThreadPoolExecutor(max_workers=len(cleaned)) as pool:
        return dict(zip(cleaned, pool.map(save, cleaned.items())))


# A Java exception as a stack trace states it: "java.io.IOException: No space left on device", after "Caused by: "
# for a cause, after ": " in a Py4JJavaError's text.
JAVA_EXCEPTION_LINE = re.compile(r"^(?:Caused by: |: )?((?:[a-z_]\w*\.)+[A-Z]\w*(?:Exception|Error)\b.*)$")


def root_cause(error: Exception) -> str:
    """The innermost cause of a Spark error in one line, as Java states it ('java.io.IOException: No space left on
    device'): the JVM's exception followed to its last cause where Python can reach it, else the last Java exception
    its text names (the text of a foreachBatch function's failure is a Python traceback ending in the Java error),
    else the error's own first line (Spark Connect)."""
    text = str(error)
    java = getattr(error, "java_exception", None) or getattr(error, "_origin", None)  # py4j's, pyspark's
    if java is not None:
        try:
            while java.getCause() is not None:
                java = java.getCause()
            text = str(java.toString())
        except Exception:  # the JVM gone or not answering: the error's own text
            pass
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    stated = [found.group(1) for line in lines if (found := JAVA_EXCEPTION_LINE.match(line))]
    return stated[-1] if stated else lines[0] if lines else type(error).__name__


def write_results(results: dict[str, Collected], output_dir: str, input_rows: dict[str, int],
                  spark: SparkSession | None = None) -> dict[str, int]:
    """Each result to <output_dir>/<name>.csv, and summary.json with the rows read and written (what
    run_pipeline.sh reports).

    Where the driver's Python can write (a local path, /Volumes, /dbfs) each is one plain file. Where only
    Spark can (s3a://, abfss://, gs://, hdfs://), each is a Spark output folder of that name holding one part
    file, written by `spark`."""
    target = locations.resolve(output_dir, on_databricks())
    summary = json.dumps({"input_rows": input_rows, "result_rows": {n: len(r.rows) for n, r in results.items()}},
                         indent=2) + "\n"
    if target.local is not None:
        rows = {name: write_result_csv(result, locations.join(target.local, f"{name}.csv"))
                for name, result in results.items()}
        with open(locations.join(target.local, "summary.json"), "w", encoding="utf-8") as handle:
            handle.write(summary)
        return rows
    if spark is None:
        raise locations.LocationError(f"{output_dir}: only Spark can write there; pass the session (spark=...)")
    for name, result in results.items():
        location = target.child(f"{name}.csv").spark
        with _saving(f"the result {name}", location):
            (spark.createDataFrame(result.rows, result.schema).coalesce(1).write.mode("overwrite")
             .options(**csv_format.SPARK, lineSep=csv_format.WRITER["lineterminator"], emptyValue="")
             .csv(location))
    location = target.child("summary.json").spark
    with _saving("the run's summary", location):
        spark.createDataFrame([(summary,)], "value string").coalesce(1).write.mode("overwrite").text(location)
    return {name: len(result.rows) for name, result in results.items()}


@contextlib.contextmanager
def _saving(what: str, location: str) -> Iterator[None]:
    """Spark's write of `what` to `location`; a failure raised as SaveError, in one line, Spark's error chained."""
    try:
        yield
    except Exception as error:  # Spark's, from the JVM or a Spark Connect server
        raise SaveError(f"cannot write {what} to {location}: {root_cause(error)}") from error
