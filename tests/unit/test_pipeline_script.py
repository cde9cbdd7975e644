"""run_pipeline.sh's functions run by bash: the report of a failed stage (`why`, on logs written here) and the lock
that keeps two runs apart (`take_lock`); and the script itself, on bad arguments and interrupted in its set-up."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from pinpipe.common.config import PROJECT_ROOT
from tests.helpers import process_gone, signal_during_install


def function_of(name: str) -> str:
    """A shell function's definition, as run_pipeline.sh has it."""
    script = (PROJECT_ROOT / "run_pipeline.sh").read_text()
    function = script[script.index(f"{name}() {{"):]
    return function[:function.index("\n}\n") + 3]


def why(log) -> str:
    function = function_of("why")
    # under the script's own options: a failing grep or a closed pipe must not end it before it has said why
    return subprocess.run(["bash", "-c", f'set -euo pipefail\n{function}\nwhy "$1"', "why", str(log)],
                          capture_output=True, text=True, check=True).stdout


def test_a_failed_stage_shows_its_own_error_not_the_java_noise_before_it(tmp_path):
    log = tmp_path / "stream.log"
    noise = [f"\tat java.base/java.util.regex.Pattern$Branch.match(Pattern.java:{n})" for n in range(40)]
    log.write_text("\n".join(["starting", "error: a first complaint", *noise,
                              "error: stream_processing_spark.ipynb failed in cell 5: RecordsDeleted: query ...",
                              "the executed notebook, with the traceback, is stream_data/report.ipynb", ""]))
    assert why(log).splitlines() == [
        "error: stream_processing_spark.ipynb failed in cell 5: RecordsDeleted: query ...",
        "the executed notebook, with the traceback, is stream_data/report.ipynb"]
    log.write_text("Error: cannot connect to PostgreSQL at 127.0.0.1:1/nothing\n")  # the poster's capital E
    assert why(log) == "Error: cannot connect to PostgreSQL at 127.0.0.1:1/nothing\n"


def test_a_long_error_section_is_cut_to_25_lines(tmp_path):
    log = tmp_path / "notebook.log"
    log.write_text("error: it failed\n" + "".join(f"\tat frame {n} {'x' * 200}\n" for n in range(5000)))
    assert len(why(log).splitlines()) == 25


def test_without_an_error_line_the_last_lines_are_shown(tmp_path):
    log = tmp_path / "poster.log"
    log.write_text("".join(f"line {n}\n" for n in range(100)))
    assert why(log).splitlines() == [f"line {n}" for n in range(75, 100)]
    assert why(tmp_path / "missing.log") == ""


def require_new_batch(batch_dir, log_dir, before: int, posted: str = "500") -> subprocess.CompletedProcess:
    """run_pipeline.sh's check after the extractor, under the script's options."""
    script = (PROJECT_ROOT / "run_pipeline.sh").read_text()
    counter = next(line for line in script.splitlines() if line.startswith("batches_written() {"))
    source = (f"set -euo pipefail\nsay() {{ printf '%s\\n' \"$*\"; }}\nBATCH_DIR=\"$1\"\nLOG_DIR=\"$2\"\nPOSTED=\"$3\"\n"
              f"{function_of('why')}\n{counter}\n{function_of('require_new_batch')}\nrequire_new_batch \"$4\"\necho passed")
    return subprocess.run(["bash", "-c", source, "run_pipeline_batch_test", str(batch_dir), str(log_dir), posted,
                           str(before)], capture_output=True, text=True, timeout=30)


def test_a_run_whose_extractor_wrote_no_batch_stops_before_the_notebook(tmp_path):
    """The notebook would otherwise analyse the newest batch of an earlier run as if it were this one's."""
    batches, logs = tmp_path / "batch_data" / "batches", tmp_path / "logs"
    (batches / "20261206T214113833893Z-vm-7197").mkdir(parents=True)  # an earlier run's
    (batches / ".tmp-20261207T100000000000Z-vm-1").mkdir()  # one being written (batch_store.TMP_PREFIX)
    logs.mkdir()
    (logs / "extractor.log").write_text("consumed 0 records\nerror: no complete triplet in the topics\n")
    result = require_new_batch(tmp_path / "batch_data", logs, before=1)
    assert result.returncode == 1 and "passed" not in result.stdout
    assert result.stderr.splitlines() == [
        f"error: stage 'extractor' wrote no batch: none of this run's 500 triplets reached it complete. "
        f"Log: {logs / 'extractor.log'}", "error: no complete triplet in the topics"]
    (batches / "20261207T100000000000Z-vm-1").mkdir()  # this run's
    assert require_new_batch(tmp_path / "batch_data", logs, before=1).stdout == "passed\n"
    assert require_new_batch(tmp_path / "nothing_yet", logs, before=0).returncode == 1  # no batches folder at all


def take_lock(batch_dir) -> subprocess.CompletedProcess:
    """run_pipeline.sh's take_lock, under the script's options, in a bash that then prints its own pid."""
    script = (f"set -euo pipefail\nsay() {{ printf '%s\\n' \"$*\"; }}\nBATCH_DIR=\"$1\"\nLOCK=\"$BATCH_DIR/.run_pipeline.pid\"\n"
              f"{function_of('take_lock')}\ntake_lock\necho \"took $$\"")
    return subprocess.run(["bash", "-c", script, "run_pipeline_lock_test", str(batch_dir)],
                          capture_output=True, text=True, timeout=30)


def test_the_first_run_takes_the_lock_with_its_pid(tmp_path):
    done = take_lock(tmp_path / "batch_data")
    assert done.returncode == 0, done.stderr
    pid = done.stdout.split()[-1]
    assert (tmp_path / "batch_data" / ".run_pipeline.pid").read_text() == f"{pid}\n"


def test_a_second_run_is_refused_while_the_first_runs(tmp_path):
    # a live run: a bash whose command line names the script (two commands, so bash does not exec sleep)
    holder = subprocess.Popen(["bash", "-c", "sleep 30; true", "./run_pipeline.sh"])
    try:
        (tmp_path / ".run_pipeline.pid").write_text(f"{holder.pid}\n")
        done = take_lock(tmp_path)
    finally:
        holder.kill()
        holder.wait()
    assert done.returncode == 1 and "took" not in done.stdout
    assert done.stderr.startswith(f"error: another ./run_pipeline.sh (pid {holder.pid}) is running with BATCH_DIR={tmp_path}")
    assert (tmp_path / ".run_pipeline.pid").read_text() == f"{holder.pid}\n"  # still the first run's


def test_a_lock_left_by_a_killed_run_or_a_reused_pid_is_taken_over(tmp_path):
    dead = subprocess.Popen(["true"])
    dead.wait()
    other = subprocess.Popen(["sleep", "30"])  # alive, but not run_pipeline.sh: the dead run's pid, reused
    try:
        for stale in (dead.pid, other.pid, "garbage"):
            (tmp_path / ".run_pipeline.pid").write_text(f"{stale}\n")
            done = take_lock(tmp_path)
            assert done.returncode == 0, done.stderr
            assert (tmp_path / ".run_pipeline.pid").read_text() == f"{done.stdout.split()[-1]}\n"
    finally:
        other.kill()
        other.wait()


def stage_done(log, status: int) -> subprocess.CompletedProcess:
    script = ("set -euo pipefail\nsay() { printf '%s\\n' \"$*\"; }\nTIMINGS=()\n"
              + "\n".join(function_of(name) for name in ("interrupted", "why", "stage_done"))
              + f"\nstage_done spark \"$1\" {status} \"$SECONDS\"\necho carried on")
    return subprocess.run(["bash", "-c", script, "stage_done", str(log)], capture_output=True, text=True, timeout=30)


def test_an_interrupted_stage_says_so_and_not_its_log(tmp_path):
    log = tmp_path / "notebook.log"
    log.write_text("error: a complaint\nzmq.error.ZMQError: Socket operation on non-socket\n")
    for status, signal_name in ((130, "SIGINT"), (143, "SIGTERM")):
        done = stage_done(log, status)
        assert (done.returncode, done.stdout) == (status, "")
        assert done.stderr == f"error: interrupted ({signal_name}) in stage 'spark'; stopping what this run started\n"
    failed = stage_done(log, 1)  # a stage that failed on its own: its error, from its log
    assert failed.returncode == 1 and failed.stderr.splitlines() == [
        f"error: stage 'spark' failed (exit 1). Log: {log}", "error: a complaint",
        "zmq.error.ZMQError: Socket operation on non-socket"]
    assert stage_done(log, 0).stdout == "carried on\n"


@pytest.mark.parametrize(("arguments", "message"), [
    (["--count"], "error: --count needs a value"),
    (["--count", "0"], "error: --count must be a positive integer, not '0'"),
    (["--count=12k"], "error: --count must be a positive integer, not '12k'"),
    (["--rate", "abc"], "error: --rate must be 0 (as fast as possible) or a positive number, not 'abc'"),
    (["--rate=-1"], "error: --rate must be 0 (as fast as possible) or a positive number, not '-1'"),
    (["--bogus"], "error: unknown argument: --bogus"),
])
def test_bad_arguments_are_refused_before_anything_starts(tmp_path, arguments, message):
    """Refused at once with exit 2 (a bad --rate used to start Kafka and the database first, and fail in the
    poster's stage; --count without a value was bash's 'unbound variable')."""
    done = subprocess.run([str(PROJECT_ROOT / "run_pipeline.sh"), *arguments], capture_output=True, text=True,
                          timeout=30, env={**os.environ, "BATCH_DIR": str(tmp_path / "batch_data")})
    assert done.returncode == 2 and done.stderr.splitlines()[-1] == message, done.stderr
    assert not (tmp_path / "batch_data").exists()  # nothing started, not even the lock


def script_copy(tmp_path) -> Path:
    """run_pipeline.sh and what it reads before its set-up, in a folder of their own: the set-up makes .venv there."""
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    for name in ("run_pipeline.sh", "requirements.txt", "scripts/venv.sh", "scripts/kafka_common.sh"):
        shutil.copy2(PROJECT_ROOT / name, repo / name)
    return repo


@pytest.mark.parametrize(("sent", "status", "name"), [(signal.SIGTERM, 143, "SIGTERM"), (signal.SIGINT, 130, "SIGINT")])
def test_a_signal_during_the_set_up_stops_the_installer_too(tmp_path, sent, status, name):
    """SIGTERM (`timeout`, a supervisor) during the minutes of a first install ended the script alone and left the
    installer writing into .venv, for the next run's to race; SIGINT sent to the script waited for the installer to
    finish. Here the "installer" is a python whose `-m venv` sleeps: the signal must end the run and it at once."""
    repo = script_copy(tmp_path)
    exit_status, out, err, installer = signal_during_install(repo, "run_pipeline.sh", sent,
                                                           {"BATCH_DIR": str(tmp_path / "batch_data")})
    assert exit_status == status, err
    assert "Creating the virtual environment .venv" in out
    assert err.splitlines()[-1] == f"error: interrupted ({name}) in stage 'setup'; stopping what this run started"
    assert process_gone(installer), "the installer outlived the run"
    assert not (tmp_path / "batch_data" / ".run_pipeline.pid").exists()
