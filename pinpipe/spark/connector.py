"""Spark's Kafka source (spark-sql-kafka-0-10) for a local or cluster Spark: its jars fetched once from Maven
Central with `mvn`, like Kafka's own, and cached per Spark version. Databricks has the connector built in.

A Spark Connect server of your own needs them on its class path for the streaming notebook (README, "On a Spark
Connect server of your own"):
    spark-submit --class org.apache.spark.sql.connect.service.SparkConnectServer \
        --jars "$(python -m pinpipe.spark.connector)"
"""
from __future__ import annotations

import fcntl
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

SCALA_VERSION = "2.13"
ARTIFACT = f"org.apache.spark:spark-sql-kafka-0-10_{SCALA_VERSION}"

POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.pinpipe</groupId><artifactId>spark-kafka-runtime</artifactId><version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.spark</groupId><artifactId>spark-sql-kafka-0-10_{scala}</artifactId>
      <version>{version}</version></dependency>
  </dependencies>
</project>
"""


class ConnectorUnavailable(RuntimeError):
    """The Kafka connector for this Spark version could not be fetched."""


def cache_dir(spark_version: str) -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "pinpipe" / f"spark-sql-kafka-{spark_version}"


def kafka_connector_jars(spark_version: str | None = None) -> list[Path]:
    """The connector's jars and its runtime dependencies (kafka-clients, commons-pool2, the token provider),
    without what Spark ships (the pom marks Spark `provided`). Fetched on first use; later calls are a listing."""
    if spark_version is None:
        import pyspark

        spark_version = pyspark.__version__
    target = cache_dir(spark_version)
    if not (target / ".complete").exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target.with_name(target.name + ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # one fetch at a time; whoever waited finds it complete
            if not (target / ".complete").exists():
                _fetch(spark_version, target)
    shipped = _artifacts_spark_ships()
    # Only what Spark lacks: a second scala-library or hadoop-client on the classpath is asking for trouble.
    return sorted(jar for jar in target.glob("*.jar") if artifact_name(jar.name) not in shipped)


def artifact_name(jar: str) -> str:
    """`kafka-clients-3.9.2.jar` -> `kafka-clients`: the name up to the version (`-<digits>.<digit>`), so
    `spark-sql-kafka-0-10_2.13-4.2.0.jar` -> `spark-sql-kafka-0-10_2.13`."""
    stem = jar.removesuffix(".jar")
    match = re.match(r"^(.+?)-\d+\.\d", stem)
    return match.group(1) if match else stem


def _artifacts_spark_ships() -> set[str]:
    import pyspark

    home = Path(os.environ.get("SPARK_HOME") or Path(pyspark.__file__).parent)
    return {artifact_name(jar.name) for jar in (home / "jars").glob("*.jar")}


def _fetch(spark_version: str, target: Path) -> None:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise ConnectorUnavailable(
            f"fetching {ARTIFACT}:{spark_version} needs Maven (mvn) on PATH; or start Spark with "
            f"--packages {ARTIFACT}:{spark_version} where Maven Central is reachable")
    log.info("fetching %s:%s and its dependencies into %s (once)", ARTIFACT, spark_version, target)
    with tempfile.TemporaryDirectory(prefix="spark-kafka-") as work:
        pom = Path(work) / "pom.xml"
        pom.write_text(POM.format(scala=SCALA_VERSION, version=spark_version))
        staging = Path(work) / "jars"
        done = subprocess.run([mvn, "-B", "-q", "-f", str(pom), "dependency:copy-dependencies",
                               "-DincludeScope=runtime", f"-DoutputDirectory={staging}"],
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise ConnectorUnavailable(
                f"mvn could not fetch {ARTIFACT}:{spark_version} (is that version on Maven Central? it must equal "
                f"pyspark's): {(done.stdout + done.stderr).strip()[-1500:]}")
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        shutil.copytree(staging, partial)
        (partial / ".complete").touch()
        shutil.rmtree(target, ignore_errors=True)
        partial.rename(target)


def main(argv: list[str] | None = None) -> int:
    """Print the Kafka connector's jars for this pyspark, comma-separated (for --jars), fetching them once."""
    import argparse

    from pinpipe.common.logs import setup_logging

    parser = argparse.ArgumentParser(
        prog="python -m pinpipe.spark.connector", description=main.__doc__,
        epilog='e.g. spark-submit --class org.apache.spark.sql.connect.service.SparkConnectServer '
               '--jars "$(python -m pinpipe.spark.connector)"')
    parser.add_argument("--spark-version", default=None, help="the Spark version (default: the installed pyspark's)")
    args = parser.parse_args(argv)
    setup_logging()  # to stderr: stdout is the list
    try:
        jars = kafka_connector_jars(args.spark_version)
    except ConnectorUnavailable as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(",".join(str(jar) for jar in jars))
    return 0


if __name__ == "__main__":
    sys.exit(main())
