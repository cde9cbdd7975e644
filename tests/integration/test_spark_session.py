"""The local session get_spark starts: what its JVM runs with."""
from __future__ import annotations

from pinpipe.spark.spark_io import JIT_HUGE_METHODS


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
