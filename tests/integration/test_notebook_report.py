"""pinpipe.notebook_report: a notebook run headless in a real kernel and rendered to HTML in one process."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import nbformat
import pytest

from pinpipe.spark import session
from tests.helpers import process_gone, processes_with_env


def notebook(path, *cells: str, parameters: str = "greeting = 'hello'"):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(parameters, metadata={"tags": ["parameters"]}),
                *(nbformat.v4.new_code_cell(cell) for cell in cells)]
    nbformat.write(nb, path)
    return path


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pinpipe.notebook_report", *args], capture_output=True, text=True,
                          timeout=300, env=env)


def test_parameters_reach_the_notebook_and_the_report_shows_its_output(tmp_path):
    source = notebook(tmp_path / "in.ipynb", "print(greeting.upper() + ' from ' + where)",
                      parameters="greeting = 'hello'\nwhere = 'nowhere'")
    done = run(str(source), str(tmp_path / "out.ipynb"), "--html", str(tmp_path / "out.html"),
               "-p", "where", "the kernel")
    assert done.returncode == 0, done.stderr[-3000:]
    executed = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    assert executed.cells[-1].outputs[0]["text"] == "HELLO from the kernel\n"
    html = (tmp_path / "out.html").read_text(encoding="utf-8")
    assert html.lstrip().lower().startswith("<!doctype html") and "HELLO from the kernel" in html
    assert not list(tmp_path.glob("*.tmp"))


def outside_pytest() -> dict[str, str]:
    """This environment without PYTEST_CURRENT_TEST: under pytest, ipykernel does not capture what is written to
    its file descriptors, which is what the runner's kernel is to do without."""
    return {key: value for key, value in os.environ.items() if key != "PYTEST_CURRENT_TEST"}


def test_output_below_python_goes_to_the_log_once_and_not_into_the_report(tmp_path):
    """What a cell prints from Python is in the report; what reaches the kernel's stderr directly (the driver
    JVM's log lines, a native library's messages) goes to the runner's stderr, the stage's log, once."""
    source = notebook(tmp_path / "in.ipynb", "import os\nprint('from python')\n_ = os.write(2, b'below python\\n')")
    done = run(str(source), str(tmp_path / "out.ipynb"), env=outside_pytest())
    assert done.returncode == 0, done.stderr[-3000:]
    shown = [output.get("text", "") for cell in nbformat.read(tmp_path / "out.ipynb", as_version=4).cells
             for output in cell.get("outputs", [])]
    assert shown == ["from python\n"]
    assert done.stderr.count("below python") == 1


@pytest.mark.parametrize("temp_depth", [0, 12], ids=["ipc", "tcp-under-a-deep-temp-directory"])
def test_the_kernel_talks_over_unix_sockets_in_a_private_folder_removed_after(tmp_path, temp_depth):
    """jupyter_client's default, five TCP ports on 127.0.0.1 open to any local process, had ipykernel warn atop every
    notebook.log ("Kernel is running over TCP without encryption"). Where the temp directory is too deep for a
    socket's path (at most 103 bytes), the kernel keeps TCP and the notebook still runs."""
    temp = tmp_path.joinpath("t", *["deep-enough-folder"] * temp_depth)
    temp.mkdir(parents=True)
    source = notebook(tmp_path / "in.ipynb",
                      "from ipykernel.kernelapp import IPKernelApp\nimport os\napp = IPKernelApp.instance()\n"
                      "print(app.transport, oct(os.stat(os.path.dirname(app.ip)).st_mode & 0o777) "
                      "if app.transport == 'ipc' else app.ip)")
    done = run(str(source), str(tmp_path / "out.ipynb"), env={**os.environ, "TMPDIR": str(temp)})
    assert done.returncode == 0, done.stderr[-3000:]
    said = nbformat.read(tmp_path / "out.ipynb", as_version=4).cells[-1].outputs[0]["text"]
    if temp_depth == 0:
        assert said == "ipc 0o700\n"
        assert "without encryption" not in done.stderr
    else:
        assert said == "tcp 127.0.0.1\n"
    assert list(temp.iterdir()) == []  # the sockets' folder is gone


def test_a_kernel_not_installed_here_is_replaced_by_this_python_s_with_a_warning(tmp_path):
    """A notebook saved from another Jupyter names its kernel there ("myenv"): the run used to fail with
    NoSuchKernel's traceback."""
    temp = tmp_path / "t"
    temp.mkdir()
    source = notebook(tmp_path / "in.ipynb", "import sys\nprint(sys.executable)")
    saved = nbformat.read(source, as_version=4)
    saved.metadata["kernelspec"] = {"name": "myenv", "display_name": "My env", "language": "python"}
    nbformat.write(saved, source)
    done = run(str(source), str(tmp_path / "out.ipynb"), env={**os.environ, "TMPDIR": str(temp)})
    assert done.returncode == 0, done.stderr[-3000:]
    assert ("warning: in.ipynb names the kernel 'myenv', which is not installed here; it runs on 'python3', this "
            "Python's (`jupyter kernelspec list` shows the kernels there are)") in done.stderr
    said = nbformat.read(tmp_path / "out.ipynb", as_version=4).cells[-1].outputs[0]["text"]
    assert Path(said.strip()).parent == Path(sys.executable).parent  # this venv's Python
    assert list(temp.iterdir()) == []  # the first attempt's sockets' folder too


def test_a_failing_cell_exits_1_names_it_and_still_renders_the_error(tmp_path):
    source = notebook(tmp_path / "in.ipynb", "x = 1", "raise ValueError('no batch here')", "print('never')")
    done = run(str(source), str(tmp_path / "out.ipynb"), "--html", str(tmp_path / "out.html"))
    assert done.returncode == 1
    assert "failed in cell" in done.stderr and "ValueError: no batch here" in done.stderr
    assert str(tmp_path / "out.ipynb") in done.stderr
    assert "no batch here" in (tmp_path / "out.html").read_text(encoding="utf-8")
    executed = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    assert not executed.cells[-1].get("outputs")  # nothing ran after the failure


def test_a_missing_notebook_is_a_usage_error(tmp_path):
    done = run(str(tmp_path / "nope.ipynb"), str(tmp_path / "out.ipynb"))
    assert done.returncode == 2 and "no such notebook" in done.stderr


def runner_processes(marker: str) -> list[int]:
    return processes_with_env("PINPIPE_REPORT_TEST", marker)


def is_java(pid: int) -> bool:
    """Whether process `pid` runs java; False once it has gone (a short-lived launcher process can go between
    being listed and being looked at)."""
    try:
        return Path(f"/proc/{pid}/exe").resolve(strict=True).name == "java"
    except (FileNotFoundError, PermissionError):
        return False


def wait_for(predicate, timeout: float = 120, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        time.sleep(0.2)


def test_when_exists_runs_the_notebook_in_the_early_kernel_with_its_spark_session_already_started(tmp_path):
    """The kernel and a Spark session on the parameters cell's default master start first; the notebook runs
    only once the file appears, and finds that session active with the small batch's JVM flags."""
    source = notebook(tmp_path / "in.ipynb",
                      "import time\nfrom pyspark.sql import SparkSession\nsession = SparkSession.getActiveSession()\n"
                      "print(time.time(), session.conf.get('spark.master'),\n"
                      "      session.sparkContext.getConf().get('spark.driver.extraJavaOptions'))",
                      parameters="spark_master = 'local[1]'")
    go = tmp_path / "go"
    marker = uuid.uuid4().hex
    runner = subprocess.Popen([sys.executable, "-m", "pinpipe.notebook_report", str(source), str(tmp_path / "out.ipynb"),
                               "--when-exists", str(go), "--prestart-spark", "small"],
                              env={**os.environ, "PINPIPE_REPORT_TEST": marker},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # the session's JVM is up (a java process with the marker) while the runner still waits
        wait_for(lambda: any(is_java(pid) for pid in runner_processes(marker)),
                 what="the early Spark driver")
        time.sleep(1)
        assert runner.poll() is None and not (tmp_path / "out.ipynb").exists()
        released = time.time()
        go.touch()
        _, stderr = runner.communicate(timeout=300)
    finally:
        if runner.poll() is None:
            runner.kill()
    assert runner.returncode == 0, stderr[-3000:]
    ran_at, master, java_options = nbformat.read(tmp_path / "out.ipynb", as_version=4).cells[-1].outputs[0]["text"].split(" ", 2)
    assert float(ran_at) >= released and master == "local[1]"
    assert session.QUICK_JIT in java_options
    assert "Spark warm-up" not in stderr  # not asked for
    wait_for(lambda: not runner_processes(marker), 30, "the kernel and its JVM to exit")


def test_with_warm_up_the_early_session_runs_the_sample_batch_before_the_notebook(tmp_path):
    """--warm-up: the early session runs the notebook's steps on the built-in sample (logged) before the notebook,
    which then runs in the same session, on its own batch."""
    source = notebook(tmp_path / "in.ipynb",
                      "from pyspark.sql import SparkSession\nsession = SparkSession.getActiveSession()\n"
                      "print(session.conf.get('spark.master'), session.range(7).count())",
                      parameters="spark_master = 'local[1]'")
    go = tmp_path / "go"
    runner = subprocess.Popen([sys.executable, "-m", "pinpipe.notebook_report", str(source), str(tmp_path / "out.ipynb"),
                               "--when-exists", str(go), "--prestart-spark", "small", "--warm-up"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=outside_pytest())
    try:
        lines = []
        for line in runner.stderr:  # the batch is released only once the warm-up says it is done
            lines.append(line)
            if line.startswith("Spark warm-up"):
                break
        assert re.fullmatch(r"Spark warm-up done in [\d.]+ s\n", lines[-1]), "".join(lines)[-3000:]
        assert not (tmp_path / "out.ipynb").exists()
        go.touch()
        _, rest = runner.communicate(timeout=300)
    finally:
        if runner.poll() is None:
            runner.kill()
    assert runner.returncode == 0, rest[-3000:]
    assert nbformat.read(tmp_path / "out.ipynb", as_version=4).cells[-1].outputs[0]["text"] == "local[1] 7\n"
    # the driver JVM's start-up lines, logged once (not again as the early kernel's output relayed)
    assert ("".join(lines) + rest).count('Setting default log level to "WARN".') == 1, "".join(lines)[-3000:]


def test_warm_up_needs_an_early_session(tmp_path):
    source = notebook(tmp_path / "in.ipynb", "print('never')")
    done = run(str(source), str(tmp_path / "out.ipynb"), "--when-exists", str(tmp_path / "go"), "--warm-up")
    assert done.returncode == 2 and "--warm-up needs --prestart-spark" in done.stderr


def test_an_early_runner_stops_on_sigterm_or_when_orphaned_and_leaves_nothing_running(tmp_path):
    source = notebook(tmp_path / "in.ipynb", "print('never')")
    marker = uuid.uuid4().hex
    env = {**os.environ, "PINPIPE_REPORT_TEST": marker}
    args = [sys.executable, "-m", "pinpipe.notebook_report", str(source), str(tmp_path / "out.ipynb"),
            "--when-exists", str(tmp_path / "never")]
    runner = subprocess.Popen([*args, "--prestart-spark", "large", "--warm-up"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    wait_for(lambda: any(is_java(pid) for pid in runner_processes(marker)),
             what="the early Spark driver")
    runner.terminate()
    _, stderr = runner.communicate(timeout=60)
    assert runner.returncode == 143
    assert f"stopped by SIGTERM before running {source}; its kernel and Spark session are shut down" in stderr, stderr
    wait_for(lambda: not runner_processes(marker), 30, "the kernel and its JVM to exit after SIGTERM")

    # without an early Spark session: the line names only the kernel, which is gone with it
    runner = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: len(runner_processes(marker)) >= 2, 60, "the runner's kernel")
    runner.terminate()
    _, stderr = runner.communicate(timeout=60)
    assert runner.returncode == 143
    assert f"stopped by SIGTERM before running {source}; its kernel is shut down" in stderr, stderr
    wait_for(lambda: not runner_processes(marker), 30, "the kernel to exit after SIGTERM")

    log = tmp_path / "orphan.log"  # its parent, a shell, exits while it waits
    subprocess.run(["bash", "-c", f'"$@" > {log} 2>&1 & sleep 1', "bash", *args], env=env, check=True, timeout=60)
    wait_for(lambda: "is gone; not running" in log.read_text(), 60, "the orphaned runner to give up")
    wait_for(lambda: not runner_processes(marker), 30, "the orphan's kernel to exit")
    assert not (tmp_path / "out.ipynb").exists()


def test_the_early_kernel_is_stopped_even_after_its_manager_was_cleaned_up(tmp_path):
    """nbclient, once a notebook has run on the early kernel, may have cleaned its manager up (the zmq context
    destroyed) with the kernel process still there: shutting it down then raised "ZMQError: Operation not
    supported" and failed run_pipeline.sh's stream stage (a CI run). The kernel must be stopped all the same."""
    from pinpipe.notebook_report import _Kernel

    early = _Kernel(notebook(tmp_path / "in.ipynb", "print(greeting)"))
    kernel = early.manager.provisioner.process.pid
    early.manager.cleanup_resources()
    early.shutdown()
    assert process_gone(kernel)
    assert not early.manager.has_kernel


def test_an_early_kernel_stopped_during_its_warm_up_ends_it_first_and_logs_no_traceback(tmp_path, capfd):
    """run_pipeline.sh stops the early runner (SIGTERM) when a stage before the notebook fails, most often while its
    kernel warms Spark up. Asked to shut down with the warm-up running, the kernel closed its sockets, then failed to
    send the warm-up's reply: a ZMQError traceback ended notebook.log, as if the notebook stage had failed. Now the
    warm-up is asked to stop, and has ended (its folder removed) before the kernel is asked to shut down."""
    import tempfile
    import threading

    from pinpipe.notebook_report import _Kernel

    folders = set(Path(tempfile.gettempdir()).glob("pinpipe-warm-up-*"))
    early = _Kernel(notebook(tmp_path / "in.ipynb", "print('never')"))
    kernel = early.manager.provisioner.process.pid
    try:
        assert early.start_spark(tmp_path / "in.ipynb", {"spark_master": "local[1]"}, small=True)
        warming = threading.Thread(target=early.warm_up, kwargs={"small": True, "until": tmp_path / "never"},
                                   daemon=True)
        warming.start()
        wait_for(lambda: set(Path(tempfile.gettempdir()).glob("pinpipe-warm-up-*")) - folders, 30,
                 "the warm-up to begin")
        assert early.warming  # still running: its first step (reading, cleaning, saving) takes seconds
        stopping = time.monotonic()
        early.shutdown()
        took = time.monotonic() - stopping
    finally:
        if early.manager.has_kernel:
            early.manager.shutdown_kernel(now=True)
    assert process_gone(kernel)
    err = capfd.readouterr().err
    assert "Traceback" not in err and "ZMQError" not in err, err[-3000:]
    assert took < 20, f"the kernel took {took:.1f} s to stop"
    assert set(Path(tempfile.gettempdir()).glob("pinpipe-warm-up-*")) <= folders  # the warm-up's folder removed
