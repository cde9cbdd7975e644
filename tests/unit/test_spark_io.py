"""collect_all: the small results collected at once, one job each, each under its own name. root_cause: a Spark
error's innermost cause in one line."""
from __future__ import annotations

import threading

import pytest

from pinpipe.spark.spark_io import collect_all, root_cause


class Frame:
    """Stands in for a DataFrame whose collect() returns only once `gate` has let every frame's collect in."""

    def __init__(self, name: str, gate: threading.Barrier) -> None:
        self.columns, self.schema, self.name, self.gate = ["name"], None, name, gate

    def collect(self):
        self.gate.wait(timeout=10)  # BrokenBarrierError unless all are collected at once
        return [(self.name,)]


def test_every_result_is_collected_at_the_same_time_by_default():
    names = [f"q{n}" for n in range(9)]  # the notebook's nine questions
    gate = threading.Barrier(len(names))
    results = collect_all({name: Frame(name, gate) for name in names})
    assert {name: result.rows for name, result in results.items()} == {name: [(name,)] for name in names}
    assert list(results) == names


def test_a_thread_count_given_bounds_it():
    gate = threading.Barrier(1)  # one at a time: each collect passes the gate alone
    results = collect_all({name: Frame(name, gate) for name in ("a", "b", "c")}, threads=1)
    assert [result.rows for result in results.values()] == [[("a",)], [("b",)], [("c",)]]


class JavaThrowable:
    """Stands in for a JVM exception reached through py4j: toString() and getCause()."""

    def __init__(self, text: str, cause: JavaThrowable | None = None) -> None:
        self.text, self.cause = text, cause

    def toString(self) -> str:  # noqa: N802 (Java's name)
        return self.text

    def getCause(self) -> JavaThrowable | None:  # noqa: N802
        return self.cause


class JavaError(Exception):
    def __init__(self, text: str, java_exception: JavaThrowable | None = None) -> None:
        super().__init__(text)
        self.java_exception = java_exception


TRACE = """An error occurred while calling o1190.parquet.
: org.apache.spark.SparkException: [TASK_WRITE_FAILED] Task failed while writing rows to file:/data/cleaned/pin.
\tat org.apache.spark.sql.errors.QueryExecutionErrors$.taskFailedWhileWritingRowsError(QueryExecutionErrors.scala:774)
Caused by: org.apache.parquet.util.AutoCloseables$ParquetCloseResourceException: Unable to close resource
\tat org.apache.parquet.util.AutoCloseables.uncheckedClose(AutoCloseables.java:85)
Caused by: java.io.IOException: No space left on device
\tat java.base/java.io.FileOutputStream.writeBytes(Native Method)
\t... 43 more"""

FOREACH_BATCH = """An exception was raised by the Python Proxy. Return Message: Traceback (most recent call last):
  File "/venv/lib/python3.11/site-packages/py4j/clientserver.py", line 644, in _call_proxy
    return_value = getattr(self.pool[obj_id], method)(*params)
  File "/venv/lib/python3.11/site-packages/py4j/protocol.py", line 327, in get_return_value
    raise Py4JJavaError(
py4j.protocol.Py4JJavaError: An error occurred while calling o59.parquet.
: org.apache.hadoop.fs.ParentNotDirectoryException: Parent path is not a directory: file:/data/stream/posts"""


@pytest.mark.parametrize("error, cause", [
    (JavaError("An error occurred", JavaThrowable("org.apache.spark.SparkException: Job aborted", JavaThrowable(
        "java.io.IOException: No space left on device"))), "java.io.IOException: No space left on device"),
    (JavaError(TRACE), "java.io.IOException: No space left on device"),  # the JVM not reachable: its text
    (JavaError("wrapped", JavaThrowable(FOREACH_BATCH)),
     "org.apache.hadoop.fs.ParentNotDirectoryException: Parent path is not a directory: file:/data/stream/posts"),
    (RuntimeError(FOREACH_BATCH),
     "org.apache.hadoop.fs.ParentNotDirectoryException: Parent path is not a directory: file:/data/stream/posts"),
    (RuntimeError("[TASK_WRITE_FAILED] Task failed while writing rows to s3a://b/cleaned/pin.\n\nJVM stacktrace:"),
     "[TASK_WRITE_FAILED] Task failed while writing rows to s3a://b/cleaned/pin."),  # Spark Connect's
    (RuntimeError(""), "RuntimeError"),
], ids=["java-chain", "trace-text", "foreach-batch-cause", "foreach-batch-text", "connect", "empty"])
def test_root_cause_is_the_innermost_cause_in_one_line(error, cause):
    assert root_cause(error) == cause
