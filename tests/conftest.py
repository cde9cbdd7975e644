"""Shared fixtures: one real Kafka broker and one real PostgreSQL for the whole test session."""
from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

from pinpipe.common.config import PROJECT_ROOT

# run_tests.sh runs the suite on pytest-xdist workers (gw0, gw1, ...): each has its own broker, PostgreSQL and
# Spark session, and its own block of ports (every fixed port of the tests is TEST_KAFKA_PORT plus < 2000).
WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
TEST_KAFKA_PORT = int(os.environ.get("TEST_KAFKA_PORT", "19092")) + 2000 * WORKER
TEST_KAFKA_CONTROLLER_PORT = TEST_KAFKA_PORT + 1


def pytest_collection_modifyitems(items):
    for item in items:
        # Tests under tests/unit are unit tests; everything else talks to a real service.
        if "tests/unit/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.unit)
        else:
            item.add_marker(pytest.mark.integration)
        # Tests of the shared Spark session run on one worker (with --dist loadgroup), so it starts once.
        if "spark" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group("spark"))


def kafka_env(state_dir: Path, port: int, **extra: str) -> dict[str, str]:
    """Environment for start_kafka.sh/stop_kafka.sh running a private broker."""
    env = dict(os.environ)
    env.update(
        KAFKA_PORT=str(port),
        KAFKA_CONTROLLER_PORT=str(port + 1),
        KAFKA_STATE_DIR=str(state_dir),
        KAFKA_START_TIMEOUT="120",
        **extra,
    )
    for name in ("KAFKA_DATA_DIR", "KAFKA_LOG_DIR"):
        env.pop(name, None)
    return env


def run_script(name: str, env: dict[str, str], check: bool = True, args: list[str] = ()) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [str(PROJECT_ROOT / name), *args], env=env, capture_output=True, text=True, timeout=600
    )
    if check and result.returncode != 0:
        raise AssertionError(f"{name} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory) -> str:
    """A real broker started by start_kafka.sh for this session; a failed start fails the run."""
    env = kafka_env(tmp_path_factory.mktemp("kafka"), TEST_KAFKA_PORT)
    run_script("start_kafka.sh", env)
    try:
        yield f"localhost:{TEST_KAFKA_PORT}"
    finally:
        run_script("stop_kafka.sh", env, check=False)


@pytest.fixture
def topics(kafka_bootstrap) -> dict[str, str]:
    """Three fresh co-partitioned topics for one test: kind -> name."""
    from pinpipe.common.topics import fresh_topics

    return fresh_topics(kafka_bootstrap, "test")


@pytest.fixture(scope="session")
def pg_url() -> str:
    """A real embedded PostgreSQL (its own data directory), seeded with the default generator."""
    from pinpipe.source import source_db
    from pinpipe.source.embedded_pg import embedded_url

    # Outside pytest's pytest-of-<user> folder: another pytest session on the machine resets that folder to
    # mode 700, and a server running as its own user (the tests run as root) then loses its data mid-run.
    root = Path(tempfile.mkdtemp(prefix="pinpipe-test-pg-"))
    os.chmod(root, 0o755)
    atexit.register(shutil.rmtree, root, True)  # registered first, so it runs after the wheel stops the server
    url = embedded_url(root / "pgdata")
    source_db.seed(url, rows=2_000, random_seed=7)
    return url


# Ports for the servers the tests start on ports of their own choosing (the poster, Spark Connect, PostgreSQL, ...):
# taken in turn from the top of this worker's block, and free when handed out. Not a port the kernel picks (a bind
# to port 0): that comes from Linux's ephemeral range (32768-60999), where every other bind to port 0 and every
# outgoing connection takes ports too, so it could be taken before the server bound it (a run_pipeline.sh test's
# poster lost its port to the notebook's prestarted Spark driver that way).
FREE_PORTS = range(TEST_KAFKA_PORT + 1500, TEST_KAFKA_PORT + 2000)
_next_free = iter(FREE_PORTS)


def free_port() -> int:
    """A port on 127.0.0.1 that no process holds now, from FREE_PORTS; never the same one twice in a session."""
    for port in _next_free:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:  # in use (or in TIME_WAIT): the next one
                continue
            return port
    raise RuntimeError(f"every port of {FREE_PORTS} has been handed out or is in use")


@pytest.fixture(scope="session")
def spark():
    """One real local Spark session for the whole run (sessions take seconds to start)."""
    from pinpipe.spark.session import get_spark

    session = get_spark("local[2]", app_name="pinpipe-tests", kafka=True)  # Kafka source: test_streaming
    session.conf.set("spark.sql.shuffle.partitions", "2")
    yield session
    session.stop()
