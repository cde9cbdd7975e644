"""The Spark session the notebooks run on: found (Databricks, an active session) or started (local, a standalone
cluster, Spark Connect), and the JVM and SQL settings a new one gets for the size of the batch it will process.

Why each setting, in a line or two beside it; what each was measured to save is in README's "Benchmarks" (the
table of changes kept) and bench/HISTORY.md.
"""
from __future__ import annotations

import contextlib
import os
import re
import signal
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

from pyspark.sql import SparkSession

from pinpipe.spark import class_archive, csv_parts

# Whole-stage code generation puts a cleaning select's every column into one Java method, far beyond the 8,000
# bytes of bytecode HotSpot compiles by default: left interpreted, cleaning the pins was far slower.
JIT_HUGE_METHODS = "-XX:-DontCompileHugeMethods"
# HotSpot's optimising compiler (C2) pays for itself only on large inputs: below SMALL_INPUT_BYTES of CSV a new
# JVM compiles with C1 alone (on 1M rows C1 alone was slower).
QUICK_JIT = "-XX:TieredStopAtLevel=1"
SMALL_INPUT_BYTES = 100 * 1024 * 1024
# What a triplet of the source's rows takes in a batch's three CSV files (455 bytes on average for the generated
# rows: bench/.data), for sizing a JVM started before its batch exists (expected_bytes).
CSV_BYTES_PER_TRIPLET = 460
# A small batch's twenty-odd queries cost more to plan than to run. Below INTERPRETED_INPUT_BYTES of CSV the
# session evaluates expressions as they are (INTERPRETED) instead of generating and compiling Java for every
# query (factoryMode is an internal setting, which a Spark without it ignores). Above it generated code pays for
# itself.
INTERPRETED_INPUT_BYTES = 8 * 1024 * 1024
# A local driver runs every task itself: it gets the throughput collector. G1, the JVM's default, keeps its
# concurrent threads and write barriers busy on the cores the tasks need.
DRIVER_GC = "-XX:+UseParallelGC"
# In a JVM with C2, the code that lives for one query is left to C1 (HotSpot compiler directives: JIT_DIRECTIVES):
# Spark's generated classes (new for every query), Janino, which compiles them, ASM, which Spark's closure cleaner
# reads closures with, and Java serialization, which ships every task. On two cores C2's thread took most of a
# core for them, seconds on each large generated method, some of which it then dropped or failed to compile.
# Spark's own runtime code still gets C2. The directives file is a diagnostic option; DisplayVMOutputToStderr
# keeps the JVM's note on it off stdout.
JIT_DIRECTIVES = Path(__file__).with_name("jit_directives.json")
C1_ONLY_CODE = ("-XX:+UnlockDiagnosticVMOptions -XX:+DisplayVMOutputToStderr "
                f'-XX:CompilerDirectivesFile="{JIT_DIRECTIVES}"')
# The few columns a question joins on, up to a million rows, are broadcast instead of shuffling both sides: at
# 1M rows Spark estimates the pins' (ind, follower_count) at 10 MB and the geo rows' (ind, country, timestamp) at
# 19 MB; at 5M five times that, which stays shuffled (at 128MB 5,000,000 rows were broadcast too, and the 4g
# driver ran out of memory building them).
BROADCAST_LIMIT = "24MB"
# A local session caches frames as they are, not compressed: gathering each column's compression statistics was a
# visible share of the nine questions' CPU at 1M, for the few columns they cache. A cache that outgrows memory goes
# to disk (DataFrame.cache).
CACHE_COMPRESSED = "spark.sql.inMemoryColumnarStorage.compressed"
# A session started here keeps up to CODEGEN_CACHE_ENTRIES compiled classes in its driver (in local mode also where
# its tasks run), not Spark's 100 (a cache in four parts of 25): the notebook on 100,000 rows or more compiles 110-140
# generated classes, so the first were evicted before it ended, and running it again in the same session (a Jupyter
# user, bench_notebook's sizes one after another) compiled them all again, as new classes that start interpreted.
CODEGEN_CACHE_ENTRIES = 1000
INTERPRETED = {"spark.sql.codegen.wholeStage": "false", "spark.sql.codegen.factoryMode": "NO_CODEGEN"}
# Every new session records no DataFrame query context: the Python line that built each Column, about five calls
# into the JVM per expression (SPARK-50310; an error still names the failing expression, not the line).
NO_QUERY_CONTEXT = {"spark.sql.dataFrameQueryContext.enabled": "false",
                    "spark.python.sql.dataFrameDebugging.enabled": "false"}
# Spark's logger of one warning, once per driver, that a plan's text was cut at 25 fields (the audited pin table is
# wider): it went into every notebook.log though no data is affected, only plan strings.
PLAN_TRUNCATION_LOGGER = {3: "org.apache.spark.sql.catalyst.util.SparkStringUtils",
                          4: "org.apache.spark.util.SparkStringUtils"}


def is_small(input_bytes: int | None) -> bool:
    """Whether a batch of `input_bytes` of CSV is small (None: unknown, treated as large)."""
    return input_bytes is not None and input_bytes < SMALL_INPUT_BYTES


def expected_bytes(triplets: int) -> int:
    """The CSV bytes a batch of `triplets` source rows will take, about (CSV_BYTES_PER_TRIPLET)."""
    return triplets * CSV_BYTES_PER_TRIPLET


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
    quiet_logger(spark, PLAN_TRUNCATION_LOGGER[min(spark_major(spark), 4)])
    return spark


def quiet_logger(spark: SparkSession, name: str) -> None:
    """Spark's logger `name` set to errors only in the driver (idempotent), for a warning that is noise here.
    Skipped on Spark Connect (the server logs) and where the driver's log4j 2 cannot be reached."""
    if is_connect(spark):
        return
    from py4j.protocol import Py4JError

    try:
        jvm = spark.sparkContext._jvm
        jvm.org.apache.logging.log4j.core.config.Configurator.setLevel(name, jvm.org.apache.logging.log4j.Level.ERROR)
    except (Py4JError, AttributeError):  # cosmetic: a driver without log4j 2 keeps its warning
        pass


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
        before = _children(os.getpid())
        try:
            gateway = launch_gateway(conf, popen_kwargs={"start_new_session": True})
        except BaseException:  # e.g. the kernel interrupted or shut down while the JVM was starting
            _stop_driver_launch(before)
            raise
        SparkContext(conf=conf, gateway=gateway)
    return SparkSession.builder.config(conf=conf).getOrCreate()


def _processes() -> Iterator[tuple[int, str, int, int]]:
    """Each process as (pid, state, parent pid, process group), from /proc/PID/stat (Linux; elsewhere none), which,
    unlike `cmdline`, never reads empty while the process is exec'ing."""
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            state, ppid, group = (proc / "stat").read_text().rsplit(")", 1)[1].split()[:3]
            yield int(proc.name), state, int(ppid), int(group)
        except (OSError, ValueError):
            continue


def _children(parent: int) -> dict[int, int]:
    """`parent`'s child processes, pid to process group."""
    return {pid: group for pid, _, ppid, group in _processes() if ppid == parent}


def driver_launches(parent: int) -> list[int]:
    """The pids of `parent`'s driver launches: children whose command line ends in `pyspark-shell`
    (spark-submit's shell, then the JVM it becomes)."""
    found = []
    for pid in _children(parent):
        try:
            if Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").endswith(b"pyspark-shell"):
                found.append(pid)
        except OSError:
            continue
    return found


def _stop_driver_launch(before: dict[int, int], patience_s: float = 10.0) -> None:
    """Stop the driver launch begun since `before` (this process's children then): SIGTERM the process group of
    each new child that leads one (launched with start_new_session), then SIGKILL any still alive after
    `patience_s`. A launch_gateway cut short removes the folder its JVM was to write its port to; the JVM's main
    thread then fails, py4j's server thread keeps it alive, and in a process group of its own nothing else would
    stop it (found here: a kernel shut down while its session started left a 4g driver running). The new children
    are not told apart by command line: while spark-submit exec's spark-class and then java, its command line
    reads empty for a moment (a launch once escaped that way)."""
    groups = [pid for pid, group in _children(os.getpid()).items() if pid == group and pid not in before]
    for signum in (signal.SIGTERM, signal.SIGKILL):
        for group in groups:
            try:
                os.killpg(group, signum)
            except OSError:
                continue
        deadline = time.monotonic() + patience_s
        while (groups := [group for group in groups if _group_alive(group)]) and time.monotonic() < deadline:
            time.sleep(0.05)
        if not groups:
            return


def _group_alive(group: int) -> bool:
    """Whether a process of process group `group` is still running (a zombie is not)."""
    return any(pgrp == group and state != "Z" for _, state, _, pgrp in _processes())


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

