"""scripts/venv.sh's functions run by bash: the uv cache pruned after a uv install (each install of pyspark from
an index without caching headers left 1.9 GB in it), no pip after uv ran out of space, and the hint that names a
disk too full to install on; and run_tests.sh's set-up, interrupted."""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from pinpipe.common.config import PROJECT_ROOT
from tests.helpers import process_gone, signal_during_install

VENV_SCRIPT = PROJECT_ROOT / "scripts" / "venv.sh"


def run_function(call: str, cwd, env=None) -> subprocess.CompletedProcess:
    """`call` in a bash that has sourced scripts/venv.sh, under the scripts' own options."""
    return subprocess.run(["bash", "-c", f'set -euo pipefail\nsource "{VENV_SCRIPT}"\n{call}'], cwd=cwd,
                          capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})})


def fake_venv(tmp_path, uv_installs: bool, uv_says: str = ""):
    """A .venv whose python and uv only write their arguments to calls.log: the order of the steps is under test
    here, not pip's or uv's work (tests/integration run the real install through run_tests.sh)."""
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python").write_text('#!/bin/sh\necho "python $*" >> calls.log\n')
    (bin_dir / "uv").write_text('#!/bin/sh\necho "uv $*" >> calls.log\n'
                                f'[ "$1 $2" != "pip install" ] || {{ echo "{uv_says}" >&2; exit {0 if uv_installs else 1}; }}\n')
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)


def calls(tmp_path) -> list[str]:
    return (tmp_path / "calls.log").read_text().splitlines()


def test_a_uv_install_is_followed_by_a_prune_of_the_uv_cache(tmp_path):
    fake_venv(tmp_path, uv_installs=True)
    run_function("install_requirements", tmp_path).check_returncode()
    assert [call.split()[:3] for call in calls(tmp_path)] == [
        ["python", "-m", "pip"], ["uv", "pip", "install"], ["uv", "cache", "prune"]]


def test_when_uv_fails_pip_installs_and_the_uv_cache_is_left_alone(tmp_path):
    fake_venv(tmp_path, uv_installs=False)
    result = run_function("install_requirements", tmp_path)
    result.check_returncode()
    assert "installing them with pip" in result.stdout
    log = calls(tmp_path)
    assert log[-1] == "python -m pip install --disable-pip-version-check -r requirements.txt"
    assert not any(call.startswith("uv cache") for call in log)


def test_when_uv_runs_out_of_disk_space_pip_is_not_tried_and_uv_s_error_is_shown(tmp_path):
    """pip, tried after uv had failed for lack of space, failed too, and its last lines blamed the network
    ("Connection interrupted"), hiding uv's clear error."""
    uv_error = "error: Failed to unpack pyspark: No space left on device (os error 28)"
    fake_venv(tmp_path, uv_installs=False, uv_says=uv_error)
    result = run_function("install_requirements", tmp_path)
    assert result.returncode == 1
    assert result.stdout.splitlines()[-2:] == [
        uv_error, "uv ran out of disk space (above); pip is not tried, as it would need as much"]
    assert [call.split()[:3] for call in calls(tmp_path)] == [["python", "-m", "pip"], ["uv", "pip", "install"]]


def test_another_uv_failure_still_falls_back_to_pip_and_its_output_is_kept(tmp_path):
    fake_venv(tmp_path, uv_installs=False, uv_says="error: no matching distribution")
    (tmp_path / ".venv" / "uv-install.log").write_text("No space left on device (a previous run's log)\n")
    result = run_function("install_requirements", tmp_path)
    result.check_returncode()
    assert "error: no matching distribution\nuv could not install the requirements" in result.stdout


def test_a_failed_prune_does_not_fail_the_install(tmp_path):
    fake_venv(tmp_path, uv_installs=True)
    uv = tmp_path / ".venv" / "bin" / "uv"
    uv.write_text(uv.read_text() + '[ "$1" != cache ] || exit 2\n')
    result = run_function("install_requirements", tmp_path)
    result.check_returncode()
    assert "uv cache prune failed" in result.stdout


def free_mb(path) -> int:
    return shutil.disk_usage(path).free // (1024 * 1024)


def test_the_hint_names_each_disk_with_less_room_than_the_install_needs_once(tmp_path):
    (tmp_path / "a").mkdir()
    not_yet = tmp_path / "b" / "not" / "made"  # a cache folder not created yet: its nearest existing parent counts
    result = run_function(f'low_disk_hint "{tmp_path / "a"}" "{not_yet}" /dev/shm', tmp_path,
                          env={"PINPIPE_INSTALL_NEEDS_MB": str(10 ** 9)})
    result.check_returncode()
    lines = result.stdout.splitlines()
    same_disk = os.stat(tmp_path).st_dev == os.stat("/dev/shm").st_dev
    assert len(lines) == (1 if same_disk else 2)
    said = re.fullmatch(rf"the disk holding {re.escape(str(tmp_path / 'a'))} has (\d+) MB free; installing needs "
                        rf"about {10 ** 9} MB \(.*\): a full disk looks like a broken download or an I/O error above",
                        lines[0])
    assert said and abs(int(said[1]) - free_mb(tmp_path)) <= 2  # df rounds up, and other work writes meanwhile


def test_the_hint_is_silent_where_there_is_room(tmp_path):
    result = run_function(f'low_disk_hint "{tmp_path}" /dev/shm', tmp_path, env={"PINPIPE_INSTALL_NEEDS_MB": "0"})
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


@pytest.mark.parametrize(("sent", "status", "name"), [(signal.SIGTERM, 143, "SIGTERM"), (signal.SIGINT, 130, "SIGINT")])
def test_run_tests_interrupted_in_its_set_up_stops_the_installer_too(tmp_path, sent, status, name):
    """SIGTERM to run_tests.sh's pid during a first install ended the script alone and left the installer writing
    into .venv. Here the "installer" is a python whose `-m venv` sleeps: the signal must end the run and it at once."""
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    for name_in_repo in ("run_tests.sh", "requirements.txt", "scripts/venv.sh"):
        shutil.copy2(PROJECT_ROOT / name_in_repo, repo / name_in_repo)
    exit_status, out, err, installer = signal_during_install(repo, "run_tests.sh", sent)
    assert exit_status == status, err
    assert "Creating the virtual environment .venv" in out
    assert err.splitlines()[-1] == (f"error: interrupted ({name}) while setting up .venv; the install was stopped "
                                    "(the next run redoes it)")
    assert process_gone(installer), "the installer outlived the run"


def test_run_tests_help_says_what_it_does_and_installs_nothing(tmp_path):
    shutil.copy2(PROJECT_ROOT / "run_tests.sh", tmp_path / "run_tests.sh")
    result = subprocess.run(["./run_tests.sh", "--help"], cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Usage: ./run_tests.sh [PYTEST ARGUMENTS...]\n")
    assert "TEST_WORKERS" in result.stdout and "TEST_KAFKA_PORT" in result.stdout
    assert sorted(path.name for path in tmp_path.iterdir()) == ["run_tests.sh"]  # no .venv, no scripts needed


def test_uv_installs_with_a_temporary_folder_of_its_own_removed_after(tmp_path):
    """uv left an empty uv-setuptools-<hash>.lock in /tmp for each install of this package."""
    fake_venv(tmp_path, uv_installs=True)
    uv = tmp_path / ".venv" / "bin" / "uv"
    uv.write_text('#!/bin/sh\n[ "$1 $2" != "pip install" ] || { echo "TMPDIR $TMPDIR" >> calls.log; '
                  'touch "$TMPDIR/uv-setuptools-0.lock"; }\n')
    run_function("install_requirements", tmp_path).check_returncode()
    [scratch] = [line.split(" ", 1)[1] for line in calls(tmp_path) if line.startswith("TMPDIR ")]
    assert Path(scratch).parent == tmp_path / ".venv" and not Path(scratch).exists()
