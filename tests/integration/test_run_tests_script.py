"""run_tests.sh itself, stopped part-way: its pytest must stop and tear its fixtures down (the services they started),
whether the signal reaches the script alone (SIGTERM to its pid) or its whole process group (Ctrl-C, `timeout`)."""
from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from pinpipe.common.config import PROJECT_ROOT
from tests.helpers import process_gone

# A test whose fixture stands for a service: it writes its process id when started and "stopped" at teardown.
INNER_TEST = '''
import os, pathlib, time, pytest

HERE = pathlib.Path(__file__).parent

@pytest.fixture
def service():
    (HERE / "started").write_text(str(os.getpid()))
    yield
    (HERE / "stopped").write_text("")

def test_long(service):
    time.sleep(120)
'''


@pytest.mark.parametrize("whole_group", [False, True], ids=["sigterm-to-the-script", "sigint-to-its-group"])
def test_an_interrupted_run_stops_pytest_and_tears_its_fixtures_down(tmp_path, whole_group):
    """SIGTERM to the script's pid used to end the script alone: pytest ran on, with every broker and database
    its fixtures had started."""
    (tmp_path / "test_inner.py").write_text(INNER_TEST)
    run = subprocess.Popen(["./run_tests.sh", str(tmp_path / "test_inner.py"), "-p", "no:cacheprovider", "-q"],
                           cwd=PROJECT_ROOT, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, env={**os.environ, "TEST_WORKERS": "0",
                                                  # no class archive build of its own, beside this suite's
                                                  "SPARK_CLASS_ARCHIVE": "off"})
    started = tmp_path / "started"
    try:
        deadline = time.monotonic() + 120
        while not started.exists() or not started.read_text():
            assert run.poll() is None and time.monotonic() < deadline, run.communicate()[0][-3000:]
            time.sleep(0.1)
        inner = int(started.read_text())
        if whole_group:
            os.killpg(run.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        else:
            os.kill(run.pid, signal.SIGTERM)
        output, _ = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
    assert (tmp_path / "stopped").exists(), output[-3000:]
    assert process_gone(inner)
    assert run.returncode == 2 and "KeyboardInterrupt" in output  # pytest's status for an interrupted run
