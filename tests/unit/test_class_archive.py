"""Spark's class archive: where it lives, what names it, when a driver uses it, what a failed build leaves."""
from __future__ import annotations

import csv
import os
import threading
import time
from pathlib import Path

import pytest

from pinpipe.common.schema import CSV_FILES, FIELDS
from pinpipe.spark import class_archive, sample_batch


@pytest.fixture
def installs(tmp_path, monkeypatch):
    """A fake Java build and Spark install, and a private cache directory."""
    java_home = tmp_path / "jdk"
    (java_home / "bin").mkdir(parents=True)
    (java_home / "lib" / "server").mkdir(parents=True)
    (java_home / "bin" / "java").write_text("#!/bin/sh\n")
    (java_home / "bin" / "java").chmod(0o755)
    (java_home / "lib" / "server" / "libjvm.so").write_bytes(b"jvm")
    spark = tmp_path / "spark"
    (spark / "jars").mkdir(parents=True)
    for name in ("spark-core_2.13-4.2.0.jar", "spark-sql_2.13-4.2.0.jar"):
        (spark / "jars" / name).write_bytes(b"jar")
    monkeypatch.setenv("JAVA_HOME", str(java_home))
    monkeypatch.setenv("SPARK_HOME", str(spark))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("SPARK_CLASS_ARCHIVE", raising=False)
    return java_home, spark


def key(java_home: Path, spark: Path) -> str:
    return class_archive.archive_key(java_home / "bin" / "java", spark)


def test_the_key_is_stable_and_changes_with_the_java_build_any_spark_jar_or_where_spark_is(installs):
    java_home, spark = installs
    first = key(java_home, spark)
    assert key(java_home, spark) == first and len(first) == 16
    (spark / "jars" / "spark-sql_2.13-4.2.0.jar").write_bytes(b"a longer jar")
    second = key(java_home, spark)
    (spark / "jars" / "extra.jar").write_bytes(b"jar")
    third = key(java_home, spark)
    (java_home / "lib" / "server" / "libjvm.so").write_bytes(b"another jvm build")
    fourth = key(java_home, spark)
    moved = spark.rename(spark.parent / "another-venv")  # the same jars elsewhere: the archive names paths
    fifth = key(java_home, moved)
    assert len({first, second, third, fourth, fifth}) == 5


def test_the_archive_lives_in_the_cache_named_by_the_key_unless_a_path_or_off_is_set(installs, monkeypatch,
                                                                                     tmp_path):
    java_home, spark = installs
    assert class_archive.archive_path() == tmp_path / "cache" / "pinpipe" / "spark-classes" / f"{key(java_home, spark)}.jsa"
    monkeypatch.setenv("SPARK_CLASS_ARCHIVE", str(tmp_path / "mine.jsa"))
    assert class_archive.archive_path() == tmp_path / "mine.jsa"
    monkeypatch.setenv("SPARK_CLASS_ARCHIVE", "OFF")
    assert class_archive.archive_path() is None
    assert class_archive.java_option() == ""


def test_a_driver_gets_the_flag_only_when_the_archive_exists(installs):
    path = class_archive.archive_path()
    assert class_archive.java_option() == ""
    path.parent.mkdir(parents=True)
    path.write_bytes(b"archive")
    assert class_archive.java_option() == f"-XX:SharedArchiveFile={path}"


def test_no_java_means_no_archive(installs, monkeypatch, tmp_path):
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "nowhere"))
    assert class_archive.archive_path() is None and class_archive.java_option() == ""


def test_a_failed_build_is_not_retried_on_every_run_until_asked(installs, monkeypatch):
    path = class_archive.archive_path()
    path.parent.mkdir(parents=True)
    class_archive.failure_note(path).write_text("exit 1: no space left on device\n")
    monkeypatch.setattr(class_archive, "build", lambda *args: pytest.fail("a failed build was retried"))
    lines = []
    assert class_archive.ensure(log=lines.append) is None
    assert "an earlier build failed" in lines[0] and "--rebuild" in lines[0]


def test_two_processes_that_want_the_archive_at_once_build_it_once(installs, monkeypatch):
    """The second waits on the first's lock (flock: one per open file, so two threads stand in for two
    processes), then uses the archive the first built."""
    path = class_archive.archive_path()
    builds, entered = [], threading.Event()

    def slow_build(target, log):
        builds.append(target)
        entered.set()
        time.sleep(0.5)
        target.write_bytes(b"archive")
        return target

    monkeypatch.setattr(class_archive, "build", slow_build)
    logs: list[list[str]] = [[], []]
    got = [None, None]
    first = threading.Thread(target=lambda: got.__setitem__(0, class_archive.ensure(log=logs[0].append)))
    first.start()
    assert entered.wait(10)
    got[1] = class_archive.ensure(log=logs[1].append)  # while the first is building
    first.join(10)
    assert builds == [path] and got == [path, path]
    assert any("waiting for another process" in line for line in logs[1])


def test_a_build_that_fails_leaves_no_archive_and_a_note(installs, monkeypatch):
    """The training run (sample_batch.train_archive) exits non-zero (here: a Spark install with no real jars):
    nothing is renamed into place."""
    path = class_archive.archive_path()
    lines = []
    assert class_archive.build(path, log=lines.append) is None
    assert not path.exists() and not list(path.parent.glob("*.partial"))
    assert class_archive.failure_note(path).read_text().startswith("exit ")
    assert "not built" in lines[-1]


def test_pruning_keeps_the_newest_archives_of_other_installs(tmp_path):
    now = time.time()
    for age, name in enumerate(["a", "b", "c", "d", "e"]):
        (tmp_path / f"{name}.jsa").write_bytes(b"x")
        os.utime(tmp_path / f"{name}.jsa", (now - 100 * age, now - 100 * age))
    current = tmp_path / "current.jsa"
    current.write_bytes(b"x")
    for name in ("d", "e"):  # what a pruned archive's build left beside it goes with it
        (tmp_path / f"{name}.jsa.lock").write_bytes(b"")
        (tmp_path / f"{name}.jsa.failed").write_text("exit 1\n")
    class_archive._prune(current)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.jsa", "b.jsa", "c.jsa", "current.jsa"]


def test_pruning_removes_first_the_archives_whose_spark_install_is_gone(tmp_path):
    """Clones come and go, each venv with its own archive: a removed clone's archive goes even when it is the
    newest, and does not push out an older one whose install is still there."""
    cache, now = tmp_path / "cache", time.time()
    cache.mkdir()
    installs = {name: tmp_path / name / "pyspark" for name in "abcde"}
    for name in "ade":  # b and c were removed with their clones
        (installs[name] / "jars").mkdir(parents=True)
    for age, name in enumerate("bcade"):  # b newest, e oldest
        (cache / f"{name}.jsa").write_bytes(b"x")
        (cache / f"{name}.jsa.spark-home").write_text(f"{installs[name]}\n")
        os.utime(cache / f"{name}.jsa", (now - 100 * age, now - 100 * age))
    (cache / "old.jsa").write_bytes(b"x")  # built before owner notes: its install counts as present
    os.utime(cache / "old.jsa", (now - 1000, now - 1000))
    current = cache / "current.jsa"
    current.write_bytes(b"x")
    class_archive._prune(current)
    assert sorted(p.name for p in cache.iterdir()) == [
        "a.jsa", "a.jsa.spark-home", "current.jsa", "d.jsa", "d.jsa.spark-home", "e.jsa", "e.jsa.spark-home"]


def test_pruning_keeps_the_archives_used_last_not_the_ones_built_last(tmp_path, monkeypatch):
    """The archive of a clone used every day outlives those of clones built since and run once."""
    cache, now = tmp_path / "cache", time.time()
    cache.mkdir()
    for age, name in enumerate("abcde"):  # a built last, e first; all their installs still there
        install = tmp_path / name / "pyspark"
        (install / "jars").mkdir(parents=True)
        for path in (cache / f"{name}.jsa", cache / f"{name}.jsa.spark-home"):
            path.write_text(f"{install}\n")
            os.utime(path, (now - 1000 - 100 * age, now - 1000 - 100 * age))
    monkeypatch.setenv("SPARK_CLASS_ARCHIVE", str(cache / "e.jsa"))
    assert class_archive.java_option() == f"-XX:SharedArchiveFile={cache / 'e.jsa'}"  # a driver starts with e
    assert (cache / "e.jsa.spark-home").stat().st_mtime >= now
    current = cache / "current.jsa"
    current.write_bytes(b"x")
    class_archive._prune(current)
    assert sorted(p.name for p in cache.glob("*.jsa")) == ["a.jsa", "b.jsa", "current.jsa", "e.jsa"]


def test_the_sample_batch_is_three_files_in_the_extractors_format(tmp_path):
    sample_batch.write_sample(tmp_path)
    for kind, name in CSV_FILES.items():
        raw = (tmp_path / name).read_bytes()
        assert raw.count(b"\r\n") >= 4  # header and three rows, CRLF as the extractor writes
        with open(tmp_path / name, encoding="utf-8", newline="") as handle:
            rows = list(csv.reader(handle))
        assert tuple(rows[0]) == FIELDS[kind]
        assert [row[0] for row in rows[1:]] == ["1", "2", "3"]
        assert all(len(row) == len(FIELDS[kind]) for row in rows)
