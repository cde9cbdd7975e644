"""The local session get_spark starts: what its JVM runs with."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from pinpipe.spark import class_archive
from pinpipe.spark.session import (
    DRIVER_GC,
    INTERPRETED_INPUT_BYTES,
    JIT_DIRECTIVES,
    JIT_HUGE_METHODS,
    PLAN_TRUNCATION_LOGGER,
    QUICK_JIT,
    code_generation,
    get_spark,
)
from tests.helpers import process_gone, processes_with_env


def test_the_local_driver_jvm_compiles_huge_generated_methods_and_has_its_heap(spark):
    """Whole-stage code generation makes one Java method of a cleaning select; HotSpot leaves a method over
    8,000 bytecode bytes interpreted unless told otherwise. The option must reach the driver JVM itself."""
    runtime = spark.sparkContext._jvm.java.lang.management.ManagementFactory.getRuntimeMXBean()
    arguments = list(runtime.getInputArguments())
    assert JIT_HUGE_METHODS == "-XX:-DontCompileHugeMethods"
    assert JIT_HUGE_METHODS in arguments
    memory = spark.sparkContext.getConf().get("spark.driver.memory")
    assert f"-Xms{memory}" in arguments and f"-Xmx{memory}" in arguments
    assert spark.conf.get("spark.sql.session.timeZone") == "UTC"


def test_the_local_driver_jvm_collects_with_the_parallel_collector(spark):
    """The JVM's own view of its collectors: the parallel collector's are named PS Scavenge and PS MarkSweep
    (G1's, the default, G1 Young/Old Generation)."""
    management = spark.sparkContext._jvm.java.lang.management.ManagementFactory
    assert DRIVER_GC == "-XX:+UseParallelGC"
    assert {bean.getName() for bean in management.getGarbageCollectorMXBeans()} == {"PS Scavenge", "PS MarkSweep"}


def test_a_local_session_reads_each_part_of_a_large_file_as_a_task_of_its_own(spark):
    """Spark packs small files into one task up to spark.sql.files.maxPartitionBytes (128 MB by default): two
    64 MiB parts of a large CSV would share one. The local session's limit is one part."""
    from pinpipe.spark import csv_parts

    assert int(spark.conf.get("spark.sql.files.maxPartitionBytes")) == csv_parts.PART_BYTES == 64 * 1024 * 1024
    assert csv_parts.parts_for(357 * 1024 * 1024, parallelism=2) == 6  # the pins of a 1M-row batch: 6 tasks


def test_a_local_session_caches_frames_uncompressed(spark):
    """20,000 longs of three values: compressed, the cache holds them in ~20 KB (encoded); as they are, in 8 bytes
    each."""
    def cached_sizes() -> dict[int, int]:  # the shared session's earlier tests may have cached frames of their own
        return {info.id(): info.memSize() for info in spark.sparkContext._jsc.sc().getRDDStorageInfo()}

    before = cached_sizes()
    cached = spark.range(20_000).selectExpr("id % 3 AS few").cache()
    try:
        assert cached.count() == 20_000
        [size] = [size for rdd, size in cached_sizes().items() if rdd not in before]
        assert size >= 20_000 * 8
    finally:
        cached.unpersist(blocking=True)


def test_the_driver_logs_no_warning_that_a_plan_string_was_cut(spark):
    """Spark warns once per driver that a plan's text was cut at 25 fields (the audited pin table is wider): noise in
    every notebook.log. A session get_spark returns has that logger at errors only; others keep theirs."""
    log_manager = spark.sparkContext._jvm.org.apache.logging.log4j.LogManager
    assert PLAN_TRUNCATION_LOGGER[4] == "org.apache.spark.util.SparkStringUtils"
    assert str(log_manager.getLogger(PLAN_TRUNCATION_LOGGER[4]).getLevel()) == "ERROR"
    assert str(log_manager.getLogger("org.apache.spark.util.Utils").getLevel()) != "ERROR"


def test_every_new_session_records_no_dataframe_query_context(spark):
    """The fixture's session, started without a batch size: neither the JVM (Spark's setting) nor pyspark (its
    call-site capture, a few JVM calls per Column built) records where each expression was built."""
    from pyspark.errors.utils import is_debugging_enabled

    assert spark.conf.get("spark.sql.dataFrameQueryContext.enabled") == "false"
    assert spark.conf.get("spark.python.sql.dataFrameDebugging.enabled") == "false"
    assert is_debugging_enabled() is False


def test_a_session_of_unknown_input_size_keeps_the_optimising_compiler(spark):
    arguments = list(spark.sparkContext._jvm.java.lang.management.ManagementFactory.getRuntimeMXBean()
                     .getInputArguments())
    assert QUICK_JIT not in arguments  # the fixture's session is started without input_bytes
    assert generated_stages(spark)  # and it generates code for its queries


def test_the_driver_compiles_spark_generated_code_with_c1_only_and_its_own_code_with_c2(spark):
    """Spark's generated classes live for one query: the driver leaves them to C1 (session.C1_ONLY_CODE).
    A hot generated aggregation, then the JVM's own list of compiled code (jcmd Compiler.codelist: id, level,
    state, method): its generated methods got hot enough to leave the profiling tier (level 1 is C1 without
    profiling, where a method goes when C2 refuses it) and none is at level 4; Java's and Spark's are. The JVM
    lists the directive it parsed: every pattern of the file, C2 excluded."""
    for _ in range(3):
        spark.range(0, 30_000_000, 1, 2).selectExpr("sum(id * 3 % 7) AS s").collect()
    jvm = spark.sparkContext._jvm
    jcmd = Path(jvm.java.lang.System.getProperty("java.home")) / "bin" / "jcmd"
    pid = jvm.java.lang.ProcessHandle.current().pid()
    listing = subprocess.run([str(jcmd), str(pid), "Compiler.codelist"], capture_output=True, text=True,
                             timeout=60, check=True).stdout
    levels: dict[str, set[int]] = {"generated": set(), "other": set()}
    for line in listing.splitlines():
        fields = line.split(maxsplit=3)
        if len(fields) == 4 and fields[1].isdigit():
            kind = "generated" if "expressions.GeneratedClass$" in fields[3] else "other"
            levels[kind].add(int(fields[1]))
    assert 1 in levels["generated"] and 4 not in levels["generated"], levels
    assert 4 in levels["other"], levels
    directives = subprocess.run([str(jcmd), str(pid), "Compiler.directives_print"], capture_output=True,
                                text=True, timeout=60, check=True).stdout
    matching = next(line for line in directives.splitlines() if line.startswith(" matching:"))
    [directive] = json.loads(JIT_DIRECTIVES.read_text())
    assert set(matching.split(":", 1)[1].strip().split(", ")) == set(directive["match"])
    c2 = directives.split(matching, 1)[1].split(" c2 directives:", 1)[1]
    assert "Exclude:true" in c2.split("Directive:", 1)[0]


def generated_stages(spark) -> bool:
    """Whether a query on `spark` runs generated code: `*(1)` marks a whole-stage generated stage in a plan."""
    return "*(1)" in spark.range(3).selectExpr("id + 1 AS n")._jdf.queryExecution().executedPlan().toString()


def test_one_session_generates_code_for_a_large_batch_and_not_for_a_small_one(spark):
    """get_spark decides code generation per call, by the batch's size: one session runs batches of any size."""
    try:
        get_spark(input_bytes=1000)
        assert not generated_stages(spark)
        assert spark.conf.get("spark.sql.codegen.factoryMode") == "NO_CODEGEN"
        get_spark(input_bytes=INTERPRETED_INPUT_BYTES)
        assert generated_stages(spark)
        assert spark.conf.get("spark.sql.codegen.wholeStage") == "true"
        get_spark(input_bytes=1000)
        assert not generated_stages(spark)
    finally:
        get_spark(input_bytes=10**12)
    assert generated_stages(spark)
    with code_generation(spark, on=False):  # as a small warm-up runs (sample_batch.warm_up), then as it was
        assert not generated_stages(spark)
    assert generated_stages(spark) and spark.conf.get("spark.sql.codegen.factoryMode") == "FALLBACK"


def test_a_session_for_a_small_batch_compiles_with_c1_only_and_maps_the_class_archive(tmp_path):
    """The notebook passes its batch's size: a small one gets a JVM that starts quickly (jit_options) and plans
    quickly (no generated code, no DataFrame query context, in the JVM and in pyspark), and every
    new local driver maps Spark's class archive (class_archive.py; run_tests.sh builds it, else it is built
    here): the JVM has the file mapped, not just the flag, and answers a query."""
    archive = class_archive.ensure()
    assert archive is not None and archive.is_file()
    # The Spark install it belongs to, noted beside it, so that pruning can tell when that install is gone.
    assert class_archive.owner_note(archive).read_text() == f"{class_archive.spark_home()}\n"
    for name in ("pin_data.csv", "geo_data.csv", "user_data.csv"):
        (tmp_path / name).write_text("idx\n1\n")
    script = ("import sys; from pinpipe.spark.session import get_spark; from pinpipe.spark.spark_io import batch_bytes; "
              "spark = get_spark('local[1]', input_bytes=batch_bytes(sys.argv[1])); "
              "jvm = spark.sparkContext._jvm; "
              "print(list(jvm.java.lang.management.ManagementFactory.getRuntimeMXBean().getInputArguments())); "
              "pid = jvm.java.lang.ProcessHandle.current().pid(); "
              "print('mapped:', sys.argv[2] in open(f'/proc/{pid}/maps').read()); "
              "print('rows:', spark.range(7).count()); "
              "print('plan:', spark.range(3).selectExpr('id + 1 AS n')._jdf.queryExecution().executedPlan()); "
              "from pyspark.errors.utils import is_debugging_enabled; "
              "print('query context:', spark.conf.get('spark.sql.dataFrameQueryContext.enabled'), "
              "is_debugging_enabled())")
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path), str(archive)], capture_output=True,
                          text=True, timeout=300, env={**os.environ, "SPARK_DRIVER_MEMORY": "1g"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert QUICK_JIT == "-XX:TieredStopAtLevel=1"
    assert f"'{QUICK_JIT}'" in done.stdout and f"'{JIT_HUGE_METHODS}'" in done.stdout
    assert f"'-XX:SharedArchiveFile={archive}'" in done.stdout
    assert "mapped: True" in done.stdout and "rows: 7" in done.stdout
    plan = done.stdout.split("plan:", 1)[1].split("query context:", 1)[0]
    assert "Project [(id#" in plan and "*(" not in plan  # evaluated as it is: no whole-stage generated code
    assert "query context: false False" in done.stdout
    assert "Unable to use shared archive" not in done.stdout + done.stderr


def test_a_class_archive_cut_short_is_refused_before_it_is_used(spark, tmp_path):
    """A JVM given a truncated archive crashes, even without -Xshare:on; build() renames an archive into place
    only when a JVM maps it (class_archive.usable), so a dump cut short by a full disk is never used."""
    archive = class_archive.ensure()
    assert archive is not None
    class_path = spark.sparkContext._jvm.java.lang.System.getProperty("java.class.path")  # any local driver's
    assert class_archive.usable(archive, class_path)
    cut = tmp_path / "cut.jsa"
    with open(archive, "rb") as whole:
        cut.write_bytes(whole.read(1_000_000))
    assert not class_archive.usable(cut, class_path)
    assert not class_archive.usable(archive, str(tmp_path))  # another class path: refused, not mapped
    assert not list(Path.cwd().glob("hs_err_pid*.log"))  # the refusing JVM left no crash report behind


def test_in_a_jupyter_kernel_the_driver_jvm_has_its_own_process_group_and_exits_with_the_kernel(tmp_path):
    """A kernel that shuts down signals the children in its process group and waits for them, and papermill's
    client then kills the whole group part-way through Spark's shutdown hooks. get_spark gives the driver JVM
    a group of its own in a kernel: papermill's shutdown does not touch it, and it exits by itself, cleanly,
    when the kernel's pipe to it closes."""
    import nbformat

    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(
        "import os\nfrom pinpipe.spark.session import get_spark\n"
        "spark = get_spark('local[1]', input_bytes=1000)\n"
        "jvm_pid = spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid()\n"
        "print('rows', spark.range(3).count(), 'jvm', jvm_pid, os.getpgid(jvm_pid), 'kernel', os.getpgrp())")]
    nbformat.write(notebook, tmp_path / "in.ipynb")
    done = subprocess.run([sys.executable, "-m", "papermill", str(tmp_path / "in.ipynb"), str(tmp_path / "out.ipynb"),
                           "-k", "python3", "--log-output"], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "SPARK_DRIVER_MEMORY": "1g"})
    assert done.returncode == 0, done.stderr[-3000:]
    printed = nbformat.read(tmp_path / "out.ipynb", as_version=4).cells[0].outputs[0]["text"].split()
    assert printed[:2] == ["rows", "3"]
    jvm_pid, jvm_group, kernel_group = int(printed[3]), int(printed[4]), int(printed[6])
    assert jvm_group == jvm_pid != kernel_group  # a session (and group) of its own
    assert process_gone(jvm_pid, patience_s=60), "the driver JVM outlived its kernel by a minute"
    assert "Failed to delete" not in done.stdout + done.stderr


CUT_SHORT = """
import types
import ipykernel  # noqa: F401  (get_spark launches the driver as it does in a Jupyter kernel)
import pyspark.java_gateway

def sleep(seconds):  # launch_gateway's first wait for the JVM's port, just after it started spark-submit
    raise KeyboardInterrupt("cut short mid-launch")

pyspark.java_gateway.time = types.SimpleNamespace(sleep=sleep)  # its view of `time` only: the stop's waits are real
from pinpipe.spark.session import get_spark
try:
    get_spark("local[1]", input_bytes=1000)
except KeyboardInterrupt as error:
    print("interrupted:", error)
"""


def test_a_driver_launch_cut_short_leaves_no_jvm_behind(tmp_path):
    """In a kernel the driver JVM has a process group of its own, so nothing else stops it: a get_spark cut short
    in the middle of pyspark's launch (Jupyter's stop button, a kernel shut down) must stop the launch it began.
    Deterministic stand-in for the interrupt: launch_gateway's first wait for the JVM raises KeyboardInterrupt,
    while spark-submit is still exec'ing spark-class and java (its command line then reads empty for a moment;
    a stop that looked for the launch by command line once missed it there)."""
    marker = uuid.uuid4().hex
    log = tmp_path / "launch.log"  # a file, not a pipe: a JVM left behind would hold a pipe open
    with open(log, "w") as out:
        done = subprocess.run([sys.executable, "-c", CUT_SHORT], stdout=out, stderr=subprocess.STDOUT, timeout=300,
                              env={**os.environ, "SPARK_DRIVER_MEMORY": "1g", "PINPIPE_LAUNCH_TEST": marker})
    assert done.returncode == 0 and "interrupted: cut short mid-launch" in log.read_text(), log.read_text()[-3000:]
    deadline = time.monotonic() + 30
    while processes_with_env("PINPIPE_LAUNCH_TEST", marker):
        assert time.monotonic() < deadline, f"left running: {processes_with_env('PINPIPE_LAUNCH_TEST', marker)}"
        time.sleep(0.2)


def test_the_stop_of_a_launch_cut_short_finds_it_by_process_group_and_kills_what_ignores_sigterm():
    """The stop finds the launch as a new child leading its own process group, whatever its command line says,
    and SIGKILLs a group still alive after its patience; children from before the launch are left alone."""
    from pinpipe.spark import session

    older = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        before = session._children(os.getpid())
        stubborn = subprocess.Popen(["bash", "-c", "trap '' TERM; echo ready; sleep 60 & wait; sleep 60"],
                                    start_new_session=True, stdout=subprocess.PIPE, text=True)
        # SIGTERM sent before bash had set its trap ended it (-15): a CI run on a busy machine
        assert stubborn.stdout.readline() == "ready\n"
        started = time.monotonic()
        session._stop_driver_launch(before, patience_s=1.0)
        assert stubborn.wait(timeout=10) == -9  # SIGKILL: it ignored SIGTERM
        assert time.monotonic() - started >= 1.0
        assert older.poll() is None
        stubborn.stdout.close()
    finally:
        older.kill()
        older.wait()


def test_a_warm_up_runs_the_notebooks_steps_and_leaves_the_session_as_it_was(spark, tmp_path):
    from pinpipe.spark import sample_batch

    settings = dict(spark.sparkContext.getConf().getAll())
    conf = {key: spark.conf.get(key) for key in ("spark.sql.shuffle.partitions", "spark.sql.session.timeZone",
                                                 "spark.sql.ansi.enabled", "spark.sql.autoBroadcastJoinThreshold",
                                                 "spark.sql.codegen.wholeStage", "spark.sql.codegen.factoryMode")}
    temp = set(Path(tempfile.gettempdir()).glob("pinpipe-warm-up-*"))
    cached = set(spark.sparkContext._jsc.getPersistentRDDs().keys())  # the shared session's earlier tests may cache
    assert sample_batch.warm_up(spark).startswith("Spark warm-up done in ")
    assert set(spark.sparkContext._jsc.getPersistentRDDs().keys()) == cached  # nothing cached
    assert {key: spark.conf.get(key) for key in conf} == conf
    assert dict(spark.sparkContext.getConf().getAll()) == settings
    assert set(Path(tempfile.gettempdir()).glob("pinpipe-warm-up-*")) == temp  # its folder removed
    # the real batch already there: it stops after its first step (reading, cleaning and saving)
    (tmp_path / "batch-written").touch()
    assert sample_batch.warm_up(spark, until=str(tmp_path / "batch-written")).startswith(
        "Spark warm-up cut short (the batch is there) in ")
    # its runner stopping: the same, said as such
    (tmp_path / "stop").touch()
    assert sample_batch.warm_up(spark, until=str(tmp_path / "not-yet"), stop_file=str(tmp_path / "stop")).startswith(
        "Spark warm-up stopped in ")
    assert set(Path(tempfile.gettempdir()).glob("pinpipe-warm-up-*")) == temp


def test_the_sample_batchs_steps_answer_from_the_sample(spark, tmp_path):
    """The warm-up's run is the notebook's: its results are those of the three sample triplets, worked out by hand."""
    import json

    from pinpipe.spark import sample_batch

    sample_batch.write_sample(tmp_path)
    assert sample_batch.run_steps(spark, tmp_path, small=True)
    assert json.loads((tmp_path / "results-True" / "summary.json").read_text())["input_rows"] == {
        "pin": 3, "geo": 3, "user": 3}
    # posts per category per year, 2018-2022: food 2019, art 2021, travel 2020
    with open(tmp_path / "results-True" / "q2_category_posts_by_year.csv", encoding="utf-8") as handle:
        assert handle.read().split() == ["post_year,category,category_count", "2019,food,1", "2020,travel,1",
                                         "2021,art,1"]


def test_a_local_session_keeps_more_compiled_classes_than_one_notebook_run_makes(spark):
    """Spark compiles each generated class once and caches it by its source; with its default of 100 entries (four
    parts of 25) a query's classes were evicted by the next hundred and compiled again. Here 150 classes of
    different sources go through Spark's code generator, then the first again: nothing new is compiled."""
    jvm = spark.sparkContext._jvm
    codegen = jvm.org.apache.spark.sql.catalyst.expressions.codegen
    compiled = jvm.org.apache.spark.metrics.source.CodegenMetrics.METRIC_COMPILATION_TIME()

    def compile_class(value: int) -> None:
        source = f"public Object generate(Object[] references) {{ return Long.valueOf({value}L); }}"
        codegen.CodeGenerator.compile(codegen.CodeAndComment(source, jvm.scala.collection.mutable.HashMap()))

    started = compiled.getCount()
    compile_class(1_000_001)
    assert compiled.getCount() == started + 1  # the premise: a source not seen before is compiled
    for value in range(2, 152):
        compile_class(value)
    before = compiled.getCount()
    compile_class(1_000_001)
    assert compiled.getCount() == before
