"""Spark services for the notebook tests, started from pyspark's own jars and stopped by pid: a Spark
Connect server, and a standalone cluster of one master and two workers."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from contextlib import ExitStack, contextmanager
from pathlib import Path

import nbformat
import pyspark

from pinpipe.spark import class_archive
from pinpipe.spark.session import QUICK_JIT, jit_options
from tests.conftest import free_port

SPARK_HOME = Path(pyspark.__file__).parent

# Databricks serverless refuses these; the stand-in makes them raise in the notebook's kernel.
SERVERLESS_GUARD = '''
from pyspark.sql.connect.conf import RuntimeConf as _RuntimeConf
from pyspark.sql.connect.dataframe import DataFrame as _DataFrame

def _refused(what):
    def refuse(*args, **kwargs):
        raise RuntimeError(f"[NOT_SUPPORTED_WITH_SERVERLESS] {what} is not supported on serverless compute")
    return refuse

_DataFrame.cache = _refused("cache")
_DataFrame.persist = _refused("persist")
_DataFrame.rdd = property(_refused("the RDD API"))
_set = _RuntimeConf.set
_RuntimeConf.set = lambda self, key, value: (_set(self, key, value) if key == "spark.sql.session.timeZone"
                                             else _refused(f"setting {key}")())
'''


def spark_env() -> dict[str, str]:
    # The master and workers only schedule and launch: C1 alone and Spark's class archive (their class path is
    # a driver's) start them sooner (spark-class passes SPARK_DAEMON_JAVA_OPTS to them, not to their executors).
    return {**os.environ, "SPARK_HOME": str(SPARK_HOME), "SPARK_LOCAL_IP": "127.0.0.1",
            "SPARK_DAEMON_JAVA_OPTS": f"{QUICK_JIT} {class_archive.java_option()}".strip()}


@contextmanager
def process(args: list[str], log: Path):
    """A JVM started by pyspark's scripts (they exec java, so the pid is the JVM's); SIGTERM, then SIGKILL."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=spark_env(), start_new_session=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=30)


def wait_until(ready, proc: subprocess.Popen, log: Path, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{what} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if ready():
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{what} not ready within {timeout} s:\n{log.read_text()[-3000:]}")


def port_open(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1):
        return True


@contextmanager
def connect_server(workdir: Path, cores: int = 2, jars: tuple[Path, ...] = ()):
    """A Spark Connect server on 127.0.0.1 (what Spark's sbin/start-connect-server.sh runs), with `jars` on its class
    path; yields its sc:// URL."""
    port = free_port()
    log = workdir / "connect-server.log"
    args = [str(SPARK_HOME / "bin" / "spark-submit"), "--class", "org.apache.spark.sql.connect.service.SparkConnectServer",
            "--master", f"local[{cores}]", "--conf", f"spark.connect.grpc.binding.port={port}",
            "--conf", "spark.connect.grpc.binding.address=127.0.0.1", "--conf", "spark.driver.memory=2g",
            # the server runs the queries: the JVM flags get_spark gives a local driver for a small batch
            "--conf", f"spark.driver.extraJavaOptions={jit_options(None, small=True)} {class_archive.java_option()}",
            "--conf", "spark.ui.enabled=false", "--conf", f"spark.sql.warehouse.dir={workdir / 'warehouse'}",
            *(["--jars", ",".join(str(jar) for jar in jars)] if jars else [])]
    with process(args, log) as proc:
        wait_until(lambda: port_open(port), proc, log, "the Spark Connect server")
        yield f"sc://127.0.0.1:{port}"


@contextmanager
def standalone_cluster(workdir: Path, workers: int = 2):
    """A master and `workers` workers of one core each (bin/spark-class); yields the spark:// URL once every
    worker has registered."""
    port, ui = free_port(), free_port()
    spark_class = str(SPARK_HOME / "bin" / "spark-class")
    with ExitStack() as stack:
        master_log = workdir / "master.log"
        master = stack.enter_context(process(
            [spark_class, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(port),
             "--webui-port", str(ui)], master_log))
        wait_until(lambda: port_open(port), master, master_log, "the Spark master")
        url = f"spark://127.0.0.1:{port}"
        for n in range(workers):
            (workdir / f"worker-{n}").mkdir(exist_ok=True)
            stack.enter_context(process(
                [spark_class, "org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1", "--cores", "1",
                 "--memory", "1536m", "--webui-port", str(free_port()), "--work-dir", str(workdir / f"worker-{n}"),
                 url], workdir / f"worker-{n}.log"))

        def registered() -> bool:
            with urllib.request.urlopen(f"http://127.0.0.1:{ui}/json/", timeout=2) as response:
                return json.load(response).get("aliveworkers", 0) >= workers

        wait_until(registered, master, master_log, f"{workers} workers")
        yield url


def insert_after_parameters(nb, source: str) -> None:
    """Insert a code cell right after the notebook's parameters cell (where papermill puts its own)."""
    at = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])) + 1
    nb.cells.insert(at, nbformat.v4.new_code_cell(source))
