"""The produce API against the real broker and database: what it acknowledges is in Kafka."""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict

import httpx
import pytest
from fastapi.testclient import TestClient

from pinpipe.common.config import PROJECT_ROOT, get_settings
from pinpipe.common.records import encode_value_field
from pinpipe.poster.app import create_app
from tests.conftest import TEST_KAFKA_PORT, free_port, kafka_env, run_script
from tests.helpers import consume_all, triplet_rows


def api_settings(kafka_bootstrap, topics, **extra):
    extra.setdefault("delivery_timeout_s", 5)
    return get_settings(kafka_bootstrap_servers=kafka_bootstrap, pin_topic=topics["pin"], geo_topic=topics["geo"],
                        user_topic=topics["user"], **extra)


@pytest.fixture
def client(kafka_bootstrap, topics):
    app = create_app(api_settings(kafka_bootstrap, topics, max_records_per_request=10, max_body_bytes=64 * 1024),
                     transactional_id=f"t-{uuid.uuid4().hex}")
    with TestClient(app) as c:
        yield c


def json_row(row: dict) -> dict:
    return {k: encode_value_field(v) for k, v in row.items()}


ROWS = triplet_rows(50, seed=3)


def test_topics_call_answers_offsets_that_match_what_kafka_holds(client, kafka_bootstrap, topics):
    records = [{"key": i, "value": json_row(ROWS[i]["pin"])} for i in (0, 1, 2, 3)]
    response = client.post(f"/topics/{topics['pin']}", json={"records": records})
    assert response.status_code == 200, response.text
    offsets = response.json()["offsets"]
    got = {(r.partition, r.offset): r for r in consume_all(kafka_bootstrap, [topics["pin"]], 4)}
    for sent, where in zip(records, offsets):
        record = got[(where["partition"], where["offset"])]
        assert record.key == str(sent["key"]).encode()
        assert json.loads(record.value) == sent["value"]


def test_events_are_atomic_triplets_on_the_same_partition_number(client, kafka_bootstrap, topics):
    body = {kind: json_row(ROWS[7][kind]) for kind in ("pin", "geo", "user")}
    response = client.post("/events", json=body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["idx"] == 7
    assert len({o["partition"] for o in answer["offsets"].values()}) == 1
    records = consume_all(kafka_bootstrap, list(topics.values()), 3)
    kinds = {r.topic: r for r in records}
    for kind, topic in topics.items():
        assert kinds[topic].offset == answer["offsets"][kind]["offset"]
        assert json.loads(kinds[topic].value) == body[kind]
        assert json.loads(kinds[topic].value)["idx"] == 7


def test_send_data_keeps_the_seed_call_with_the_same_guarantee(client, kafka_bootstrap, topics):
    response = client.post("/send_data", params={"topic": topics["geo"]}, json=json_row(ROWS[0]["geo"]))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "Message sent" and body["topic"] == topics["geo"]
    [record] = consume_all(kafka_bootstrap, [topics["geo"]], 1)
    assert (record.partition, record.offset) == (body["partition"], body["offset"])
    assert json.loads(record.value)["timestamp"] == ROWS[0]["geo"]["timestamp"].strftime("%Y-%m-%d %H:%M:%S")


def test_unknown_topics_are_404(client):
    assert client.post("/topics/other.topic", json={"records": [{"value": {}}]}).status_code == 404
    assert client.post("/send_data", params={"topic": "other"}, json={}).status_code == 404


def test_invalid_bodies_are_422_naming_the_field(client, topics):
    bad = json_row(ROWS[1]["user"]) | {"age": "old"}
    response = client.post(f"/topics/{topics['user']}", json={"records": [{"value": bad}]})
    assert response.status_code == 422
    assert ["body", "records", 0, "value", "age"] in [e["loc"] for e in response.json()["detail"]]
    missing = {k: v for k, v in json_row(ROWS[1]["geo"]).items() if k != "country"}
    response = client.post("/send_data", params={"topic": topics["geo"]}, json=missing)
    assert response.status_code == 422 and ["body", "country"] in [e["loc"] for e in response.json()["detail"]]
    response = client.post(f"/topics/{topics['pin']}", json={"records": [{"key": 99, "value": json_row(ROWS[1]["pin"])}]})
    assert response.status_code == 422 and "differs from value.idx" in response.text


def test_send_data_without_a_topic_or_with_malformed_json_is_422(client, topics):
    response = client.post("/send_data", json=json_row(ROWS[1]["geo"]))
    assert response.status_code == 422 and ["query", "topic"] in [e["loc"] for e in response.json()["detail"]]
    response = client.post("/send_data", params={"topic": topics["geo"]}, content=b'{"idx": 1,',
                           headers={"content-type": "application/json"})
    assert response.status_code == 422 and response.json()["detail"][0]["type"] == "json_invalid"
    response = client.post("/send_data", params={"topic": topics["geo"]}, json=[json_row(ROWS[1]["geo"])])
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["body"]


def test_mismatched_idx_in_events_is_422(client):
    body = {"pin": json_row(ROWS[1]["pin"]), "geo": json_row(ROWS[2]["geo"]), "user": json_row(ROWS[1]["user"])}
    response = client.post("/events", json=body)
    assert response.status_code == 422 and "share one idx" in response.text


def test_too_many_records_or_too_large_a_body_is_413(client, topics):
    records = [{"value": json_row(ROWS[i]["pin"])} for i in range(11)]
    assert client.post(f"/topics/{topics['pin']}", json={"records": records}).status_code == 413
    huge = json_row(ROWS[0]["pin"]) | {"description": "x" * 70_000}
    assert client.post(f"/topics/{topics['pin']}", json={"records": [{"value": huge}]}).status_code == 413
    # The same body sent chunked (no Content-Length) is refused alike, not as a parse error.
    body = json.dumps({"records": [{"value": huge}]}).encode()
    chunked = client.post(f"/topics/{topics['pin']}", content=iter([body[i:i + 8192] for i in range(0, len(body), 8192)]),
                          headers={"Content-Type": "application/json"})
    assert chunked.status_code == 413, chunked.text
    small = json.dumps({"records": [{"value": json_row(ROWS[1]["pin"])}]}).encode()
    accepted = client.post(f"/topics/{topics['pin']}", content=iter([small[:100], small[100:]]),
                           headers={"Content-Type": "application/json"})
    assert accepted.status_code == 200, accepted.text


def test_health_and_stats(client, topics):
    client.post("/events", json={kind: json_row(ROWS[9][kind]) for kind in ("pin", "geo", "user")})
    health = client.get("/health")
    assert health.status_code == 200 and health.json()["kafka"] is True
    stats = client.get("/stats").json()
    assert stats["produced"] == {topic: 1 for topic in topics.values()}


def test_broker_down_gives_503_within_the_bound_and_no_false_acknowledgement(tmp_path):
    """A private broker is stopped mid-test: every 200 must be in Kafka after it comes back."""
    port = TEST_KAFKA_PORT + 200
    env = kafka_env(tmp_path / "kafka", port, PIN_TOPIC="down.pin", GEO_TOPIC="down.geo", USER_TOPIC="down.user")
    run_script("start_kafka.sh", env)
    bootstrap = f"localhost:{port}"
    topics = {"pin": "down.pin", "geo": "down.geo", "user": "down.user"}
    acknowledged = []
    try:
        app = create_app(api_settings(bootstrap, topics, delivery_timeout_s=3), transactional_id="t-down")
        with TestClient(app) as client:
            for i in range(5):
                r = client.post(f"/topics/{topics['pin']}", json={"records": [{"value": json_row(ROWS[i]["pin"])}]})
                assert r.status_code == 200
                acknowledged.append(r.json()["offsets"][0])
            run_script("stop_kafka.sh", env)
            for i in range(5, 8):
                started = time.monotonic()
                r = client.post(f"/topics/{topics['pin']}", json={"records": [{"value": json_row(ROWS[i]["pin"])}]})
                elapsed = time.monotonic() - started
                assert r.status_code == 503, r.text
                assert r.headers["Retry-After"]
                assert elapsed < 3 + 1.5
            r = client.post("/events", json={kind: json_row(ROWS[9][kind]) for kind in ("pin", "geo", "user")})
            assert r.status_code == 503
            assert client.get("/health").status_code == 503
        run_script("start_kafka.sh", env)
        present = {(r.partition, r.offset) for r in consume_all(bootstrap, [topics["pin"]])}
        assert {(a["partition"], a["offset"]) for a in acknowledged} <= present
    finally:
        run_script("stop_kafka.sh", env, check=False)


def poster_env(kafka_bootstrap, topics, pg_url, port):
    return {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "PIN_TOPIC": topics["pin"],
            "GEO_TOPIC": topics["geo"], "USER_TOPIC": topics["user"], "DATABASE_URL": pg_url,
            "POSTER_PORT": str(port), "TRANSACTIONAL_ID": f"t-{uuid.uuid4().hex}"}


def test_with_give_up_after_a_kafka_that_does_not_answer_fails_the_run_instead_of_hanging(topics, pg_url):
    """No broker at the address: nothing is ever acknowledged, and the emulator used to retry for ever (a
    run_pipeline.sh whose Kafka died hung in its poster stage). --give-up-after 4 ends it, saying why."""
    env = poster_env(f"127.0.0.1:{free_port()}", topics, pg_url, free_port()) | {"DELIVERY_TIMEOUT_S": "1.5"}
    started = time.monotonic()
    result = subprocess.run([sys.executable, str(PROJECT_ROOT / "data_poster.py"), "--count", "20", "--rate", "0",
                             "--give-up-after", "4"], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stderr[-3000:]
    assert "error: the emulator failed: no triplet acknowledged for 4 s (20 waiting" in result.stderr
    # the last answer as the poster gave it: its status and why Kafka did not take the records
    assert re.search(r"the last answer: HTTP 503: not produced: .+; retry later\)\. Is Kafka running", result.stderr), \
        result.stderr[-3000:]
    assert time.monotonic() - started < 60


def test_emulator_with_count_200_commits_exactly_200_triplets(kafka_bootstrap, topics, pg_url):
    env = poster_env(kafka_bootstrap, topics, pg_url, free_port())
    result = subprocess.run([sys.executable, str(PROJECT_ROOT / "data_poster.py"), "--count", "200", "--rate", "0",
                             "--random-seed", "1"], env=env, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    records = consume_all(kafka_bootstrap, list(topics.values()))
    assert Counter(r.topic for r in records) == {topic: 200 for topic in topics.values()}


def wait_until_produced(proc: subprocess.Popen, port: int, topic: str, count: int) -> int:
    """Wait until the poster on `port` has produced `count` records to `topic` (its /stats), so that a signal
    meets it while it emulates (a fixed sleep raced a slow start-up); returns the count it reported."""
    produced, deadline = 0, time.monotonic() + 90
    while produced < count:
        assert proc.poll() is None and time.monotonic() < deadline, f"produced {produced} records, not {count}"
        time.sleep(0.5)
        try:
            produced = httpx.get(f"http://127.0.0.1:{port}/stats", timeout=5).json()["produced"][topic]
        except httpx.HTTPError:
            continue  # not listening yet
    return produced


def test_read_committed_never_sees_a_partial_triplet_even_after_sigkill(kafka_bootstrap, topics, pg_url):
    port = free_port()
    env = poster_env(kafka_bootstrap, topics, pg_url, port)
    proc = subprocess.Popen([sys.executable, str(PROJECT_ROOT / "data_poster.py"), "--rate", "0"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    wait_until_produced(proc, port, topics["pin"], 30)
    time.sleep(1)  # posting at full speed, transactions open
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    records = consume_all(kafka_bootstrap, list(topics.values()))
    assert len(records) > 30
    per_key = defaultdict(Counter)
    for r in records:
        per_key[(r.partition, r.key)][r.topic] += 1
    for counts in per_key.values():
        assert counts[topics["pin"]] == counts[topics["geo"]] == counts[topics["user"]]


def test_sigterm_stops_emulating_finishes_in_flight_and_exits_0(kafka_bootstrap, topics, pg_url):
    port = free_port()
    env = poster_env(kafka_bootstrap, topics, pg_url, port)
    proc = subprocess.Popen([sys.executable, str(PROJECT_ROOT / "data_poster.py"), "--rate", "100"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    produced = wait_until_produced(proc, port, topics["pin"], 50)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    acked = int(stdout.strip().rsplit(":", 1)[1])
    assert acked >= produced
    # Every acknowledged triplet is in Kafka, and nothing in flight was dropped on the way out.
    records = consume_all(kafka_bootstrap, list(topics.values()))
    assert Counter(r.topic for r in records) == {topic: acked for topic in topics.values()}
    assert "did not stop" not in stderr  # the emulator stopped at once: no kill


def test_ctrl_c_before_count_is_reached_keeps_what_was_acknowledged_and_is_not_a_success(kafka_bootstrap, topics,
                                                                                         pg_url):
    """Ctrl-C reaches the poster and its emulator (one process group). Before, the run exited 0 as if --count had
    been reached, after logging that the emulator 'did not stop within 60 s' (two threads joined it)."""
    port = free_port()
    env = poster_env(kafka_bootstrap, topics, pg_url, port)
    proc = subprocess.Popen([sys.executable, str(PROJECT_ROOT / "data_poster.py"), "--rate", "100", "--count",
                             "100000"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    produced = wait_until_produced(proc, port, topics["pin"], 50)
    os.killpg(proc.pid, signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    acked = int(stdout.strip().rsplit(":", 1)[1])
    assert produced <= acked < 100000
    assert f"stopped by SIGINT before --count was reached: {acked} of 100000 triplets acknowledged" in stderr
    assert "did not stop" not in stderr
    records = consume_all(kafka_bootstrap, list(topics.values()))
    assert Counter(r.topic for r in records) == {topic: acked for topic in topics.values()}


def test_a_stopped_emulator_gives_up_retrying_after_its_grace_period(pg_url):
    """The API is unreachable, so every post is retried and the readers wait for room in the queue: a stop
    still ends the run within the grace period (it used to wait forever, and the poster's SIGTERM with it)."""
    import asyncio
    import multiprocessing as mp

    from pinpipe.source.emulator import Emulator, EmulatorConfig, EmulatorStatus

    config = EmulatorConfig(database_url=pg_url, api_url=f"http://127.0.0.1:{free_port()}", rate=200,
                            max_backoff_s=0.2, stop_grace_s=2.0)
    status = EmulatorStatus(mp.get_context("spawn"))

    async def main():
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(2.0, stop.set)
        started = time.monotonic()
        acked = await asyncio.wait_for(Emulator(config, status, stop).run(), timeout=30)
        return acked, time.monotonic() - started

    acked, seconds = asyncio.run(main())
    assert acked == 0
    assert seconds < 2.0 + config.stop_grace_s + 3, seconds


def test_at_a_set_rate_the_emulator_has_enough_requests_in_flight_for_a_slow_api(pg_url):
    """A request waits for its Kafka transaction, so the emulator needs rate x latency requests in flight to keep
    its rate. Against an API that answers each POST after 0.8 s, at 40 triplets/s that is 32; the emulator once
    ran rate/10 + 2 = 6 posters whatever the latency, and the rate fell to 6 / latency (27/s of 100 on the
    three-broker cluster). Counted, not timed: the most requests the API had open at once."""
    import asyncio
    import multiprocessing as mp

    from aiohttp import web

    from pinpipe.source.emulator import Emulator, EmulatorConfig, EmulatorStatus

    rate, latency_s, count = 40, 0.8, 120
    open_now, most_open, posted = 0, 0, []

    async def events(request: web.Request) -> web.Response:
        nonlocal open_now, most_open
        open_now += 1
        most_open = max(most_open, open_now)
        try:
            body = await request.json()
            await asyncio.sleep(latency_s)
            posted.append(body["pin"]["idx"])
            return web.json_response({"offsets": []})
        finally:
            open_now -= 1

    async def main():
        app = web.Application()
        app.router.add_post("/events", events)
        runner = web.AppRunner(app)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            config = EmulatorConfig(database_url=pg_url, api_url=f"http://127.0.0.1:{port}", rate=rate, count=count,
                                    random_seed=1)
            return await asyncio.wait_for(Emulator(config, EmulatorStatus(mp.get_context("spawn")),
                                                   asyncio.Event()).run(), timeout=60)
        finally:
            await runner.cleanup()

    acked = asyncio.run(main())
    assert acked == count == len(posted)
    assert most_open >= 0.75 * rate * latency_s, most_open


def test_a_port_in_use_is_named_with_the_setting_that_moves_the_poster(pg_url):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {**os.environ, "DATABASE_URL": pg_url, "POSTER_PORT": str(port)}
        result = subprocess.run([sys.executable, str(PROJECT_ROOT / "data_poster.py"), "--count", "1"], env=env,
                                capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert f"error: port {port} on 127.0.0.1 is already in use by another program; stop it or set POSTER_PORT" in \
        result.stderr, result.stderr
