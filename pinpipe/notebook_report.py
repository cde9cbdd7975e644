"""Run a notebook headless (papermill) and render the executed copy to HTML, in one process.

What `papermill IN OUT -p ...` followed by `jupyter nbconvert --to html OUT` do, less their second Python start:
nbconvert's exporter is imported and its templates loaded in a thread while the kernel runs, so the HTML costs
a fraction of a second after the last cell instead of a process of its own.
A notebook that fails is still rendered, so its report shows the error; the exit status is then 1.

    python -m pinpipe.notebook_report batch_processing_spark.ipynb batch_data/report.ipynb \\
        --html batch_data/report.html -p input_dir batch_data

With --when-exists FILE the kernel starts at once and the notebook runs when FILE appears (run_pipeline.sh
creates it once the batch is written); --prestart-spark also starts the notebook's Spark session meanwhile, so
the kernel's and the JVM's start overlap the stages before. The notebook then finds the session already
active (session.get_spark) and runs unchanged; only its JVM's flags were chosen from the hint (small or large
batch) instead of the batch's size. An orphaned runner (its parent gone) stops waiting and exits.
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path


class _Exporter(threading.Thread):
    """nbconvert's HTML exporter, imported and warmed up on `notebook` (the input) in the background."""

    def __init__(self, notebook: Path) -> None:
        super().__init__(name="html-exporter", daemon=True)
        self.notebook = notebook
        self.exporter = None
        self.error: Exception | None = None

    def run(self) -> None:
        try:
            from nbconvert import HTMLExporter

            exporter = HTMLExporter()
            exporter.from_filename(str(self.notebook))  # loads and compiles the templates
            self.exporter = exporter
        except Exception as error:  # reported when the HTML is wanted
            self.error = error

    def render(self, executed: Path, html: Path) -> None:
        self.join()
        if self.exporter is None:
            raise RuntimeError(f"cannot load nbconvert's HTML exporter: {self.error}")
        body, _ = self.exporter.from_filename(str(executed))
        tmp = html.with_name(html.name + ".tmp")
        tmp.write_text(body, encoding="utf-8")
        tmp.replace(html)


class _Termination:
    """SIGTERM and SIGINT as SystemExit(128 + signal), except inside `deferred()`, which exits on the way out
    instead."""

    def __init__(self) -> None:
        self.deferring, self.requested = False, None
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._handle)

    def _handle(self, signum, frame) -> None:
        if self.deferring:
            self.requested = signum
        else:
            sys.exit(128 + signum)

    @contextmanager
    def deferred(self):
        self.deferring = True
        try:
            yield
        finally:
            self.deferring = False
        if self.requested is not None:
            sys.exit(128 + self.requested)


# The kernel leaves output written below Python (the driver JVM's log lines, a native library's messages) on its
# own stderr, which is this runner's (the stage's log), instead of also copying it into the report's cells: there
# it was Spark's start-up chatter, and in the log it appeared twice while this runner relayed the early kernel's
# output. What the notebook's Python code prints still goes to its cells.
KERNEL_ARGUMENTS = ["--IPKernelApp.capture_fd_output=False"]
DEFAULT_KERNEL = "python3"  # the Python running this (ipykernel's own kernel spec)


# The kernel's five sockets are Unix domain sockets in a folder of this runner's, which only its user may enter
# (jupyter_client's IPC transport), not jupyter_client's default of five TCP ports on 127.0.0.1, which any local
# process may connect to (messages are signed, not encrypted; ipykernel said so in a warning atop every
# notebook.log and stream.log). A socket's path holds at most 107 bytes on Linux, 103 on macOS (SOCKET_PATH_MAX):
# under a temp directory too deep for that the kernel keeps TCP.
SOCKET_PATH_MAX = 103
SOCKET_SUFFIX_MAX = 6  # jupyter_client appends "-<n>" to the path for each socket
WARM_UP_STOP_S = 15.0  # how long a warm-up asked to stop may take to end (a step on a cold JVM takes 1-3 s here)


def _kernel_manager(kernel_name: str):
    """(a KernelManager for `kernel_name` on IPC sockets, the folder holding them); on TCP, with None, where the
    temp directory's path is too long for a socket's."""
    from jupyter_client.manager import KernelManager

    folder = tempfile.mkdtemp(prefix="pinpipe-kernel-")
    sockets = os.path.join(folder, "kernel")
    if len(os.fsencode(sockets)) + SOCKET_SUFFIX_MAX > SOCKET_PATH_MAX:
        os.rmdir(folder)
        return KernelManager(kernel_name=kernel_name), None
    return KernelManager(kernel_name=kernel_name, transport="ipc", ip=sockets), folder


class _Kernel:
    """The notebook's kernel, started at once: before the notebook can run (--when-exists), with its Spark session
    when asked."""

    def __init__(self, notebook: Path) -> None:
        import nbformat
        from jupyter_client.kernelspec import NoSuchKernel

        kernel = nbformat.read(str(notebook), as_version=4).metadata.get("kernelspec", {}).get("name", DEFAULT_KERNEL)
        try:
            self._start(kernel)
        except NoSuchKernel:  # a notebook saved from another Jupyter, whose kernel has a name of its own there
            print(f"warning: {notebook.name} names the kernel {kernel!r}, which is not installed here; it runs on "
                  f"{DEFAULT_KERNEL!r}, this Python's (`jupyter kernelspec list` shows the kernels there are)",
                  file=sys.stderr)
            self._start(DEFAULT_KERNEL)

    def _start(self, kernel: str) -> None:
        self.warming = False  # the warm-up runs, not yet answered (SIGTERM came while it ran, or it goes on)
        self.stop_file = Path(tempfile.gettempdir()) / f"pinpipe-stop-warm-up-{uuid.uuid4().hex}"
        self.manager, self.socket_folder = _kernel_manager(kernel)
        try:
            self.manager.start_kernel(extra_arguments=KERNEL_ARGUMENTS)
        except BaseException:  # no kernel: nothing will remove the sockets' folder otherwise
            self._remove_socket_folder()
            raise

    def start_spark(self, notebook: Path, parameters: dict[str, str], small: bool) -> bool:
        """get_spark as the notebook's first cell will call it: on the `spark_master` given, else the parameters
        cell's default. A failure is only reported (False): the kernel restarts and the notebook starts Spark
        itself."""
        import ast

        import papermill

        master = parameters.get("spark_master")
        if master is None:
            default = papermill.inspect_notebook(str(notebook)).get("spark_master", {}).get("default")
            master = ast.literal_eval(default) if default else "local[*]"
        code = ("import matplotlib.pyplot\n"  # what the chart cells import, imported now
                "from pinpipe.spark.session import get_spark\n"
                f"get_spark({master!r}, small={small!r})\n")
        if self._run(code) is None:
            return True
        self.manager.restart_kernel(now=True)
        return False

    def warm_up(self, small: bool, until: Path) -> None:
        """Run the notebook's steps on a tiny built-in batch in the early session (sample_batch.warm_up) until
        `until` appears, so the notebook's queries find a JVM that has run them once. Failures are only reported."""
        code = ("from pyspark.sql import SparkSession\n"
                "from pinpipe.spark.sample_batch import warm_up\n"
                f"print(warm_up(SparkSession.getActiveSession(), small={small!r}, until={str(until)!r}, "
                f"stop_file={str(self.stop_file)!r}))\n")
        self.warming = True
        self._run(code, what="warm Spark up")
        self.warming = False  # not after SIGTERM: then it still runs (shutdown ends it)

    def _run(self, code: str, what: str = "start Spark early") -> str | None:
        """Execute `code` in the kernel, its output to stderr; the error, reported, if it failed."""
        def output(message) -> None:
            if message["msg_type"] == "stream":
                print(message["content"]["text"], end="", file=sys.stderr, flush=True)

        client = self.manager.client()
        client.start_channels()
        try:
            client.wait_for_ready(timeout=120)
            reply = client.execute_interactive(code, output_hook=output, timeout=600)
            if reply["content"]["status"] != "ok":
                raise RuntimeError(f"{reply['content'].get('ename')}: {reply['content'].get('evalue')}")
            return None
        except Exception as error:
            print(f"warning: could not {what} ({error}); the notebook runs without it", file=sys.stderr)
            return str(error)
        finally:
            client.stop_channels()

    @staticmethod
    def wait_for(path: Path, parent: int, poll_s: float = 0.1) -> bool:
        """True once `path` exists; False when this process is orphaned first (its parent, `parent`, exited)."""
        while not path.exists():
            if os.getppid() != parent:
                return False
            time.sleep(poll_s)
        return True

    def shutdown(self) -> None:
        """Stop the kernel: asked to shut down, or killed where it can no longer be asked. After the notebook's run,
        nbclient may have cleaned this manager's resources up already (its zmq context destroyed) while the kernel
        process was still there; asking then raised "ZMQError: Operation not supported" and failed the stage."""
        import zmq

        try:
            if self.manager.has_kernel:
                if self.warming and not self._end_warm_up():
                    self.manager.shutdown_kernel(now=True)
                    return
                try:
                    self.manager.shutdown_kernel(now=False)
                except zmq.ZMQError:
                    self.manager.shutdown_kernel(now=True)
        finally:
            self.stop_file.unlink(missing_ok=True)
            self._remove_socket_folder()

    def _end_warm_up(self, timeout_s: float = WARM_UP_STOP_S) -> bool:
        """Ask the warm-up to stop (it ends at its next step, its folder removed) and wait for it: whether it ended
        within `timeout_s`. A kernel asked to shut down while it ran the warm-up closed its sockets, then failed to
        send the warm-up's reply: a ZMQError traceback ended notebook.log after every run whose poster or extractor
        failed. (An interrupt would be worse: pyspark's SIGINT handler calls the JVM inside the running call.)"""
        import queue

        import zmq

        self.stop_file.touch()
        context = zmq.Context()  # of its own: the manager's may be gone
        try:
            client = self.manager.client(context=context)
            client.start_channels(iopub=False, stdin=False, hb=False, control=False)  # the shell channel only
            try:
                deadline = time.monotonic() + timeout_s
                request = client.kernel_info()  # answered once the warm-up has ended
                while client.get_shell_msg(timeout=max(0.1, deadline - time.monotonic()))[
                        "parent_header"].get("msg_id") != request:
                    pass
            finally:
                client.stop_channels()
        except (queue.Empty, zmq.ZMQError, RuntimeError):  # no answer in time
            return False
        finally:
            context.destroy(linger=0)
        self.warming = False
        return True

    def _remove_socket_folder(self) -> None:
        if self.socket_folder is not None:
            shutil.rmtree(self.socket_folder, ignore_errors=True)


def prestart_size(text: str) -> bool:
    """--prestart-spark's value: whether the early JVM is tuned for a small batch. `small`, `large`, or the number
    of triplets the batch is expected to hold, small when their CSV (session.expected_bytes) is (session.is_small)."""
    if text in ("small", "large"):
        return text == "small"
    if not text.isdigit() or int(text) == 0:
        raise argparse.ArgumentTypeError(f"expected small, large or a positive number of triplets, not {text!r}")
    from pinpipe.spark import session  # imports pyspark: only when a number is given

    return session.is_small(session.expected_bytes(int(text)))


def main(argv: list[str] | None = None) -> int:
    parent = os.getppid()  # who is to create --when-exists' file
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebook", type=Path, help="the notebook to run")
    parser.add_argument("output", type=Path, help="where the executed notebook goes")
    parser.add_argument("--html", type=Path, help="also render the executed notebook to this HTML file")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                        help="a text parameter for the notebook's parameters cell (repeatable)")
    parser.add_argument("--when-exists", type=Path, metavar="FILE",
                        help="start the kernel now and run the notebook once FILE exists")
    parser.add_argument("--prestart-spark", type=prestart_size, metavar="small|large|TRIPLETS",
                        help="with --when-exists: also start the notebook's Spark session while waiting, its JVM "
                             "tuned for a small or a large batch, or for a batch of about TRIPLETS triplets (small "
                             "under 100 MB of CSV, as the notebook decides for a batch it can measure)")
    parser.add_argument("--warm-up", action="store_true",
                        help="with --prestart-spark: then run the notebook's steps on a tiny built-in batch in that "
                             "session until FILE appears, so its JVM has compiled them when the notebook comes")
    args = parser.parse_args(argv)
    if not args.notebook.is_file():
        parser.error(f"no such notebook: {args.notebook}")
    if args.prestart_spark is not None and not args.when_exists:
        parser.error("--prestart-spark needs --when-exists")
    if args.warm_up and args.prestart_spark is None:
        parser.error("--warm-up needs --prestart-spark")

    # What this thread needs and the exporter's thread imports too (nbconvert's filters import IPython, its
    # preprocessors nbclient), imported before that thread starts (most of it papermill, which this thread
    # imported next anyway): two threads importing one package can fail with a circular-import error (seen in CI:
    # "KeyError: 'IPython'" from importlib, the kernel's start in this thread, the exporter's warm-up in the other).
    import IPython  # noqa: F401
    import jupyter_client.manager  # noqa: F401
    import papermill
    exporter = _Exporter(args.notebook) if args.html else None
    if exporter:
        exporter.start()
    # SIGTERM (run_pipeline.sh when an earlier stage failed) and SIGINT (Ctrl-C) unwind, so the kernel and its
    # JVM are shut down; while the early Spark session starts they wait for that to finish (a kernel stopped
    # while pyspark launches its JVM leaves the JVM running: py4j's server thread keeps it alive).
    termination = _Termination()

    failed, kernel, spark_started, notebook_started = None, None, False, False
    try:
        with termination.deferred():  # a kernel launched is a kernel shut down (finally), even if SIGTERM came
            kernel = _Kernel(args.notebook)
        if args.prestart_spark is not None:
            with termination.deferred():
                spark_started = kernel.start_spark(args.notebook, dict(args.parameter), small=args.prestart_spark)
            if spark_started and args.warm_up:
                kernel.warm_up(small=args.prestart_spark, until=args.when_exists)
        if args.when_exists and not kernel.wait_for(args.when_exists, parent):
            print(f"error: the process that was to create {args.when_exists} is gone; not running "
                  f"{args.notebook}", file=sys.stderr)
            return 1
        notebook_started = True
        papermill.execute_notebook(str(args.notebook), str(args.output), parameters=dict(args.parameter),
                                   log_output=False, progress_bar=False, km=kernel.manager)
    except papermill.PapermillExecutionError as error:
        failed = error
    except SystemExit as stop:  # SIGTERM or SIGINT (_Termination): said here, where nothing else says it
        if stop.code in (128 + signal.SIGTERM, 128 + signal.SIGINT):
            shut = "its kernel and Spark session are" if spark_started or notebook_started else "its kernel is"
            print(f"stopped by {signal.Signals(stop.code - 128).name} "
                  f"{'while running' if notebook_started else 'before running'} {args.notebook}; {shut} shut down",
                  file=sys.stderr)
        raise
    finally:
        if kernel is not None:
            kernel.shutdown()
    if exporter:
        try:
            exporter.render(args.output, args.html)
        except Exception as error:
            print(f"warning: could not render {args.html}: {error}; the executed notebook is {args.output}",
                  file=sys.stderr)
    if failed is not None:
        print(f"error: {args.notebook} failed in cell {failed.exec_count}: {failed.ename}: {failed.evalue}\n"
              f"the executed notebook, with the traceback, is {args.output}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
