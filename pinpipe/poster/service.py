"""Wiring for `python data_poster.py`: the API under uvicorn, with the emulator in its own process."""
from __future__ import annotations

import errno
import logging
import multiprocessing as mp
import signal
import socket
import sys
import threading

import uvicorn

from pinpipe.common.config import Settings
from pinpipe.poster.app import create_app
from pinpipe.source import source_db
from pinpipe.source.emulator import EmulatorConfig, EmulatorStatus, run_emulator_process

log = logging.getLogger(__name__)

EMULATOR_STOP_S = 60  # the emulator gives in-flight triplets EmulatorConfig.stop_grace_s (30 s) after a stop


def database_ready(url: str) -> bool:
    try:
        with source_db.connection(url) as conn:
            conn.execute("SELECT 1")
        return True
    except Exception:
        return False


def port_in_use(host: str, port: int) -> bool:
    """Whether another program listens on `host`:`port`, tried as uvicorn binds (SO_REUSEADDR: a port left in
    TIME_WAIT by an earlier poster is free)."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
    return False


class _Server(uvicorn.Server):
    """uvicorn, but Ctrl-C/SIGTERM first stops the emulator and lets its in-flight requests finish."""

    def __init__(self, config: uvicorn.Config, on_exit_request):
        super().__init__(config)
        self._on_exit_request = on_exit_request

    def handle_exit(self, sig, frame) -> None:
        if self.should_exit:
            return super().handle_exit(sig, frame)
        self._on_exit_request(sig)


def serve(settings: Settings, database_url: str, *, emulate: bool, rate: float, count: int | None,
          random_seed: int | None, concurrency: int = 128, give_up_after_s: float = 0.0) -> int:
    """Serve the API (and run the emulator) until stopped, or until `count` triplets are acknowledged."""
    # The event loop, kafka-python's IO thread and the transaction thread share one GIL; the default 5 ms
    # switch interval makes every broker round trip wait for the loop's time slice (README, Benchmarks).
    sys.setswitchinterval(0.0005)
    if port_in_use(settings.poster_host, settings.poster_port):  # uvicorn would only log its errno and exit 3
        print(f"error: port {settings.poster_port} on {settings.poster_host} is already in use by another program; "
              "stop it or set POSTER_PORT (--port)", file=sys.stderr)
        return 1
    ctx = mp.get_context("spawn")
    status = EmulatorStatus(ctx)
    stop_flag = ctx.Event()
    app = create_app(settings, database_check=lambda: database_ready(database_url),
                     emulator_status=status.snapshot if emulate else None)
    config = uvicorn.Config(app, host=settings.poster_host, port=settings.poster_port, log_level="warning",
                            access_log=False, lifespan="on", timeout_graceful_shutdown=30,
                            proxy_headers=False)  # served directly on loopback; no proxy to trust
    process: mp.Process | None = None
    # Set once the emulator has ended (or will not start). Only the thread that started it joins it: a second
    # joiner finds it reaped by the first and takes it for alive.
    emulator_ended = threading.Event()
    stopped_by: list[int] = []  # the signal that asked the server to stop

    def request_exit(sig: int):
        stopped_by.append(sig)
        stop_flag.set()
        threading.Thread(target=finish, daemon=True).start()

    def finish():
        if process is not None and not emulator_ended.wait(timeout=EMULATOR_STOP_S):
            # its in-flight retries are bounded; this is the last resort
            log.error("the emulator did not stop within %d s; killing it", EMULATOR_STOP_S)
            process.kill()  # SIGTERM would only ask it to stop again
            emulator_ended.wait(timeout=10)
        server.should_exit = True

    server = _Server(config, request_exit)
    if emulate:
        emulator_config = EmulatorConfig(database_url=database_url, api_url=settings.poster_url, rate=rate,
                                         count=count, random_seed=random_seed, concurrency=concurrency,
                                         give_up_after_s=give_up_after_s)
        process = ctx.Process(target=run_emulator_process, args=(emulator_config, status, stop_flag),
                              name="emulator", daemon=False)

        # Start the emulator once uvicorn is listening; it stops the server when it is done.
        def start_emulator():
            try:
                while not server.started and not server.should_exit and not stop_flag.is_set():
                    threading.Event().wait(0.05)
                if server.should_exit or stop_flag.is_set():
                    return
                process.start()
                process.join()
            finally:
                emulator_ended.set()
            server.should_exit = True

        threading.Thread(target=start_emulator, daemon=True).start()

    log.info("serving on %s (docs at %s/docs)%s", settings.poster_url, settings.poster_url,
             "" if emulate else "; emulator off")
    server.run()
    if process is not None and process.exitcode not in (0, None):
        log.error("the emulator failed (exit code %s)", process.exitcode)
        return 1
    if not server.started:
        log.error("could not serve on %s (is the port taken?)", settings.poster_url)
        return 1
    acked = status.acked
    if emulate:
        print(f"triplets acknowledged by Kafka: {acked}")
    if stopped_by and count is not None and acked < count:  # told to stop before it was done: not a success
        name = signal.Signals(stopped_by[0]).name
        print(f"stopped by {name} before --count was reached: {acked} of {count} triplets acknowledged",
              file=sys.stderr)
        return 128 + stopped_by[0]
    return 0
