"""start_kafka.sh / stop_kafka.sh against a private broker (not the session one)."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient

from pinpipe.common.config import PROJECT_ROOT
from tests.conftest import TEST_KAFKA_PORT, kafka_env, run_script
from tests.helpers import consume_all, process_arguments

PORT = TEST_KAFKA_PORT + 100
TOPICS = {"PIN_TOPIC": "scripts.pin", "GEO_TOPIC": "scripts.geo", "USER_TOPIC": "scripts.user"}


@pytest.fixture
def env(tmp_path):
    env = kafka_env(tmp_path / "state", PORT, KAFKA_PARTITIONS="2", **TOPICS)
    env.pop("KAFKA_JIT_OPTS", None)  # the defaults are under test
    yield env
    run_script("stop_kafka.sh", env, check=False)


def bootstrap() -> str:
    return f"localhost:{PORT}"


def partition_counts() -> dict[str, int]:
    """The partitions of each of the scripts' topics, as the broker describes them."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap())
    try:
        return {t["name"]: len(t["partitions"]) for t in admin.describe_topics(list(TOPICS.values()))}
    finally:
        admin.close()


def broker_arguments(env) -> list[str]:
    """The running broker JVM's command line (its pid file is in KAFKA_STATE_DIR)."""
    return process_arguments((Path(env["KAFKA_STATE_DIR"]) / "kafka.pid").read_text().strip())


def test_message_survives_a_restart_and_topics_have_the_configured_partitions(env):
    run_script("start_kafka.sh", env)
    assert "-XX:TieredStopAtLevel=1" in broker_arguments(env)  # KAFKA_JIT_OPTS' default: C1 only
    assert partition_counts() == {name: 2 for name in TOPICS.values()}

    payload = uuid.uuid4().hex.encode()
    producer = KafkaProducer(bootstrap_servers=bootstrap(), acks="all")
    producer.send("scripts.pin", key=b"7", value=payload).get(timeout=30)
    producer.close()

    stopped = run_script("stop_kafka.sh", env)
    assert "Kafka stopped" in stopped.stdout
    # Restarted asking for another partition count: the topics keep theirs, and both messages say so. An empty
    # KAFKA_JIT_OPTS gives HotSpot's default JIT.
    restarted = run_script("start_kafka.sh", {**env, "KAFKA_PARTITIONS": "3", "KAFKA_JIT_OPTS": ""})
    assert not any(argument.startswith("-XX:TieredStopAtLevel") for argument in broker_arguments(env))
    assert "warning: topic scripts.pin has 2 partitions, not KAFKA_PARTITIONS=3" in restarted.stderr
    assert "with partitions scripts.pin 2, scripts.geo 2, scripts.user 2" in restarted.stdout

    assert [record.value for record in consume_all(bootstrap(), ["scripts.pin"])] == [payload]


def test_start_twice_says_already_running_and_stop_twice_is_harmless(env):
    run_script("start_kafka.sh", env)
    again = run_script("start_kafka.sh", env)
    assert "already running" in again.stdout
    run_script("stop_kafka.sh", env)
    second = run_script("stop_kafka.sh", env)
    assert "not running" in second.stdout


def test_a_start_interrupted_by_ctrl_c_is_completed_by_the_next_one(env):
    """Ctrl-C stops start_kafka.sh while its broker starts (the broker, in the background, ignores it): started
    again, it waits for that broker and creates the topics the first start did not get to."""
    def broker_runs() -> bool:
        try:
            return "kafka.Kafka" in broker_arguments(env)
        except (FileNotFoundError, ValueError):  # no pid file yet, or not written whole
            return False

    start = subprocess.Popen([str(PROJECT_ROOT / "start_kafka.sh")], env=env, stdout=subprocess.DEVNULL,
                             start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        # Ctrl-C once the broker's JVM runs (ignoring SIGINT, as a background job does): a moment earlier the
        # forked shell that is to become it could die of it, and the next start would find a stale pid file
        while not broker_runs():
            assert start.poll() is None and time.monotonic() < deadline, "start_kafka.sh never launched its broker"
            time.sleep(0.02)
        os.killpg(start.pid, signal.SIGINT)
        start.wait(timeout=60)
    finally:
        if start.poll() is None:
            start.kill()
    assert start.returncode == -signal.SIGINT
    again = run_script("start_kafka.sh", env)
    assert "already running" in again.stdout and "Kafka is ready" in again.stdout
    assert partition_counts() == {name: 2 for name in TOPICS.values()}


def test_stale_pid_file_is_removed_not_trusted(env, tmp_path):
    dead = subprocess.Popen(["true"])
    dead.wait()
    state = tmp_path / "state"
    state.mkdir()
    (state / "kafka.pid").write_text(f"{dead.pid}\n")
    started = run_script("start_kafka.sh", env)
    assert "stale pid file" in started.stdout.lower()
    pid = int((state / "kafka.pid").read_text())
    assert pid != dead.pid


def test_port_taken_by_another_program_refuses_with_the_reason(env):
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", PORT))
        sock.listen()
        result = run_script("start_kafka.sh", env, check=False)
    assert result.returncode != 0
    assert f"port {PORT} is already in use" in result.stderr


def test_java_older_than_17_is_refused(env, tmp_path):
    fake = tmp_path / "oldjava" / "bin"
    fake.mkdir(parents=True)
    (fake / "java").write_text('#!/bin/sh\necho \'openjdk version "11.0.2" 2019-01-15\' >&2\n')
    (fake / "java").chmod(0o755)
    result = run_script("start_kafka.sh", {**env, "JAVA_HOME": str(fake.parent)}, check=False)
    assert result.returncode != 0
    assert "needs Java 17 or newer" in result.stderr


def test_unwritable_data_directory_is_refused(env, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    result = run_script("start_kafka.sh", {**env, "KAFKA_DATA_DIR": str(blocker / "data")}, check=False)
    assert result.returncode != 0
    assert "not writable" in result.stderr


@pytest.mark.parametrize("args, message", [
    (["--brokers", "0"], "--brokers must be a number from 1 to 9"),
    (["--brokers", "three"], "--brokers must be a number from 1 to 9"),
    (["--brokers", "3", "--node", "4"], "--node must be a number from 1 to 3"),
    (["--node", "2"], "--node must be a number from 1 to 1"),
    (["--bogus"], "unknown argument: --bogus"),
])
def test_cluster_arguments_are_checked_before_anything_starts(env, args, message):
    result = run_script("start_kafka.sh", env, check=False, args=args)
    assert result.returncode != 0 and message in result.stderr
    assert "Starting" not in result.stdout


@pytest.mark.parametrize("setting, value, message", [
    ("KAFKA_PORT", "abc", "KAFKA_PORT must be a whole number from 1 to 65535, not 'abc'"),
    ("KAFKA_CONTROLLER_PORT", "65536", "KAFKA_CONTROLLER_PORT must be a whole number from 1 to 65535, not '65536'"),
    ("KAFKA_PARTITIONS", "0", "KAFKA_PARTITIONS must be a whole number from 1 to 10000, not '0'"),
    ("KAFKA_STOP_TIMEOUT", "-3", "KAFKA_STOP_TIMEOUT must be a whole number from 1 to 86400, not '-3'"),
])
@pytest.mark.parametrize("script", ["start_kafka.sh", "stop_kafka.sh", "run_pipeline.sh"])
def test_a_numeric_setting_that_is_not_a_number_is_named_before_anything_starts(env, script, setting, value,
                                                                                message):
    """One line naming the setting (KAFKA_PORT=abc was bash's "abc: unbound variable"; 0 partitions a Kafka
    tool's stack trace), from every script that reads them."""
    result = run_script(script, {**env, setting: value}, check=False)
    assert result.returncode == 1 and result.stderr == f"error: {message}\n"
    assert not (Path(env["KAFKA_STATE_DIR"]) / "data").exists()


def test_help_describes_cluster_mode_and_stopping_one_node(env):
    start = run_script("start_kafka.sh", env, args=["--help"])
    assert "--brokers N" in start.stdout and "--node N" in start.stdout and "min.insync.replicas=2" in start.stdout
    stop = run_script("stop_kafka.sh", env, args=["--help"])
    assert "--node N" in stop.stdout
    assert "Kafka node 2 is not running" in run_script("stop_kafka.sh", env, args=["--node", "2"]).stdout


def kafka_libs(env) -> Path:
    """The Kafka jars the session broker runs from (fetched by then)."""
    shown = subprocess.run(["bash", "-c", 'source scripts/kafka_common.sh && printf %s "$KAFKA_CACHE_DIR"'],
                           env=env, capture_output=True, text=True, check=True)
    return Path(shown.stdout)


def test_class_archives_come_from_the_first_clean_run_and_the_next_broker_maps_its_own(env, tmp_path, kafka_bootstrap):
    """The first broker and tools write their class-data archives as they exit cleanly (kept only once a JVM maps
    them); the next broker maps its archive; KAFKA_CDS=off makes and uses none; a partial archive cut short is
    removed, never kept."""
    private = {**env, "KAFKA_HOME": str(kafka_libs(env)), "KAFKA_CACHE_DIR": str(tmp_path / "cache")}
    cds, state = tmp_path / "cache" / "cds", Path(env["KAFKA_STATE_DIR"])
    run_script("start_kafka.sh", private)
    assert sorted(p.name.split("-")[0] for p in cds.glob("*.jsa")) == ["StorageTool", "TopicCommand"]
    assert f"-XX:ArchiveClassesAtExit={state / 'kafka-cds.partial'}" in broker_arguments(env)
    run_script("stop_kafka.sh", private)
    broker_archive = next(cds.glob("Kafka-*.jsa"))
    assert not list(cds.glob("*.partial")) and not list(state.glob("*.partial")) and not (state / "cds.note").exists()

    run_script("start_kafka.sh", private)
    assert f"-XX:SharedArchiveFile={broker_archive}" in broker_arguments(env)
    pid = (state / "kafka.pid").read_text().strip()
    assert str(broker_archive) in Path(f"/proc/{pid}/maps").read_text()  # mapped, not just named
    run_script("stop_kafka.sh", private)

    off = subprocess.run(["bash", "-c", 'source scripts/kafka_common.sh && KAFKA_CLASSPATH="$KAFKA_HOME/libs/*" '
                          '&& printf "[%s]" "$(cds_flags "$(cds_archive kafka.Kafka)" /tmp/x.partial)"'],
                         env={**private, "KAFKA_CDS": "off"}, capture_output=True, text=True)
    assert off.returncode == 0 and off.stdout == "[]"  # KAFKA_CDS=off: a broker gets no archive flag

    cut, whole = tmp_path / "cut.partial", broker_archive.stat().st_size
    cut.write_bytes(broker_archive.read_bytes()[:1_000_000])
    kept = subprocess.run(["bash", "-c", 'source scripts/kafka_common.sh && KAFKA_CLASSPATH="$KAFKA_HOME/libs/*" '
                           f'&& cds_keep "$(cds_archive kafka.Kafka)" {cut} && ls "$KAFKA_CACHE_DIR/cds"'],
                          env=private, capture_output=True, text=True)
    assert kept.returncode == 0 and not cut.exists()
    assert not list(Path.cwd().glob("hs_err_pid*.log"))  # the refusing JVM left no crash report behind
    assert sorted(kept.stdout.split()) == sorted(p.name for p in cds.glob("*.jsa"))
    assert broker_archive.stat().st_size == whole > 1_000_000  # not replaced by the cut one
