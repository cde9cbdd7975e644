"""./run_pipeline.sh end to end with a small N, on private ports and directories."""
from __future__ import annotations

import contextlib
import csv
import json
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from pinpipe.common.config import PROJECT_ROOT
from tests.conftest import TEST_KAFKA_PORT, free_port, kafka_env, run_script
from tests.helpers import make_producer, process_arguments, processes_with_env, send, triplet_rows


def private_run_env(tmp_path, port: int, marker: str, **settings: str) -> dict[str, str]:
    """A run_pipeline.sh environment of its own: Kafka on `port` and `port` + 1, its state, the batch and the
    embedded database under tmp_path, a free poster port; every process it starts carries `marker`."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS")}
    env.update(KAFKA_PORT=str(port), KAFKA_CONTROLLER_PORT=str(port + 1), KAFKA_STATE_DIR=str(tmp_path / "kafka"),
               BATCH_DIR=str(tmp_path / "batch_data"), PGDATA_DIR=str(tmp_path / "pg"), POSTER_PORT=str(free_port()),
               PINPIPE_RUN_MARKER=marker, **settings)
    return env


def wait_for_log(run: subprocess.Popen, log: Path, text: str, poll_s: float = 0.05, timeout_s: float = 300) -> None:
    """Until the stage log `log` holds `text`, while the run goes on."""
    deadline = time.monotonic() + timeout_s
    while not (log.exists() and text in log.read_text()):
        if run.poll() is not None:  # the run ended first: what it and the stage said
            stdout, stderr = run.communicate()
            said = log.read_text()[-2000:] if log.exists() else "(no log)"
            raise AssertionError(f"the run exited {run.returncode} before {log.name} said {text!r}:\n{stdout}{stderr}"
                                 f"\n{log.name}:\n{said}")
        assert time.monotonic() < deadline, f"{log.name} never said {text!r} in {timeout_s} s"
        time.sleep(poll_s)


def left_running(marker: str, patience_s: float = 30) -> list[str]:
    """The command lines of the processes carrying `marker` still there after `patience_s` (a driver JVM runs
    Spark's shutdown hooks once its kernel has gone)."""
    deadline = time.monotonic() + patience_s
    while (left := processes_with_env("PINPIPE_RUN_MARKER", marker)) and time.monotonic() < deadline:
        time.sleep(0.5)
    return [" ".join(process_arguments(pid))[:200] for pid in left]


@pytest.mark.slow
def test_run_pipeline_end_to_end(tmp_path):
    count = 300  # 300 draws from 11,154 idx: repeats are likely, and must be accounted for
    batch_dir = tmp_path / "batch_data"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS")}
    env.update(KAFKA_PORT=str(TEST_KAFKA_PORT + 300), KAFKA_CONTROLLER_PORT=str(TEST_KAFKA_PORT + 301),
               KAFKA_STATE_DIR=str(tmp_path / "kafka"), BATCH_DIR=str(batch_dir), PGDATA_DIR=str(tmp_path / "pg"),
               POSTER_PORT=str(free_port()), PIPELINE_COUNT=str(count), STREAM_DIR=str(tmp_path / "stream_data"))
    result = subprocess.run([str(PROJECT_ROOT / "run_pipeline.sh"), "--stream"], env=env, capture_output=True, text=True,
                            timeout=900, cwd=PROJECT_ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "row counts agree across stages" in result.stdout
    assert f"triplets acknowledged by Kafka: {count}" in result.stdout

    [manifest] = [json.loads(p.read_text()) for p in (batch_dir / "batches").glob("*/manifest.json")]
    # The emulator samples with replacement: posted = distinct idx written + repeated idx.
    assert manifest["rows"] + manifest["duplicates"] // 3 == count and manifest["duplicates"] % 3 == 0
    idx = {}
    for kind in ("pin", "geo", "user"):
        with open(batch_dir / f"{kind}_data.csv", encoding="utf-8", newline="") as handle:
            idx[kind] = [row["idx"] for row in csv.DictReader(handle)]
    assert idx["pin"] == idx["geo"] == idx["user"] and len(set(idx["pin"])) == manifest["rows"]
    summary = json.loads((batch_dir / "results" / "summary.json").read_text())
    assert summary["input_rows"] == {"pin": manifest["rows"], "geo": manifest["rows"], "user": manifest["rows"]}
    assert len(list((batch_dir / "results").glob("q*.csv"))) == 9
    assert (batch_dir / "report.html").stat().st_size > 10_000
    # The batch has CRLF line ends: Spark's warning on every read with a two-character lineSep is not logged,
    # and the report's cells hold the notebook's prints only.
    report = json.loads((batch_dir / "report.ipynb").read_text())
    shown = "".join("".join(out.get("text", "")) for cell in report["cells"] for out in cell.get("outputs", []))
    assert "Spark " in shown and "lineSep" not in shown
    notebook_log = (batch_dir / "logs" / "notebook.log").read_text()
    assert "lineSep" not in notebook_log and "Truncated the string representation" not in notebook_log
    # --stream: the streaming notebook read the same topics; on fresh topics it found the batch's idx.
    stream = json.loads((tmp_path / "stream_data" / "tables" / "summary.json").read_text())
    assert stream["complete_idx"] == manifest["rows"] and stream["rejected"] == 0
    assert stream["cleaned_pin"] == count  # every post, repeats included (the batch counts those as duplicates)
    assert f"{manifest['rows']} distinct complete idx (batch: {manifest['rows']}" in result.stdout
    # What it started, it stopped.
    assert not (tmp_path / "kafka" / "kafka.pid").exists()
    assert not (tmp_path / "pg" / "postmaster.pid").exists()


@pytest.mark.slow
def test_a_backlog_left_in_the_topics_of_a_kafka_of_ones_own_goes_into_the_batch_and_the_run_agrees(tmp_path):
    """Records posted by hand before the run (15 triplets and a pin alone) are taken with the run's own posts;
    the summary counts them apart, and the run exits 0 instead of warning that the counts differ. The Kafka is the
    user's own, given by KAFKA_BOOTSTRAP_SERVERS (README: "run your own broker and point KAFKA_BOOTSTRAP_SERVERS at
    it"): the run uses it and starts no broker of its own."""
    count, backlog, port = 40, 15, TEST_KAFKA_PORT + 320
    own = kafka_env(tmp_path / "own-kafka", port)  # started apart from the run, as a user's Kafka would be
    env = {k: v for k, v in own.items() if k not in ("DATABASE_URL", "KAFKA_DATA_DIR", "KAFKA_LOG_DIR")}
    env.update(KAFKA_BOOTSTRAP_SERVERS=f"localhost:{port}", KAFKA_STATE_DIR=str(tmp_path / "kafka"),
               KAFKA_PORT=str(port + 2), KAFKA_CONTROLLER_PORT=str(port + 3),  # where the run's own would listen
               BATCH_DIR=str(tmp_path / "batch_data"), PGDATA_DIR=str(tmp_path / "pg"), POSTER_PORT=str(free_port()))
    run_script("start_kafka.sh", own)
    try:
        producer = make_producer(f"localhost:{port}")
        rows = list(triplet_rows(backlog + 1, seed=11).values())
        earlier = {10**7 + n for n in range(backlog)}  # beyond the database's idx: told apart in the batch
        for n, kinds in enumerate(rows):
            for kind in ("pin", "geo", "user") if n < backlog else ("pin",):
                send(producer, topics_of(env), kind, {**kinds[kind], "idx": 10**7 + n}).get(timeout=30)
        producer.close()
        result = subprocess.run([str(PROJECT_ROOT / "run_pipeline.sh"), "--count", str(count)], env=env,
                                capture_output=True, text=True, timeout=900, cwd=PROJECT_ROOT)
    finally:
        run_script("stop_kafka.sh", own, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (f"==> kafka: using KAFKA_BOOTSTRAP_SERVERS=localhost:{port}, which answers; it will be left running"
            in result.stdout), result.stdout
    assert not (tmp_path / "kafka").exists()  # no broker of the run's own was configured, let alone started
    assert f"the topics hold up to {backlog} triplets from before this run" in result.stdout
    assert "row counts agree across stages" in result.stdout
    [manifest] = [json.loads(p.read_text()) for p in (tmp_path / "batch_data" / "batches").glob("*/manifest.json")]
    assert manifest["rows"] + manifest["duplicates"] // 3 == count + backlog and manifest["pending"] == 1
    with open(tmp_path / "batch_data" / "pin_data.csv", encoding="utf-8", newline="") as handle:
        written = {int(row["idx"]) for row in csv.DictReader(handle)}
    assert earlier <= written and 10**7 + backlog not in written
    assert f"; {backlog} of them left in the topics before this run" in result.stdout


def test_a_kafka_given_that_does_not_answer_stops_the_run_at_once(tmp_path):
    """KAFKA_BOOTSTRAP_SERVERS naming a Kafka that is not there: the run says so and exits 1 before posting, where it
    used to start a broker of its own that the poster, sent to the given address, never used."""
    marker, given = uuid.uuid4().hex, f"127.0.0.1:{free_port()}"
    env = private_run_env(tmp_path, TEST_KAFKA_PORT + 330, marker, KAFKA_BOOTSTRAP_SERVERS=given,
                          PIPELINE_PRESTART_SPARK="0")
    result = subprocess.run([str(PROJECT_ROOT / "run_pipeline.sh"), "--count", "5"], env=env, capture_output=True,
                            text=True, timeout=300, cwd=PROJECT_ROOT)
    assert result.returncode == 1, result.stdout + result.stderr
    assert (f"error: no server of KAFKA_BOOTSTRAP_SERVERS={given} answers. Start that Kafka, or unset "
            f"KAFKA_BOOTSTRAP_SERVERS and the run starts its own on localhost:{TEST_KAFKA_PORT + 330}") in result.stderr
    assert "==> kafka" not in result.stdout and not (tmp_path / "kafka").exists()
    assert left_running(marker) == []


def topics_of(env: dict[str, str]) -> dict[str, str]:
    return {kind: env.get(f"{kind.upper()}_TOPIC", f"pin_data.{kind}") for kind in ("pin", "geo", "user")}


@pytest.mark.slow
def test_a_failed_stage_stops_the_early_notebook_runner_and_everything_it_started(tmp_path):
    """The poster cannot reach its database: the run stops there, names the stage, and leaves nothing running:
    not the notebook's early kernel or Spark driver (which were starting beside Kafka), not Kafka."""
    marker = uuid.uuid4().hex
    env = private_run_env(tmp_path, TEST_KAFKA_PORT + 310, marker,
                          DATABASE_URL=f"postgresql://127.0.0.1:{free_port()}/nothing")
    result = subprocess.run([str(PROJECT_ROOT / "run_pipeline.sh"), "--count", "5"], env=env, capture_output=True,
                            text=True, timeout=600, cwd=PROJECT_ROOT)
    assert result.returncode == 1 and "error: stage 'poster' failed" in result.stderr, result.stdout + result.stderr
    assert "rror: cannot connect to PostgreSQL at 127.0.0.1:" in result.stderr  # the poster's own words
    assert "could not measure what the topics held" not in result.stderr  # the broker was there to ask
    assert not (tmp_path / "kafka" / "kafka.pid").exists()
    assert not (tmp_path / "batch_data" / "report.ipynb").exists()
    assert left_running(marker) == []


@pytest.mark.slow
def test_ctrl_c_while_kafka_starts_stops_the_run_there_and_leaves_nothing_running(tmp_path):
    """Ctrl-C reaches the script and all it runs (one process group). Kafka's start takes it as a request to
    finish; the run used to carry on to the poster, or, stopped, left the broker it had started running."""
    marker = uuid.uuid4().hex
    env = private_run_env(tmp_path, TEST_KAFKA_PORT + 330, marker)
    run = subprocess.Popen([str(PROJECT_ROOT / "run_pipeline.sh"), "--count", "5"], env=env, cwd=PROJECT_ROOT,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        wait_for_log(run, tmp_path / "batch_data" / "logs" / "kafka.log", "Starting Kafka")
        os.killpg(run.pid, signal.SIGINT)
        stdout, stderr = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
    assert run.returncode == 130, stdout + stderr
    assert "error: interrupted (SIGINT) in stage 'kafka'; stopping what this run started" in stderr
    assert "==> poster" not in stdout
    assert not (tmp_path / "kafka" / "kafka.pid").exists()
    assert not (tmp_path / "batch_data" / ".run_pipeline.pid").exists()
    assert left_running(marker) == []


@pytest.mark.slow
def test_sigterm_while_posting_stops_the_poster_and_everything_the_run_started(tmp_path):
    """SIGTERM to the script alone, as `timeout` or a supervisor sends it. It used to end the script there and
    then: the poster went on posting (to a Kafka the script's exit stopped) and the database kept running."""
    marker = uuid.uuid4().hex
    env = private_run_env(tmp_path, TEST_KAFKA_PORT + 340, marker)
    run = subprocess.Popen([str(PROJECT_ROOT / "run_pipeline.sh"), "--count", "1000000", "--rate", "50"], env=env,
                           cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           start_new_session=True)
    try:
        poster_log = tmp_path / "batch_data" / "logs" / "poster.log"
        wait_for_log(run, poster_log, "emulating user posts")
        run.send_signal(signal.SIGTERM)  # the script only, not its process group
        stdout, stderr = run.communicate(timeout=120)
        left = left_running(marker)  # before the clean-up below, which would hide them
    finally:
        with contextlib.suppress(ProcessLookupError):  # whatever a failure left in its process group
            os.killpg(run.pid, signal.SIGKILL)
    assert run.returncode == 143, stdout + stderr
    assert "error: interrupted (SIGTERM) in stage 'poster'; stopping what this run started" in stderr
    assert "stopped by SIGTERM before --count was reached" in poster_log.read_text()
    assert not (tmp_path / "kafka" / "kafka.pid").exists() and not (tmp_path / "pg" / "postmaster.pid").exists()
    assert left == []
