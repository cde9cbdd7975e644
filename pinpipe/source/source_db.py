"""The PostgreSQL source: connection, schema, bulk seeding with COPY, and the reads the emulator makes."""
from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit

import psycopg
from psycopg import sql

from pinpipe.common.config import Settings
from pinpipe.common.schema import COLUMNS, KINDS, TABLES
from pinpipe.source import datagen
from pinpipe.source.embedded_pg import EmbeddedServerError, embedded_url

log = logging.getLogger(__name__)

COPY_CHUNK_ROWS = 20_000


class SourceDatabaseError(RuntimeError):
    """A problem with the source database, phrased for the person running the command."""


def database_url(settings: Settings) -> str:
    """DATABASE_URL if set (a libpq URL, or SQLAlchemy's postgresql+<driver>:// form), else the embedded
    server's URL (starting it if needed)."""
    if settings.database_url:
        return libpq_url(settings.database_url)
    try:
        return embedded_url(settings.pgdata_dir, keep_running=settings.keep_database_running)
    except EmbeddedServerError as error:
        raise SourceDatabaseError(str(error)) from None


def libpq_url(url: str) -> str:
    """`url` as libpq takes it: SQLAlchemy's `postgresql+psycopg2://…` (what users of the original project
    have) becomes `postgresql://…`; anything that is not a PostgreSQL URL is refused in one sentence."""
    text = url.strip()
    scheme, sep, rest = text.partition("://")
    if not sep and "=" in text:
        return text  # a libpq key=value string (host=… dbname=…)
    base = scheme.split("+", 1)[0].lower()
    if not sep or base not in ("postgresql", "postgres"):
        shown = f"{scheme}://…" if sep else "a value without a scheme"
        raise SourceDatabaseError(f"DATABASE_URL must be a PostgreSQL URL such as postgresql://user:password@host:5432/"
                                  f"database (or postgresql+psycopg2://…), not {shown}")
    try:
        urlsplit(text).port  # noqa: B018  (raises on a port that is not a number)
    except ValueError as exc:
        raise SourceDatabaseError(f"DATABASE_URL is not a valid URL ({exc}); expected "
                                  "postgresql://user:password@host:5432/database") from None
    return f"postgresql://{rest}"


def describe_url(url: str) -> str:
    """Host, port and database of a URL, without the password."""
    parts = urlsplit(url)
    host = parts.hostname or "a local socket"
    port = f":{parts.port}" if parts.port else ""
    return f"{host}{port}/{parts.path.lstrip('/') or '(default database)'}"


def connect(url: str, **kwargs) -> psycopg.Connection:
    """Open a connection, turning a refusal into one sentence that says what to check."""
    try:
        return psycopg.connect(url, connect_timeout=10, autocommit=True, **kwargs)
    except psycopg.ProgrammingError as exc:  # a URL libpq cannot parse
        raise SourceDatabaseError(f"DATABASE_URL cannot be used ({str(exc).strip().splitlines()[0]}); expected "
                                  "postgresql://user:password@host:5432/database") from None
    except psycopg.OperationalError as exc:
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise SourceDatabaseError(
            f"cannot connect to PostgreSQL at {describe_url(url)} ({reason}); check that the server is "
            "running and that DATABASE_URL has the right host, port, database and credentials"
        ) from None


@contextmanager
def connection(url: str) -> Iterator[psycopg.Connection]:
    conn = connect(url)
    try:
        yield conn
    finally:
        conn.close()


def create_table_sql(kind: str, table: str) -> sql.Composed:
    """CREATE TABLE for `kind`'s columns, named `table`, without its primary key (seed adds it after loading)."""
    columns = sql.SQL(", ").join(sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(sql_type))
                                 for name, sql_type in COLUMNS[kind])
    return sql.SQL("CREATE TABLE {} ({})").format(sql.Identifier(table), columns)


def staging_table(kind: str) -> str:
    """Where a seed loads `kind`'s rows before they replace the source table (seed)."""
    return f"{TABLES[kind]}_seeding"


def existing_columns(conn: psycopg.Connection, table: str) -> list[tuple[str, str]] | None:
    """(column, type) of `table` in the current schema, or None when it does not exist."""
    rows = conn.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name = %s ORDER BY ordinal_position",
        (table,),
    ).fetchall()
    return rows or None


def check_schema(conn: psycopg.Connection) -> dict[str, bool]:
    """Which source tables exist; raises if one exists with other columns than the source schema."""
    present = {}
    for kind in KINDS:
        found = existing_columns(conn, TABLES[kind])
        present[kind] = found is not None
        if found is not None and found != list(COLUMNS[kind]):
            expected = ", ".join(name for name, _ in COLUMNS[kind])
            got = ", ".join(f"{name} {sql_type}" for name, sql_type in found)
            raise SourceDatabaseError(
                f"table {TABLES[kind]} exists with other columns ({got}); expected ({expected}). "
                "Nothing was changed: rename or drop that table, or point DATABASE_URL at another database"
            )
    return present


def row_counts(conn: psycopg.Connection, present: dict[str, bool]) -> dict[str, int]:
    """Rows per source table; `present` is what check_schema found."""
    return {
        kind: conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(TABLES[kind]))).fetchone()[0]
        if present[kind] else 0
        for kind in KINDS
    }


@dataclass(frozen=True)
class SeedReport:
    rows: int
    seconds: float


def seed(url: str, rows: int = datagen.DEFAULT_ROWS, random_seed: int = 0, reset: bool = False) -> SeedReport:
    """Create the three tables and bulk-load `rows` generated rows into each with COPY.

    The rows go into staging tables (staging_table), which replace the source tables in one transaction at the
    end: a seed interrupted on the way (Ctrl-C, a lost connection) leaves the source tables as they were, never
    half-filled ones the poster would then serve from."""
    if rows < 1:
        raise ValueError("--rows must be a positive integer")
    started = time.perf_counter()
    with connection(url) as conn:
        present = check_schema(conn)
        counts = row_counts(conn, present)
        if any(counts.values()) and not reset:
            held = ", ".join(f"{TABLES[k]}={n}" for k, n in counts.items() if n)
            raise SourceDatabaseError(
                f"the source tables already hold data ({held}); pass --reset to replace it"
            )
        with conn.transaction():
            _drop_staging_tables(conn)  # left by a seed that could not drop them, if any
            for kind in KINDS:
                # The primary key is added after COPY: building the index once is much faster.
                conn.execute(create_table_sql(kind, staging_table(kind)))
    try:
        _copy_rows(url, datagen.iter_rows(rows, random_seed), {kind: staging_table(kind) for kind in KINDS})
    except BaseException:
        _drop_staging(url)
        raise
    with connection(url) as conn, conn.transaction():
        for kind in KINDS:
            table = sql.Identifier(TABLES[kind])
            if present[kind]:  # found in the current schema (check_schema): empty, or --reset
                conn.execute(sql.SQL("DROP TABLE {}").format(table))
            conn.execute(sql.SQL("ALTER TABLE {} RENAME TO {}").format(sql.Identifier(staging_table(kind)), table))
            conn.execute(sql.SQL("ALTER TABLE {} ADD PRIMARY KEY (idx)").format(table))
            conn.execute(sql.SQL("ANALYZE {}").format(table))
    report = SeedReport(rows=rows, seconds=time.perf_counter() - started)
    log.info("seeded %d rows per table in %.1f s", rows, report.seconds)
    return report


def _csv_field(value) -> str:
    """One field in PostgreSQL's COPY CSV form: NULL unquoted-empty, every string quoted."""
    if value is None:
        return ""
    if isinstance(value, str):
        return '"' + value.replace('"', '""') + '"'
    if isinstance(value, float):
        return repr(value)
    return str(value)  # int, UUID, datetime (str() gives 'YYYY-MM-DD HH:MM:SS')


def _drop_staging_tables(conn: psycopg.Connection) -> None:
    for kind in KINDS:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(staging_table(kind))))


def _drop_staging(url: str) -> None:
    """Remove the staging tables of a seed that did not finish, where the database can still be reached."""
    try:
        with connection(url) as conn, conn.transaction():
            _drop_staging_tables(conn)
    except (psycopg.Error, SourceDatabaseError):  # the next seed drops them
        pass


class _Abort(Exception):
    """The rows stopped coming (an error or Ctrl-C in the generating thread): a COPY is failed, not committed."""


_ABORT = object()  # a queue's last item when the rows stopped coming; None when they were all sent


def _copy_rows(url: str, triplets: Iterable[tuple[tuple, tuple, tuple]], tables: dict[str, str]) -> None:
    """COPY each kind's rows into tables[kind] over its own connection in a thread, so PostgreSQL parses while
    Python generates. All or nothing per table: rows that stop coming fail the COPYs."""
    queues = {kind: queue.Queue(maxsize=4) for kind in KINDS}
    errors: list[BaseException] = []

    def load(kind: str) -> None:
        try:
            with connection(url) as conn, conn.cursor() as cur:
                conn.execute("SET synchronous_commit TO off")
                table = sql.Identifier(tables[kind])
                with cur.copy(sql.SQL("COPY {} FROM STDIN WITH (FORMAT csv)").format(table)) as copy:
                    while isinstance(chunk := queues[kind].get(), bytes):
                        copy.write(chunk)
                    if chunk is _ABORT:
                        raise _Abort
        except _Abort:
            pass
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
            while queues[kind].get() not in (None, _ABORT):  # drain so the producer never blocks
                pass

    threads = [threading.Thread(target=load, args=(kind,), daemon=True) for kind in KINDS]
    for thread in threads:
        thread.start()
    buffers: dict[str, list[str]] = {kind: [] for kind in KINDS}
    end = _ABORT
    try:
        for n, triplet in enumerate(triplets, 1):
            for kind, row in zip(KINDS, triplet):
                buffers[kind].append(",".join(map(_csv_field, row)))
            if n % COPY_CHUNK_ROWS == 0:
                _flush(buffers, queues)
        _flush(buffers, queues)
        end = None
    finally:
        for kind in KINDS:
            queues[kind].put(end)
        for thread in threads:
            thread.join()
    if errors:
        raise errors[0]


def _flush(buffers: dict[str, list[str]], queues: dict[str, queue.Queue]) -> None:
    for kind, lines in buffers.items():
        if lines:
            queues[kind].put(("\n".join(lines) + "\n").encode())
            lines.clear()


def ensure_seeded(url: str, rows: int = datagen.DEFAULT_ROWS, random_seed: int = 0) -> bool:
    """Seed when all three tables are missing; True if it seeded. Partial or foreign tables raise."""
    with connection(url) as conn:
        present = check_schema(conn)
    if not any(present.values()):
        log.info("source tables missing: seeding %d rows per table", rows)
        seed(url, rows, random_seed)
        return True
    if not all(present.values()):
        missing = ", ".join(TABLES[k] for k, here in present.items() if not here)
        raise SourceDatabaseError(f"source table(s) missing: {missing}; run `python data_poster.py seed-db --reset`")
    return False
