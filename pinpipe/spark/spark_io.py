"""Spark session, the explicit schemas the batch CSVs are read with, and writing the results."""
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
import signal
import sys
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
from pinpipe.spark import class_archive, csv_header, csv_parts, locations

# Raw frames are all text: the cleaning step owns every conversion (try_cast), so dirt never fails a read.
RAW_SCHEMAS = {kind: T.StructType([T.StructField(name, T.StringType(), True) for name in names])
               for kind, names in FIELDS.items()}

# RFC 4180: fields may span lines, quotes are doubled. The line separator is the file's own (CRLF as the
# extractor writes, or LF), set per file from its header row: Spark's default turns a CRLF inside a quoted
# field into a bare LF, and a CRLF separator on an LF file reads the whole file as one row.
CSV_OPTIONS = {**csv_format.SPARK, "multiLine": "true", "mode": "PERMISSIVE", "ignoreLeadingWhiteSpace": "false",
               "ignoreTrailingWhiteSpace": "false"}


# Whole-stage code generation puts a cleaning select's every column into one Java method, far beyond the 8,000
# bytes of bytecode HotSpot compiles by default: left interpreted, cleaning the pins took 2.5x as long.
JIT_HUGE_METHODS = "-XX:-DontCompileHugeMethods"
# HotSpot's optimising compiler (C2) pays for itself only on large inputs: below SMALL_INPUT_BYTES of CSV a new
# JVM compiles with C1 alone. Measured on 2 cores (bench/HISTORY.md, "This round: speed"): the notebook after
# session start 29.3 -> 19.4 s on 500 rows, 29.7 -> 21.3 s on 10k, 38.3 -> 32.3 s on 100k (44 MB); 1M rows
# (519 MB) was slower with C1 alone (92.6 -> 106.8 s).
QUICK_JIT = "-XX:TieredStopAtLevel=1"
SMALL_INPUT_BYTES = 100 * 1024 * 1024
# A small batch's twenty-odd queries cost more to plan than to run. Below INTERPRETED_INPUT_BYTES of CSV the
# session evaluates expressions as they are (INTERPRETED) instead of generating and compiling Java for every
# query (factoryMode is an internal setting, which a Spark without it ignores). Measured on 2 cores
# (bench/HISTORY.md, "Sixteenth session"), with NO_QUERY_CONTEXT: the notebook after session start 5.9 -> 4.4 s
# on 500 rows and 7.2 -> 6.2 s on 10k (4.6 MB); interpreted, 30k rows (13.8 MB) took 8.5 -> 8.9 s and 100k rows
# (46 MB) 14.3 -> 19.8 s: generated code pays for itself there.
INTERPRETED_INPUT_BYTES = 8 * 1024 * 1024
# A local driver runs every task itself: it gets the throughput collector. G1, the JVM's default, keeps its
# concurrent threads and write barriers busy on the two cores the tasks need. Measured on 2 cores (bench/HISTORY.md,
# "Seventeenth session"): the notebook on 1M rows after session start 43.5-45.1 s with G1, 37.6-39.9 s with it (the
# serial collector 35.0-37.1 s, but one thread to collect a 4g heap); on 500 rows no difference.
DRIVER_GC = "-XX:+UseParallelGC"
# In a JVM with C2, the code that lives for one query is left to C1 (HotSpot compiler directives: JIT_DIRECTIVES):
# Spark's generated classes (new for every query), Janino, which compiles them, ASM, which Spark's closure cleaner
# reads closures with, and Java serialization, which ships every task. On two cores C2's thread took most of a
# core for them: seconds on each large generated method (2.6 s on the pins' cleaning, which it then dropped,
# recompiled for 2.3 s and failed), ~9 s on the rest. Spark's own runtime code still gets C2. The directives
# file is a diagnostic option; DisplayVMOutputToStderr keeps the JVM's note on it off stdout. Measured on 2 cores
# (bench/HISTORY.md, "Eighteenth session"), the notebook on 1M rows after session start, alternated runs:
# 32.4 / 32.7 s as before, 27.7 / 26.9 s with the generated classes left to C1 (compiling 39 -> 28 s of CPU),
# 26.3-28.7 s (mean 27.0) -> 24.9-26.0 s (mean 25.1) with the other three as well.
JIT_DIRECTIVES = Path(__file__).with_name("jit_directives.json")
C1_ONLY_CODE = ("-XX:+UnlockDiagnosticVMOptions -XX:+DisplayVMOutputToStderr "
                f'-XX:CompilerDirectivesFile="{JIT_DIRECTIVES}"')
# The few columns a question joins on, up to a million rows, are broadcast instead of shuffling both sides: at
# 1M rows Spark estimates the pins' (ind, follower_count) at 10 MB and the geo rows' (ind, country, timestamp) at
# 19 MB; at 5M five times that, which stays shuffled. At 128MB 5,000,000 rows were broadcast too and the 4g driver
# ran out of memory building them. Measured on 2 cores (bench/HISTORY.md, "Nineteenth session"), the nine questions
# on 1M rows in a warm session, six alternated runs each: 16 MB (the geo rows shuffled) mean 9.0 s, 24 MB 7.6 s.
BROADCAST_LIMIT = "24MB"
# A local session caches frames as they are, not compressed: gathering each column's compression statistics took ~10 %
# of the nine questions' CPU at 1M (a JFR profile), for the few columns they cache. Measured on 2 cores
# (bench/HISTORY.md, "Twentieth session"), the nine questions on 1M saved rows, warm, five alternated runs each after
# two: compressed mean 6.5 s, as they are 6.0 s. A cache that outgrows memory goes to disk (DataFrame.cache).
CACHE_COMPRESSED = "spark.sql.inMemoryColumnarStorage.compressed"
# A session started here keeps up to CODEGEN_CACHE_ENTRIES compiled classes in its driver (in local mode also where
# its tasks run), not Spark's 100 (a cache in four parts of 25): the notebook on 100,000 rows or more compiles 110-140
# generated classes, so the first were evicted before it ended, and running it again in the same session (a Jupyter
# user, bench_notebook's sizes one after another) compiled them all again, as new classes that start interpreted.
# Measured on 2 cores (bench/HISTORY.md, "Twenty-second session"): the 1M notebook run again, 118-122 compiles (2.6 s
# of the driver's time) -> none; 100k run again, 1.1-1.4 s of compiling -> none.
CODEGEN_CACHE_ENTRIES = 1000
INTERPRETED = {"spark.sql.codegen.wholeStage": "false", "spark.sql.codegen.factoryMode": "NO_CODEGEN"}
# Every new session records no DataFrame query context: the Python line that built each Column, about five calls
# into the JVM per expression (SPARK-50310; an error still names the failing expression, not the line). Measured
# (bench/HISTORY.md): the 500-row notebook's save cell 4,320 -> 1,670 JVM calls; the 1M notebook 32.9-33.2 ->
# 30.7-31.0 s after session start (seventeenth session; until then it was off for small inputs only).
NO_QUERY_CONTEXT = {"spark.sql.dataFrameQueryContext.enabled": "false",
                    "spark.python.sql.dataFrameDebugging.enabled": "false"}


def is_small(input_bytes: int | None) -> bool:
    """Whether a batch of `input_bytes` of CSV is small (None: unknown, treated as large)."""
    return input_bytes is not None and input_bytes < SMALL_INPUT_BYTES


def jit_options(input_bytes: int | None, small: bool | None = None) -> str:
    """The JIT flags of a new driver or executor JVM that will process `input_bytes` of CSV; `small`, when given,
    decides instead (a stream's input is not a file size: streaming.py)."""
    return f"{JIT_HUGE_METHODS} {QUICK_JIT}" if _quick(input_bytes, small) else JIT_HUGE_METHODS


def driver_java_options(memory: str, jit: str) -> str:
    """A new driver JVM's options: its heap reserved at start, DRIVER_GC, `jit` (jit_options), the code of one
    query left to C1 where C2 is on (C1_ONLY_CODE; a driver's only: a cluster's executors may not have the file)
    and the class archive when one is built (class_archive.py)."""
    c1_only = "" if QUICK_JIT in jit.split() else C1_ONLY_CODE
    return " ".join(filter(None, [f"-Xms{memory}", DRIVER_GC, jit, c1_only, class_archive.java_option()]))


def interpreted(input_bytes: int | None) -> bool:
    """Whether a batch of `input_bytes` of CSV is evaluated without generated code (None: unknown, it is not)."""
    return input_bytes is not None and input_bytes < INTERPRETED_INPUT_BYTES


def _quick(input_bytes: int | None, small: bool | None) -> bool:
    return is_small(input_bytes) if small is None else small


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


def on_databricks() -> bool:
    return "DATABRICKS_RUNTIME_VERSION" in os.environ


def on_serverless() -> bool:
    """Databricks serverless compute (Spark Connect, no caching, few settings): its runtime version reads
    `client.<n>` and it sets IS_SERVERLESS."""
    version = os.environ.get("DATABRICKS_RUNTIME_VERSION", "")
    return version.startswith("client.") or os.environ.get("IS_SERVERLESS", "").lower() == "true"


def is_connect(spark: SparkSession) -> bool:
    """A Spark Connect session (a remote server, Databricks serverless): no SparkContext, RDD or JVM."""
    return type(spark).__module__.startswith("pyspark.sql.connect")


def spark_major(spark: SparkSession) -> int:
    return int(spark.version.split(".")[0])


def get_spark(master: str = "local[*]", app_name: str = "pinterest-batch",
              existing: SparkSession | None = None, serverless: bool | None = None,
              kafka: bool = False, input_bytes: int | None = None, small: bool | None = None) -> SparkSession:
    """`existing` (the `spark` Databricks provides), else the active session, else a new one on `master`:
    `local[N]`, `spark://host:port` (a standalone cluster) or `sc://host:port` (a Spark Connect server).

    Every session gets the UTC time zone where it may be set. On serverless compute (`serverless`, detected by
    default) nothing else is set: it runs with ANSI on and refuses most settings. SPARK_DRIVER_MEMORY (default
    4g) sizes a local JVM's heap, all of it reserved at start: 1,000,000 pins do not fit in Spark's 1g default.
    A new driver JVM collects with DRIVER_GC.
    `kafka`: a new local or cluster session gets Spark's Kafka source (connector.py; Databricks has it built in,
    and a Spark Connect server needs it on its own class path). `input_bytes` (see batch_bytes): a new JVM for a
    small input compiles with C1 only (jit_options); `small`, when
    given, decides that instead. Where `input_bytes` is known, a local, cluster or Spark Connect session off
    Databricks evaluates a batch that small without generated code and a larger one with it (interpreted): set
    per call, as one session may run batches of any size. A new local
    driver maps Spark's class archive when one is built (class_archive.py) and, in a Jupyter kernel, runs in a
    process group of its own (_new_session).
    """
    serverless = on_serverless() if serverless is None else serverless
    spark = existing or SparkSession.getActiveSession()
    if spark is None and master.startswith("sc://"):
        spark = SparkSession.builder.remote(master).appName(app_name).getOrCreate()
        if not serverless:
            _set(spark, "spark.sql.shuffle.partitions", str(2 * (os.cpu_count() or 1)))
    elif spark is None:
        spark = _new_session(master, app_name, kafka, jit_options(input_bytes, small))
        cores = local_cores(master)
        if cores:  # a batch is small: two shuffle partitions per core, not Spark's 200
            spark.conf.set("spark.sql.shuffle.partitions", str(2 * cores))
            # a large file's parts (_parallel_parts) one task each, not packed two to a task
            spark.conf.set("spark.sql.files.maxPartitionBytes", str(csv_parts.PART_BYTES))
            spark.conf.set(CACHE_COMPRESSED, "false")
    _set(spark, "spark.sql.session.timeZone", "UTC")
    if not serverless:
        # Spark 4: ANSI, and every conversion is a try_cast. Spark 3.5 has no Column.try_cast: ANSI stays off
        # there (its default), where a cast that fails gives null as try_cast does.
        _set(spark, "spark.sql.ansi.enabled", "true" if spark_major(spark) >= 4 else "false")
        if input_bytes is not None and not on_databricks():
            _set_code_generation(spark, not interpreted(input_bytes))
    return spark


@contextlib.contextmanager
def code_generation(spark: SparkSession, on: bool) -> Iterator[None]:
    """Code generation on or off (as get_spark sets it for a batch's size) inside the block, then as it was."""
    before = {key: spark.conf.get(key, None) for key in INTERPRETED}
    _set_code_generation(spark, on)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, value)


def _set_code_generation(spark: SparkSession, on: bool) -> None:
    """Spark's default (whole-stage code generation) when `on`, else expressions evaluated as they are."""
    for key, value in INTERPRETED.items():
        if not on:
            _set(spark, key, value)
        elif spark.conf.get(key, None) == value:
            spark.conf.unset(key)


def _new_session(master: str, app_name: str, kafka: bool, jit: str) -> SparkSession:
    """A new local or cluster session, its driver JVM started here (py4j: not on a Spark Connect client)."""
    from pyspark import SparkConf, SparkContext
    from pyspark.java_gateway import launch_gateway

    memory = os.environ.get("SPARK_DRIVER_MEMORY", "4g")
    conf = SparkConf().setMaster(master).setAppName(app_name).setAll([
        ("spark.driver.memory", memory),
        ("spark.driver.extraJavaOptions", driver_java_options(memory, jit)),
        ("spark.executor.extraJavaOptions", jit),  # a cluster's executors
        ("spark.sql.autoBroadcastJoinThreshold", BROADCAST_LIMIT),
        ("spark.ui.showConsoleProgress", "false"),
        ("spark.sql.codegen.cache.maxEntries", str(CODEGEN_CACHE_ENTRIES)),
        *NO_QUERY_CONTEXT.items(),
    ])
    if kafka and not on_databricks():
        from pinpipe.spark.connector import kafka_connector_jars

        conf.set("spark.jars", ",".join(str(jar) for jar in kafka_connector_jars()))
    if "ipykernel" in sys.modules and SparkContext._gateway is None:
        # In a Jupyter kernel (papermill, Jupyter) the driver JVM gets a process group of its own. A kernel that
        # shuts down SIGTERMs the children in its group and polls for them with growing sleeps, and papermill's
        # client kills the whole group 2.5 s later, part-way through Spark's shutdown hooks ("Failed to delete"
        # stack traces): 2.6 s after the last cell. On its own, the JVM exits when the kernel does (its stdin
        # closes), hooks and all, and the kernel exits at once.
        try:
            gateway = launch_gateway(conf, popen_kwargs={"start_new_session": True})
        except BaseException:  # e.g. the kernel interrupted or shut down while the JVM was starting
            _stop_driver_launch()
            raise
        SparkContext(conf=conf, gateway=gateway)
    return SparkSession.builder.config(conf=conf).getOrCreate()


def driver_launches(parent: int) -> list[int]:
    """The pids of `parent`'s driver launches: children whose command line ends in `pyspark-shell`
    (spark-submit's shell, then the JVM it becomes). Linux /proc; elsewhere none."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if ppid == parent and (proc / "cmdline").read_bytes().rstrip(b"\0").endswith(b"pyspark-shell"):
                found.append(int(proc.name))
        except (OSError, IndexError, ValueError):
            continue
    return found


def _stop_driver_launch() -> None:
    """SIGTERM the process group of this process's driver launch. A launch_gateway cut short removes the folder
    its JVM was to write its port to; the JVM's main thread then fails, py4j's server thread keeps it alive, and
    in a process group of its own nothing else would stop it (found here: a kernel shut down while its session
    started left a 4g driver running)."""
    for pid in driver_launches(os.getpid()):
        try:
            os.killpg(pid, signal.SIGTERM)  # started with start_new_session: its own group
        except OSError:
            continue


def _set(spark: SparkSession, key: str, value: str) -> None:
    try:
        if spark.conf.get(key, None) != value:
            spark.conf.set(key, value)
    except Exception as error:  # a platform that forbids the setting (Databricks serverless, a locked cluster)
        warnings.warn(f"could not set {key}={value} on this Spark session: {error}", stacklevel=3)


def local_cores(master: str) -> int | None:
    """The cores a `local`, `local[N]` or `local[*]` master uses; None for any other master."""
    match = re.fullmatch(r"local(?:\[(\*|\d+)(?:,\s*\d+)?\])?", master.strip())
    if not match:
        return None
    if match.group(1) is None:
        return 1
    return os.cpu_count() or 1 if match.group(1) == "*" else int(match.group(1))


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
    CRLF inside quoted values arrives exactly (tests/integration/test_csv_inputs.py). So on a classic session
    that one logger is set to errors only, and the warning stops filling the logs. Setting it is idempotent.
    Skipped on Spark Connect (the server logs it) and where the driver's log4j cannot be reached."""
    if is_connect(spark):
        return
    from py4j.protocol import Py4JError

    try:
        jvm = spark.sparkContext._jvm
        jvm.org.apache.logging.log4j.core.config.Configurator.setLevel(
            "org.apache.spark.sql.catalyst.csv.CSVOptions", jvm.org.apache.logging.log4j.Level.ERROR)
    except (Py4JError, AttributeError):  # cosmetic: a driver without log4j 2 keeps its warning
        pass


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
    schema: T.StructType | None = None

    def to_pandas(self):
        import pandas as pd

        return pd.DataFrame(self.rows, columns=self.columns)


def collect_all(frames: dict[str, DataFrame], threads: int = 4) -> dict[str, Collected]:
    """Collect several small results at once (one Spark job each, from threads): their many short stages
    overlap, so both the cores and the scheduler stay busy."""
    def collect(df: DataFrame) -> Collected:
        return Collected(df.columns, [tuple(row) for row in df.collect()], df.schema)

    with ThreadPoolExecutor(max_workers=threads) as pool:
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


def save_cleaned(cleaned: dict[str, DataFrame], cleaned_dir: str, small: bool = False) -> dict[str, DataFrame]:
    """The cleaned frames to <cleaned_dir>/<name> as Parquet, all at once (one job per frame, from threads);
    returns them read back, so the questions scan a few compact columns instead of the CSVs again. `small`: read
    back in a single partition each (single_partition)."""
    target = locations.resolve(cleaned_dir, on_databricks())

    def save(item: tuple[str, DataFrame]) -> DataFrame:
        name, df = item
        location = target.child(name).spark
        writer = df.write.mode("overwrite").option("parquet.enable.dictionary", "false")
        for column in FEW_VALUES.get(name, ()):
            writer = writer.option(f"parquet.enable.dictionary#{column}", "true")
        writer.parquet(location)
        saved = df.sparkSession.read.schema(df.schema).parquet(location)  # no job to read a footer for it
        return single_partition(saved) if small else saved

    with ThreadPoolExecutor(max_workers=len(cleaned)) as pool:
        return dict(zip(cleaned, pool.map(save, cleaned.items())))


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
        (spark.createDataFrame(result.rows, result.schema).coalesce(1).write.mode("overwrite")
         .options(**csv_format.SPARK, lineSep=csv_format.WRITER["lineterminator"], emptyValue="")
         .csv(target.child(f"{name}.csv").spark))
    spark.createDataFrame([(summary,)], "value string").coalesce(1).write.mode("overwrite").text(
        target.child("summary.json").spark)
    return {name: len(result.rows) for name, result in results.items()}
