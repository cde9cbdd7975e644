"""Which of the Kafka connector's jars are put on Spark's class path."""
from __future__ import annotations

import pytest

from pinpipe.spark import connector


@pytest.mark.parametrize("jar, name", [
    ("kafka-clients-3.9.2.jar", "kafka-clients"),
    ("spark-sql-kafka-0-10_2.13-4.2.0.jar", "spark-sql-kafka-0-10_2.13"),
    ("scala-library-2.13.15.jar", "scala-library"),
    ("hadoop-client-runtime-3.5.0.jar", "hadoop-client-runtime"),
])
def test_artifact_names_drop_the_version(jar, name):
    assert connector.artifact_name(jar) == name


def test_only_jars_spark_lacks_are_used(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    cached = connector.cache_dir("9.9.9")
    cached.mkdir(parents=True)
    for jar in ("kafka-clients-3.9.2.jar", "spark-sql-kafka-0-10_2.13-9.9.9.jar", "scala-library-2.13.99.jar"):
        (cached / jar).touch()
    (cached / ".complete").touch()
    spark_home = tmp_path / "spark"
    (spark_home / "jars").mkdir(parents=True)
    (spark_home / "jars" / "scala-library-2.13.16.jar").touch()
    monkeypatch.setenv("SPARK_HOME", str(spark_home))
    assert [p.name for p in connector.kafka_connector_jars("9.9.9")] == [
        "kafka-clients-3.9.2.jar", "spark-sql-kafka-0-10_2.13-9.9.9.jar"]


def test_the_command_prints_the_jars_for_dash_dash_jars_or_says_why_not(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    cached = connector.cache_dir("9.9.9")
    cached.mkdir(parents=True)
    for jar in ("kafka-clients-3.9.2.jar", "spark-sql-kafka-0-10_2.13-9.9.9.jar"):
        (cached / jar).touch()
    (cached / ".complete").touch()
    monkeypatch.setenv("SPARK_HOME", str(tmp_path / "no-spark"))
    assert connector.main(["--spark-version", "9.9.9"]) == 0
    assert capsys.readouterr().out == f"{cached / 'kafka-clients-3.9.2.jar'},{cached / 'spark-sql-kafka-0-10_2.13-9.9.9.jar'}\n"
    monkeypatch.setenv("PATH", str(tmp_path))  # no mvn to fetch another version with
    assert connector.main(["--spark-version", "9.9.8"]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("error: fetching org.apache.spark:spark-sql-kafka-0-10_2.13:9.9.8 needs Maven")
