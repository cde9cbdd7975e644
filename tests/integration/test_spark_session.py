"""The local session get_spark starts: what its JVM runs with."""
from __future__ import annotations

import os
import subprocess
import sys

from pinpipe.spark import class_archive
from pinpipe.spark.spark_io import JIT_HUGE_METHODS, QUICK_JIT


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


def test_a_session_of_unknown_input_size_keeps_the_optimising_compiler(spark):
    arguments = list(spark.sparkContext._jvm.java.lang.management.ManagementFactory.getRuntimeMXBean()
                     .getInputArguments())
    assert QUICK_JIT not in arguments  # the fixture's session is started without input_bytes


def test_a_session_for_a_small_batch_compiles_with_c1_only_and_maps_the_class_archive(tmp_path):
    """The notebook passes its batch's size: a small one gets a JVM that starts quickly (jit_options), and every
    new local driver maps Spark's class archive (class_archive.py; run_tests.sh builds it, else it is built
    here): the JVM has the file mapped, not just the flag, and answers a query."""
    archive = class_archive.ensure()
    assert archive is not None and archive.is_file()
    for name in ("pin_data.csv", "geo_data.csv", "user_data.csv"):
        (tmp_path / name).write_text("idx\n1\n")
    script = ("import sys; from pinpipe.spark.spark_io import batch_bytes, get_spark; "
              "spark = get_spark('local[1]', input_bytes=batch_bytes(sys.argv[1])); "
              "jvm = spark.sparkContext._jvm; "
              "print(list(jvm.java.lang.management.ManagementFactory.getRuntimeMXBean().getInputArguments())); "
              "pid = jvm.java.lang.ProcessHandle.current().pid(); "
              "print('mapped:', sys.argv[2] in open(f'/proc/{pid}/maps').read()); "
              "print('rows:', spark.range(7).count())")
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path), str(archive)], capture_output=True,
                          text=True, timeout=300, env={**os.environ, "SPARK_DRIVER_MEMORY": "1g"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert QUICK_JIT == "-XX:TieredStopAtLevel=1"
    assert f"'{QUICK_JIT}'" in done.stdout and f"'{JIT_HUGE_METHODS}'" in done.stdout
    assert f"'-XX:SharedArchiveFile={archive}'" in done.stdout
    assert "mapped: True" in done.stdout and "rows: 7" in done.stdout
    assert "Unable to use shared archive" not in done.stdout + done.stderr
