"""A three-broker KRaft cluster from start_kafka.sh --brokers 3: nothing acknowledged is lost, and nothing is
written twice, when the broker leading most partitions is killed, when every broker is restarted in turn, or
when the extractor is killed again and again, while the emulator posts triplets."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

from pinpipe.common.config import PROJECT_ROOT, get_settings
from pinpipe.common.records import encode_value_field
from pinpipe.common.topics import fresh_topics
from pinpipe.extraction import batch_store, extractor
from pinpipe.extraction.group import GroupJoinTimeout
from tests.conftest import TEST_KAFKA_PORT, free_port, kafka_env, run_script
from tests.helpers import complete_idx_in_kafka, consume_all, make_producer, send, triplet_rows, written_idx_per_batch

pytestmark = pytest.mark.slow

PORT = TEST_KAFKA_PORT + 1000
DELIVERY_TIMEOUT_S = 8.0
# README: after a broker dies the poster answers 503 until the controller fences it (broker.session.timeout.ms,
# 9 s) and new leaders and transaction coordinators serve, plus up to two delivery bounds for the requests and
# the producer re-initialisation caught in between.
FENCE_S = 9.0
OUTAGE_BOUND_S = FENCE_S + 2 * DELIVERY_TIMEOUT_S + 5
MIN_ANSWERS = 20  # the probe's answers a fault test needs to mean something
RESUME_BOUND_S = 15.0  # README: a restarted extractor resumes within 15 s of the previous one's death


@dataclass
class Cluster:
    env: dict[str, str]
    bootstrap: str

    def node_pid(self, node: int) -> int:
        return int((Path(self.env["KAFKA_STATE_DIR"]) / f"node-{node}" / "kafka.pid").read_text())

    def start_node(self, node: int) -> None:
        run_script("start_kafka.sh", self.env | {"KAFKA_BROKERS": "3"}, args=["--node", str(node)])

    def stop_node(self, node: int) -> None:
        run_script("stop_kafka.sh", self.env, args=["--node", str(node)])

    def leaders(self, topic_names) -> Counter:
        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap)
        try:
            return Counter(p["leader_id"] for t in admin.describe_topics(list(topic_names)) for p in t["partitions"])
        finally:
            admin.close()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    env = kafka_env(tmp_path_factory.mktemp("cluster"), PORT, KAFKA_HEAP_OPTS="-Xms128m -Xmx512m")
    started = run_script("start_kafka.sh", env, args=["--brokers", "3"])
    bootstrap = ",".join(f"localhost:{PORT + 10 * n}" for n in range(3))
    assert f"Bootstrap servers: {bootstrap}" in started.stdout
    try:
        yield Cluster(env, bootstrap)
    finally:
        stopped = run_script("stop_kafka.sh", env, check=False)
        print(stopped.stdout, stopped.stderr)


@pytest.fixture
def cluster_topics(cluster) -> dict[str, str]:
    return fresh_topics(cluster.bootstrap, "cluster", replicas=3)


def pipeline_env(cluster, topics, batch_dir, **extra) -> dict[str, str]:
    return {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": cluster.bootstrap, "PIN_TOPIC": topics["pin"],
            "GEO_TOPIC": topics["geo"], "USER_TOPIC": topics["user"], "BATCH_DIR": str(batch_dir),
            "EXTRACTOR_GROUP_ID": f"g-{topics['pin']}", **extra}


class Probe(threading.Thread):
    """Posts its own triplets to /events (idx from 10,000,000 up) a few times a second, as a client would,
    and records each answer and how long it took."""

    def __init__(self, url: str, rate: float = 5.0):
        super().__init__(daemon=True)
        self.url, self.interval = url, 1.0 / rate
        self.answers: list[tuple[float, int, float, int]] = []  # (sent at, status, seconds, idx)
        self.halt = threading.Event()
        self.rows = list(triplet_rows(400, seed=77).values())

    def run(self) -> None:
        with httpx.Client(timeout=60) as client:
            for n, triplet in enumerate(self.rows):
                if self.halt.is_set():
                    return
                idx = 10_000_000 + n
                body = {kind: {k: encode_value_field(v) for k, v in row.items()} | {"idx": idx}
                        for kind, row in triplet.items()}
                sent = time.monotonic()
                try:
                    status = client.post(f"{self.url}/events", json=body).status_code
                except httpx.HTTPError:
                    status = 0
                self.answers.append((sent, status, time.monotonic() - sent, idx))
                time.sleep(self.interval)

    def served_again(self, since: float, at_least_s: float, at_most_s: float, streak: int = 10) -> None:
        """Waits at least `at_least_s` from `since`, then until the last `streak` answers, all sent after
        `since`, are 200s and there are MIN_ANSWERS in all (at most `at_most_s` from `since`)."""
        time.sleep(at_least_s)
        deadline = since + at_most_s
        while time.monotonic() < deadline:
            answers = list(self.answers)
            last = answers[-streak:]
            if (len(answers) >= MIN_ANSWERS and last[0][0] >= since
                    and all(status == 200 for _, status, _, _ in last)):
                return
            time.sleep(0.2)


def wait_healthy(url: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"poster at {url} not healthy within {timeout} s")


def run_under_load(cluster, topics, pg_url, tmp_path, fault, rate=30, min_settle_s=3.0, settle_s=20):
    """The emulator posts triplets at `rate`/s and a probe posts its own, while an extractor writes batches
    of 100; `fault()` runs once the load is flowing, the load goes on after it (at least `min_settle_s`, then
    until the probe is served again, at most `settle_s`), then the poster is stopped (SIGTERM: in-flight
    requests finish), then the extractor; a last extractor run writes what is left.
    Returns (triplets the emulator got acknowledged, probe)."""
    port = free_port()
    env = pipeline_env(cluster, topics, tmp_path / "batches", DATABASE_URL=pg_url, POSTER_PORT=str(port),
                       TRANSACTIONAL_ID=f"t-{uuid.uuid4().hex}", DELIVERY_TIMEOUT_S=str(DELIVERY_TIMEOUT_S))
    poster = subprocess.Popen([sys.executable, str(PROJECT_ROOT / "data_poster.py"), "--rate", str(rate),
                               "--random-seed", "3"], env=env, stdout=subprocess.PIPE,
                              stderr=open(tmp_path / "poster.log", "w"), text=True)
    # The extractor runs through the fault (a fail-over is no reason to stop) until the test stops it.
    command = [sys.executable, str(PROJECT_ROOT / "batch_extractor.py"), "--count", "100", "--batches", "0",
               "--no-progress"]
    extractor = subprocess.Popen([*command, "--timeout", "300"], env=env, stdout=subprocess.PIPE,
                                 stderr=open(tmp_path / "extractor.log", "w"), text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url)
        probe = Probe(url)
        probe.start()
        time.sleep(4)  # load flowing, a few batches written
        fault()
        probe.served_again(time.monotonic(), min_settle_s, settle_s)
        probe.halt.set()
        probe.join(timeout=120)
        poster.send_signal(signal.SIGTERM)
        stdout, _ = poster.communicate(timeout=120)
        assert poster.returncode == 0, (tmp_path / "poster.log").read_text()[-3000:]
        extractor.send_signal(signal.SIGTERM)  # interrupted: what it had not written yet is read again below
        extractor.communicate(timeout=120)
        assert extractor.returncode == 130, (tmp_path / "extractor.log").read_text()[-3000:]
        final = subprocess.run([*command, "--timeout", "6", "--allow-partial", "--until-end"], env=env, capture_output=True,
                               text=True, timeout=300)
        assert final.returncode == 0, final.stderr[-3000:]
    finally:
        for proc in (poster, extractor):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    acknowledged = int(re.search(r"triplets acknowledged by Kafka: (\d+)", stdout).group(1))
    return acknowledged, probe


def assert_exactly_once(cluster, topics, batch_dir: Path, acknowledged: int, probe: Probe) -> None:
    """Every acknowledged triplet is committed; the batches account for every committed record exactly once
    (contiguous offset ranges from the start of each partition to its last record, no overlaps: --verify)
    and hold every complete idx; the probe's own idx, each posted once, are written exactly once."""
    verify = subprocess.run([sys.executable, str(PROJECT_ROOT / "batch_extractor.py"), "--verify"],
                            env={**os.environ, "BATCH_DIR": str(batch_dir)}, capture_output=True, text=True, timeout=120)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    records = consume_all(cluster.bootstrap, list(topics.values()))  # to each partition's last stable offset
    in_log = Counter(r.topic for r in records)
    probe_acked = {idx for _, status, _, idx in probe.answers if status == 200}
    # Whole transactions only, and every acknowledged triplet among them (a 503'd one may be there too).
    assert len(set(in_log.values())) == 1, in_log
    assert in_log[topics["pin"]] >= acknowledged + len(probe_acked), (in_log, acknowledged, len(probe_acked))
    last = {}
    for r in records:
        last[(r.topic, r.partition)] = max(last.get((r.topic, r.partition), -1), r.offset)
    spans = {}
    for manifest in batch_store.read_manifests(batch_dir):
        for topic, parts in manifest.offsets.items():
            for partition, (first, end) in parts.items():
                low, high = spans.get((topic, int(partition)), (first, end))
                spans[(topic, int(partition))] = (min(low, first), max(high, end))
    assert {key: (0, offset) for key, offset in last.items()} == {key: (low, min(high, last.get(key, high)))
                                                                  for key, (low, high) in spans.items()}
    per_batch = written_idx_per_batch(batch_dir)
    assert all(len(idx) == len(set(idx)) for idx in per_batch)
    written = [idx for batch in per_batch for idx in batch]
    assert set(written) == complete_idx_in_kafka(cluster.bootstrap, topics)
    assert all(written.count(idx) == 1 for idx in probe_acked)


def assert_bounded_answers(probe: Probe, fault_window: tuple[float, float]) -> None:
    """Each probe answer is 200 or 503 within the poster's delivery bound; 503s only while a fault lasts."""
    origin = fault_window[0]
    print("probe answers (s from the fault, status, seconds):",
          [(round(sent - origin, 1), status, round(seconds, 1)) for sent, status, seconds, _ in probe.answers
           if status != 200 or abs(sent - origin) < 2])
    assert len(probe.answers) >= MIN_ANSWERS
    for sent, status, seconds, _ in probe.answers:
        assert status in (200, 503), status
        assert seconds <= DELIVERY_TIMEOUT_S + 3, seconds
        if status == 503:
            assert fault_window[0] - seconds <= sent <= fault_window[1], (sent, fault_window)
    assert probe.answers[-1][1] == 200  # served again by the end


def test_hard_bounce_of_the_busiest_leader_loses_nothing(cluster, cluster_topics, pg_url, tmp_path):
    victim = {}

    def kill_busiest_leader():
        node, _ = cluster.leaders(cluster_topics.values()).most_common(1)[0]
        victim["node"] = node
        victim["killed"] = time.monotonic()
        os.kill(cluster.node_pid(node), signal.SIGKILL)

    try:
        # Past the fencing before the probe may count as served again (requests on the dead leader's
        # partitions wait out a delivery bound first).
        acknowledged, probe = run_under_load(cluster, cluster_topics, pg_url, tmp_path, kill_busiest_leader,
                                             min_settle_s=FENCE_S + 2, settle_s=OUTAGE_BOUND_S + 5)
    finally:
        if "node" in victim:
            cluster.start_node(victim["node"])
    # New leaders are elected within seconds; a request caught by the kill is answered within the bound.
    assert_bounded_answers(probe, (victim["killed"], victim["killed"] + OUTAGE_BOUND_S))
    assert acknowledged > 50
    assert_exactly_once(cluster, cluster_topics, tmp_path / "batches", acknowledged, probe)


def test_rolling_restart_of_every_broker_loses_nothing(cluster, cluster_topics, pg_url, tmp_path):
    window = {}

    def restart_each_in_turn():
        window["start"] = time.monotonic()
        for node in (1, 2, 3):
            cluster.stop_node(node)
            cluster.start_node(node)
        window["end"] = time.monotonic()

    acknowledged, probe = run_under_load(cluster, cluster_topics, pg_url, tmp_path, restart_each_in_turn)
    assert_bounded_answers(probe, (window["start"], window["end"] + OUTAGE_BOUND_S))
    assert acknowledged > 50
    assert_exactly_once(cluster, cluster_topics, tmp_path / "batches", acknowledged, probe)


def test_extractor_crash_loop_resumes_within_the_bound(cluster, cluster_topics, tmp_path):
    rows = triplet_rows(2000, seed=12)
    producer = make_producer(cluster.bootstrap)
    futures = [send(producer, cluster_topics, kind, rows[idx][kind]) for idx in rows for kind in rows[idx]]
    producer.flush()
    producer.close()
    assert not [f for f in futures if f.failed()]
    # No instance id given: the default (a static member id from the batch directory's slot) must be prompt.
    env = pipeline_env(cluster, cluster_topics, tmp_path / "batches")
    command = [sys.executable, str(PROJECT_ROOT / "batch_extractor.py"), "--count", "50", "--batches", "0",
               "--timeout", "5", "--allow-partial", "--no-progress"]
    for n in range(6):  # a supervisor restarting a process that keeps dying, some of them mid-join
        proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5 + n * 0.4)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    died = time.monotonic()
    final = subprocess.Popen([*command, "-v", "--until-end"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    resumed, joined_as = None, ""
    for line in final.stderr:
        joined_as = joined_as or ("static member extractor-" in line and line)
        if resumed is None and " assigned " in line and "nothing" not in line:
            resumed = time.monotonic() - died
    final.wait(timeout=300)
    assert final.returncode == 0
    assert joined_as, "the extractor did not join as a static member by default"
    assert resumed is not None and resumed <= RESUME_BOUND_S, resumed
    batch_dir = tmp_path / "batches"
    assert batch_store.verify(batch_dir) == []
    written = [idx for batch in written_idx_per_batch(batch_dir) for idx in batch]
    assert sorted(written) == sorted(rows)  # every triplet exactly once across all the killed runs


def test_cluster_topics_internal_ones_included_are_replicated_three_ways(cluster):
    # One transaction and one group commit, so both internal topics exist.
    producer = KafkaProducer(bootstrap_servers=cluster.bootstrap, transactional_id=f"rf-{uuid.uuid4().hex}")
    producer.init_transactions()
    producer.begin_transaction()
    producer.send("pin_data.pin", key=b"1", value=b"{}")
    producer.commit_transaction()
    producer.close()
    consumer = KafkaConsumer("pin_data.pin", bootstrap_servers=cluster.bootstrap, group_id=f"rf-{uuid.uuid4().hex}",
                             auto_offset_reset="earliest", enable_auto_commit=False, consumer_timeout_ms=10_000)
    next(iter(consumer))
    consumer.commit()
    consumer.close()
    admin = KafkaAdminClient(bootstrap_servers=cluster.bootstrap)
    try:
        described = {t["name"]: t for t in admin.describe_topics(
            ["pin_data.pin", "pin_data.geo", "pin_data.user", "__consumer_offsets", "__transaction_state"])}
        configs = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, "pin_data.pin")])
    finally:
        admin.close()
    for name, topic in described.items():
        assert topic["partitions"] and all(len(p["replica_nodes"]) == 3 for p in topic["partitions"]), name
    entry = configs["topic"]["pin_data.pin"]["min.insync.replicas"]
    assert (entry.get("value") if isinstance(entry, dict) else entry) == "2", entry
    config = (Path(cluster.env["KAFKA_STATE_DIR"]) / "node-1" / "server.properties").read_text()
    assert "min.insync.replicas=2" in config and "unclean.leader.election.enable=false" in config
    assert "transaction.state.log.min.isr=2" in config and "offsets.topic.replication.factor=3" in config


def test_a_cluster_with_nodes_stopped_is_said_and_refused_without_a_majority_by_the_pipeline_and_extractor(
        cluster, cluster_topics, pg_url, tmp_path, monkeypatch):
    """run_pipeline.sh leaves a running cluster as it is; with a node stopped it says which and goes on, and with
    a majority stopped (no controller quorum, no writes) it stops at once, saying how to start them, where the
    poster used to wait a minute for acknowledgements and then ask whether Kafka was running. The extractor's join
    timeout names the lost majority too, and stop_kafka.sh stops the last node in seconds (no quorum can approve
    its controlled shutdown: it used to wait 60 s, then kill it with a warning)."""
    env = pipeline_env(cluster, cluster_topics, tmp_path / "batches", DATABASE_URL=pg_url,
                       POSTER_PORT=str(free_port()), PIPELINE_PRESTART_SPARK="0",
                       **{name: cluster.env[name] for name in ("KAFKA_PORT", "KAFKA_CONTROLLER_PORT", "KAFKA_STATE_DIR")})
    command = [str(PROJECT_ROOT / "run_pipeline.sh"), "--count", "5"]
    state = cluster.env["KAFKA_STATE_DIR"]
    try:
        cluster.stop_node(2)
        run = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        seen = []
        for line in run.stdout:  # the run goes on past the Kafka stage: stopped there
            seen.append(line)
            if line.startswith("==> kafka"):
                run.terminate()
                break
        rest, _ = run.communicate(timeout=120)
        output = "".join(seen) + rest
        assert run.returncode == 143, output
        assert (f"warning: 2 of the 3 nodes of the Kafka cluster in {state} run (stopped: node 2); the run goes on "
                "with them") in output, output
        assert "Start it again: ./start_kafka.sh --brokers 3 (it starts only the stopped nodes)" in output
        assert "==> kafka: already running; it will be left running" in output

        cluster.stop_node(3)
        started = time.monotonic()
        refused = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert (f"error: only 1 of the 3 nodes of the Kafka cluster in {state} run (stopped: node 2, node 3); without "
                "2 it has no controller quorum and takes no writes. Start them again: ./start_kafka.sh --brokers 3")\
            in refused.stderr, refused.stderr
        assert "==> poster" not in refused.stdout and time.monotonic() - started < 30

        # the extractor run by hand against it: its join timeout says the cluster lacks a majority
        monkeypatch.setattr(extractor, "JOIN_TIMEOUT_S", 5.0)
        settings = get_settings(kafka_bootstrap_servers=cluster.bootstrap, pin_topic=cluster_topics["pin"],
                                geo_topic=cluster_topics["geo"], user_topic=cluster_topics["user"],
                                batch_dir=tmp_path / "by-hand")
        with pytest.raises(GroupJoinTimeout) as timeout:
            extractor.Extractor(settings, group_id=f"g-{uuid.uuid4().hex}", timeout_s=1, count=5).run()
        assert timeout.value.text.startswith(f"only 1 of the 3 Kafka servers listed answer (localhost:{PORT})"), \
            timeout.value.text

        # the last node stopped: no quorum approves its controlled shutdown, so it is killed after 5 s, not after
        # KAFKA_STOP_TIMEOUT (60 s) with a warning
        started = time.monotonic()
        last = run_script("stop_kafka.sh", cluster.env, args=["--node", "1"])
        assert time.monotonic() - started < 20 and "warning" not in last.stderr, last.stdout + last.stderr
        assert ("The cluster has no controller quorum (1 of its 3 nodes running; stopped: node 2, node 3): no "
                "controlled shutdown can be approved, so each node is killed after 5s") in last.stdout, last.stdout
        assert "Kafka node 1 stopped" in last.stdout
    finally:
        restarted = run_script("start_kafka.sh", cluster.env | {"KAFKA_BROKERS": "3"})
    # the stopped nodes started again, and the cluster serves: a record in and out of a replicated topic
    assert sorted(re.findall(r"Starting Kafka \S+ node (\d)", restarted.stdout)) == ["1", "2", "3"], restarted.stdout
    producer = make_producer(cluster.bootstrap)
    send(producer, cluster_topics, "pin", next(iter(triplet_rows(1, seed=3).values()))["pin"]).get(timeout=30)
    producer.close()
    assert len(consume_all(cluster.bootstrap, [cluster_topics["pin"]])) == 1
    state = subprocess.run(["bash", "-c", "source scripts/kafka_common.sh && cluster_state"], cwd=PROJECT_ROOT,
                           env=cluster.env, capture_output=True, text=True, check=True)
    assert state.stdout.split() == ["3", "3"], state.stdout
