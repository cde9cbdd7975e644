"""The extractor against the real broker: alignment, carry-over, poison records, exactly-once under SIGKILL."""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from kafka import KafkaConsumer
from kafka.structs import TopicPartition

from pinpipe.common.config import PROJECT_ROOT, get_settings
from pinpipe.extraction import batch_store
from pinpipe.extraction.extractor import EXIT_NOT_ENOUGH_DATA, Extractor
from tests.helpers import (
    complete_idx_in_kafka,
    make_producer,
    records_in_kafka,
    send,
    send_all,
    triplet_rows,
    written_idx_per_batch,
)


def settings_for(kafka_bootstrap, topics, batch_dir):
    return get_settings(kafka_bootstrap_servers=kafka_bootstrap, pin_topic=topics["pin"], geo_topic=topics["geo"],
                        user_topic=topics["user"], batch_dir=batch_dir)


def run_extractor(settings, group_id_override=None, **kwargs):
    kwargs.setdefault("timeout_s", 4)
    return Extractor(settings, group_id=group_id_override or f"g-{settings.pin_topic}", **kwargs).run()


def test_batches_align_dedupe_carry_late_siblings_and_reject_poison(kafka_bootstrap, topics, tmp_path):
    rows = triplet_rows(300, seed=5)
    producer = make_producer(kafka_bootstrap)
    late = set(range(0, 300, 10))  # these idx get their user record only after the first batches
    for idx, kinds in rows.items():
        for kind in ("pin", "geo", "user"):
            if not (kind == "user" and idx in late):
                send(producer, topics, kind, kinds[kind])
    for idx in (1, 2, 3):  # duplicates: the same idx posted again
        for kind in ("pin", "geo", "user"):
            send(producer, topics, kind, rows[idx][kind])
    producer.send(topics["pin"], key=b"5", value=b"{broken json")
    producer.send(topics["geo"], key=b"6", value=json.dumps({"idx": "6"}).encode())
    producer.send(topics["user"], key=b"7", value=b"\xff\xfe\x00")
    producer.flush()

    settings = settings_for(kafka_bootstrap, topics, tmp_path)
    # One batch holds everything, so every re-sent record meets its first copy in the same batch.
    first = run_extractor(settings, count=400, batches=0, allow_partial=True)
    assert [m.rows for m in first.batches] == [270]
    assert first.exit_code == 0

    for idx in sorted(late):
        send(producer, topics, "user", rows[idx]["user"])
    producer.flush()
    second = run_extractor(settings, count=30, batches=1)
    assert [m.rows for m in second.batches] == [30]

    per_batch = written_idx_per_batch(tmp_path)
    assert all(len(idx) == len(set(idx)) for idx in per_batch)
    written = [i for batch in per_batch for i in batch]
    assert sorted(written) == list(range(300))  # every complete idx, each once (duplicates only in-batch)
    assert set(per_batch[-1]) == late  # late siblings in the later batch
    manifests = batch_store.read_manifests(tmp_path)
    assert sum(m.duplicates for m in manifests) == 9
    assert sum(m.rejected for m in manifests) == 3
    rejected = [json.loads(line) for line in (tmp_path / "rejected.jsonl").read_text().splitlines()]
    assert sorted(r["topic"] for r in rejected) == sorted(topics.values())
    assert {"value_base64"} <= set().union(*rejected)
    assert batch_store.verify(tmp_path) == []
    # The top-level files are the newest batch.
    assert (tmp_path / "pin_data.csv").read_bytes() == (batch_store.batch_paths(tmp_path)[-1] / "pin_data.csv").read_bytes()

    drained = run_extractor(settings, count=10, batches=1, timeout_s=5)
    assert drained.exit_code == EXIT_NOT_ENOUGH_DATA and drained.rows == 0


def test_not_enough_data_exits_2_and_allow_partial_writes_what_there_is(kafka_bootstrap, topics, tmp_path):
    rows = triplet_rows(20, seed=1)
    send_all(make_producer(kafka_bootstrap), topics, rows)
    settings = settings_for(kafka_bootstrap, topics, tmp_path)
    short = run_extractor(settings, count=50, timeout_s=5)
    assert short.exit_code == EXIT_NOT_ENOUGH_DATA and short.batches == [] and short.complete_unwritten == 20
    cli = subprocess.run([sys.executable, str(PROJECT_ROOT / "batch_extractor.py"), "--count", "50", "--until-end",
                          "--no-progress", "--group-id", f"g-{topics['pin']}"], capture_output=True, text=True,
                         env={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "PIN_TOPIC": topics["pin"],
                              "GEO_TOPIC": topics["geo"], "USER_TOPIC": topics["user"], "BATCH_DIR": str(tmp_path)})
    assert cli.returncode == 2 and "only 20 of 50 triplets are complete" in cli.stderr and "--allow-partial" in cli.stderr
    partial = run_extractor(settings, count=50, timeout_s=5, allow_partial=True, until_end=True)
    assert partial.exit_code == 0 and [m.rows for m in partial.batches] == [20]


def test_a_batch_the_disk_cannot_hold_is_said_and_its_records_are_read_again(kafka_bootstrap, topics, tmp_path,
                                                                            monkeypatch):
    """The disk fills while a batch is written: the run stops with BatchWriteError, nothing is committed or
    left half-written, and the next run writes every complete triplet."""
    rows = triplet_rows(30, seed=8)
    send_all(make_producer(kafka_bootstrap), topics, rows)
    settings = settings_for(kafka_bootstrap, topics, tmp_path)
    write_csv = batch_store.write_csv

    def disk_full(path, kind, triplets):
        write_csv(path, kind, triplets)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(batch_store, "write_csv", disk_full)
    with pytest.raises(batch_store.BatchWriteError, match="No space left on device. Nothing is lost"):
        run_extractor(settings, count=30, until_end=True)
    assert not (tmp_path / "batches").exists() or not any((tmp_path / "batches").iterdir())
    monkeypatch.setattr(batch_store, "write_csv", write_csv)
    again = run_extractor(settings, count=30, until_end=True)
    assert again.exit_code == 0 and [sorted(idx) for idx in written_idx_per_batch(tmp_path)] == [sorted(rows)]


def test_cli_help_and_usage_errors():
    def run(*args):
        return subprocess.run([sys.executable, str(PROJECT_ROOT / "batch_extractor.py"), *args],
                              capture_output=True, text=True)
    assert "--count" in run("--help").stdout
    bad = run("--count", "0")
    assert bad.returncode == 2 and "--count must be a positive integer" in bad.stderr
    a_file = run("--count", "5", "--batch-dir", str(PROJECT_ROOT / "README.md"))
    assert a_file.returncode == 1 and a_file.stderr == (f"error: the batch directory {PROJECT_ROOT / 'README.md'} "
                                                        "is a file; give a folder (--batch-dir or BATCH_DIR)\n")


def test_the_backlog_command_says_when_kafka_is_not_there_and_refuses_a_bad_limit():
    from tests.conftest import free_port

    def run(*args):
        env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}"}
        return subprocess.run([sys.executable, "-m", "pinpipe.extraction.backlog", *args], capture_output=True,
                              text=True, env=env, cwd=PROJECT_ROOT, timeout=60)
    down = run()
    assert down.returncode == 1 and "error: cannot reach Kafka at 127.0.0.1:" in down.stderr and down.stdout == ""
    bad = run("--limit", "0")
    assert bad.returncode == 2 and "--limit must be a positive integer" in bad.stderr


@pytest.mark.slow
def test_sigkill_at_random_moments_neither_loses_nor_duplicates(kafka_bootstrap, topics, tmp_path):
    """Kill the extractor with SIGKILL 12 times while data flows; the manifests must still add up."""
    rng = random.Random(1234)
    rows = triplet_rows(3000, seed=9)
    incomplete = set(rng.sample(range(3000), 60))  # never get their geo record
    produced_complete = set(rows) - incomplete
    stop = threading.Event()
    futures = []

    def produce():
        producer = make_producer(kafka_bootstrap)
        order = list(rows)
        rng_local = random.Random(7)
        for n, idx in enumerate(order):
            for kind in ("pin", "geo", "user"):
                if not (kind == "geo" and idx in incomplete):
                    futures.append(send(producer, topics, kind, rows[idx][kind]))
            if rng_local.random() < 0.05:  # a resend, as the emulator samples with replacement
                again = order[rng_local.randrange(n + 1)]
                for kind in ("pin", "geo", "user"):
                    if not (kind == "geo" and again in incomplete):
                        futures.append(send(producer, topics, kind, rows[again][kind]))
            if n % 100 == 99:
                producer.flush()
                time.sleep(0.15)
        producer.flush()
        producer.close()
        stop.set()

    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "PIN_TOPIC": topics["pin"],
           "GEO_TOPIC": topics["geo"], "USER_TOPIC": topics["user"], "BATCH_DIR": str(tmp_path),
           "EXTRACTOR_GROUP_ID": f"crash-{topics['pin']}"}  # static members by default (group.py)
    command = [sys.executable, str(PROJECT_ROOT / "batch_extractor.py"), "--count", "97", "--batches", "0",
               "--timeout", "4", "--no-progress"]
    producer_thread = threading.Thread(target=produce)
    producer_thread.start()
    log_dir = tmp_path.parent / f"{tmp_path.name}-logs"  # each run's log, kept for a failing run's analysis
    log_dir.mkdir()
    kills = 0
    while kills < 12:
        with open(log_dir / f"run-{kills:02d}-{time.time():.0f}.log", "w") as log:
            proc = subprocess.Popen(command, env=env, stdout=log, stderr=log)
        time.sleep(rng.uniform(1.0, 4.0))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
    producer_thread.join()
    lost = [f"{type(f.exception).__name__}: {f.exception}" for f in futures if f.failed()]
    final = subprocess.run([*command[:-3], "--timeout", "8", "--no-progress", "--allow-partial", "--until-end"], env=env,
                           capture_output=True, text=True, timeout=300)
    assert final.returncode == 0, final.stderr

    # The test's own producer must have delivered everything, or the comparison below means nothing.
    assert lost == [], lost[:5]
    assert complete_idx_in_kafka(kafka_bootstrap, topics) == produced_complete

    assert batch_store.verify(tmp_path) == []
    per_batch = written_idx_per_batch(tmp_path)
    assert len(per_batch) >= 5
    assert all(len(idx) == len(set(idx)) for idx in per_batch)
    written = set().union(*map(set, per_batch))
    if written != produced_complete and os.environ.get("CRASH_DEBUG_DIR"):
        import shutil
        debug = Path(os.environ["CRASH_DEBUG_DIR"])
        shutil.copytree(tmp_path, debug / "batch_dir", dirs_exist_ok=True)
        shutil.copytree(log_dir, debug / "logs", dirs_exist_ok=True)
        (debug / "logs" / "final.log").write_text(final.stderr)
        missing = produced_complete - written
        in_log = records_in_kafka(kafka_bootstrap, topics)
        (debug / "missing.json").write_text(json.dumps({"topics": topics, "missing": {
            idx: in_log.get(idx) for idx in sorted(missing)}}, indent=1))
    assert written == produced_complete, final.stderr[-3000:]
    # Together the batches account for every offset of every partition, from the start to the end of its log.
    spans = {}
    for manifest in batch_store.read_manifests(tmp_path):
        for topic, parts in manifest.offsets.items():
            for partition, (first, last) in parts.items():
                low, high = spans.get((topic, int(partition)), (first, last))
                spans[(topic, int(partition))] = (min(low, first), max(high, last))
    consumer = KafkaConsumer(bootstrap_servers=kafka_bootstrap)
    ends = consumer.end_offsets([TopicPartition(t, p) for t in topics.values() for p in range(3)])
    consumer.close()
    assert {(tp.topic, tp.partition): (0, end - 1) for tp, end in ends.items()} == spans


def test_sigterm_leaves_no_partial_files_and_only_written_batches_committed(kafka_bootstrap, topics, tmp_path):
    rows = triplet_rows(2000, seed=4)
    send_all(make_producer(kafka_bootstrap), topics, rows)
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "PIN_TOPIC": topics["pin"],
           "GEO_TOPIC": topics["geo"], "USER_TOPIC": topics["user"], "BATCH_DIR": str(tmp_path),
           "EXTRACTOR_GROUP_ID": f"term-{topics['pin']}"}
    # Batches larger than the data: it collects, never completes one, and is stopped mid-way.
    proc = subprocess.Popen([sys.executable, str(PROJECT_ROOT / "batch_extractor.py"), "--count", "5000",
                             "--timeout", "60", "--no-progress"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    time.sleep(6)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr
    assert not (tmp_path / "batches").exists() or list((tmp_path / "batches").iterdir()) == []
    # Nothing was committed, so a later run gets every triplet.
    again = run_extractor(settings_for(kafka_bootstrap, topics, tmp_path), count=2000, group_id_override=env["EXTRACTOR_GROUP_ID"])
    assert [m.rows for m in again.batches] == [2000]


@pytest.mark.slow
def test_two_extractors_in_one_group_share_the_work_without_overlap(kafka_bootstrap, topics, tmp_path):
    rows = triplet_rows(3000, seed=8)

    def produce():  # data keeps flowing while the group changes
        producer = make_producer(kafka_bootstrap)
        chunk = list(rows.items())
        for start in range(0, len(chunk), 100):
            send_all(producer, topics, dict(chunk[start:start + 100]))
            time.sleep(0.2)

    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "PIN_TOPIC": topics["pin"],
           "GEO_TOPIC": topics["geo"], "USER_TOPIC": topics["user"], "BATCH_DIR": str(tmp_path),
           "EXTRACTOR_GROUP_ID": f"pair-{topics['pin']}"}
    feeder = threading.Thread(target=produce)
    feeder.start()
    command = [sys.executable, str(PROJECT_ROOT / "batch_extractor.py"), "--count", "150", "--batches", "0",
               "--timeout", "6", "--allow-partial", "--no-progress"]
    first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.5)  # the second joins while the first is already working: a rebalance mid-stream
    second = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    feeder.join()
    logs = []
    for proc in (first, second):
        _, stderr = proc.communicate(timeout=300)
        logs.append(stderr)
        assert proc.returncode == 0, stderr
    assert batch_store.verify(tmp_path) == []
    per_batch = written_idx_per_batch(tmp_path)
    written = [i for batch in per_batch for i in batch]
    assert sorted(written) == list(range(3000))  # every triplet exactly once across both processes
    writers = {json.loads((p / "manifest.json").read_text())["batch_id"].rsplit("-", 1)[1]
               for p in batch_store.batch_paths(tmp_path)}
    assert len(writers) == 2, "\n----\n".join(logs)




def test_an_extractor_started_before_its_topics_exist_waits_for_them(kafka_bootstrap, tmp_path):
    import uuid

    from pinpipe.common.topics import create_topics

    suffix = uuid.uuid4().hex[:8]
    names = {kind: f"late_{suffix}.{kind}" for kind in ("pin", "geo", "user")}
    settings = settings_for(kafka_bootstrap, names, tmp_path)
    result = {}
    runner = threading.Thread(target=lambda: result.update(
        run=run_extractor(settings, count=40, batches=1, timeout_s=30)))
    runner.start()
    time.sleep(3)  # joined, with nothing to assign
    assert runner.is_alive()
    create_topics(kafka_bootstrap, names)
    send_all(make_producer(kafka_bootstrap), names, triplet_rows(40, seed=2))
    runner.join(timeout=90)
    assert not runner.is_alive()
    assert [m.rows for m in result["run"].batches] == [40]
    assert sorted(i for batch in written_idx_per_batch(tmp_path) for i in batch) == list(range(40))


def test_a_leader_that_assigned_nothing_from_stale_metadata_is_asked_to_rejoin(kafka_bootstrap, topics, tmp_path,
                                                                              monkeypatch):
    """Fault injection: the group leader's first assignment sees no partitions (its metadata as after a rolling
    restart, dpkp/kafka-python#2377). Nothing in kafka-python rejoins then; the extractor does."""
    from kafka.coordinator.assignors.range import RangePartitionAssignor

    original, calls = RangePartitionAssignor.assign.__func__, []

    class StaleMetadata:
        def partitions_for_topic(self, topic):
            return None

    def stale_first_time(cls, cluster, members):
        calls.append(time.monotonic())
        return original(cls, StaleMetadata() if len(calls) == 1 else cluster, members)

    monkeypatch.setattr(RangePartitionAssignor, "assign", classmethod(stale_first_time))
    send_all(make_producer(kafka_bootstrap), topics, triplet_rows(40, seed=3))
    run = run_extractor(settings_for(kafka_bootstrap, topics, tmp_path), count=40, batches=1, timeout_s=20)
    assert len(calls) >= 2  # assigned nothing, then again after the rejoin
    assert [m.rows for m in run.batches] == [40]
    assert sorted(i for batch in written_idx_per_batch(tmp_path) for i in batch) == list(range(40))


def test_extractors_are_static_members_that_leave_the_group_on_a_clean_exit(kafka_bootstrap, topics, tmp_path):
    from kafka.admin import KafkaAdminClient
    from kafka.errors import KafkaError

    from pinpipe.extraction.group import MemberSlot

    send_all(make_producer(kafka_bootstrap), topics, triplet_rows(40, seed=8))
    group = f"static-{topics['pin']}"
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    seen, result = [], {}
    runner = threading.Thread(target=lambda: result.update(run=run_extractor(
        settings_for(kafka_bootstrap, topics, tmp_path), group_id_override=group, count=40, batches=0, timeout_s=5)))
    try:
        runner.start()
        deadline = time.monotonic() + 30
        while runner.is_alive() and not seen and time.monotonic() < deadline:
            try:
                seen = [m["group_instance_id"] for m in admin.describe_groups([group])[group]["members"]]
            except KafkaError:  # the group's coordinator is not ready yet (a fresh broker's offsets topic)
                pass
            time.sleep(0.2)
        runner.join(timeout=60)
        assert not runner.is_alive()
        after = admin.describe_groups([group])[group]
    finally:
        admin.close()
    expected = MemberSlot(group, tmp_path)  # the slot the extractor held, free again now that it has stopped
    expected.release()
    assert seen == [expected.instance_id]
    # A static member is kept for its session (45 s) unless it leaves: a clean exit hands its partitions back.
    assert after["members"] == [] and after["group_state"] == "Empty", after
    assert [m.rows for m in result["run"].batches] == [40]


def test_until_end_stops_at_the_end_of_the_topics_instead_of_waiting_for_the_timeout(kafka_bootstrap, topics,
                                                                                      tmp_path):
    rows = triplet_rows(40, seed=9)
    producer = make_producer(kafka_bootstrap)
    send_all(producer, topics, rows)
    for idx in range(1000, 1005):  # pins whose geo and user never come: pending, not written
        send(producer, topics, "pin", {**rows[0]["pin"], "idx": idx})
    producer.flush()
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "PIN_TOPIC": topics["pin"],
           "GEO_TOPIC": topics["geo"], "USER_TOPIC": topics["user"], "BATCH_DIR": str(tmp_path),
           "EXTRACTOR_GROUP_ID": f"end-{topics['pin']}"}
    command = [sys.executable, str(PROJECT_ROOT / "batch_extractor.py"), "--count", "1000", "--timeout", "600",
               "--until-end", "--no-progress"]
    # Not enough for a batch: it says so at the end of the topics (a 600 s idle wait would time this run out).
    short = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert short.returncode == EXIT_NOT_ENOUGH_DATA, short.stderr
    assert "at the end of the topics: only 40 of 1000 triplets are complete" in short.stderr
    assert not (tmp_path / "batches").exists()
    run = subprocess.run([*command, "--allow-partial"], env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "pending: 5" in run.stdout
    assert sorted(i for batch in written_idx_per_batch(tmp_path) for i in batch) == list(range(40))


def test_backlog_counts_the_records_the_extractor_would_take_next(kafka_bootstrap, topics, tmp_path):
    from kafka import KafkaProducer

    from pinpipe.extraction.backlog import measure

    settings = settings_for(kafka_bootstrap, topics, tmp_path / "batches")
    group = f"g-{settings.pin_topic}"
    rows = triplet_rows(17, seed=3)
    idx = list(rows)
    # Written as the poster writes: in transactions, whose markers take offsets; an aborted one is not there.
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, transactional_id=f"t-{topics['pin']}")
    producer.init_transactions()
    for chosen, commit in ((idx[:10], True), (idx[10:15], False)):
        producer.begin_transaction()
        send_all(producer, topics, {i: rows[i] for i in chosen})
        producer.commit_transaction() if commit else producer.abort_transaction()
    producer.close()
    assert measure(settings, group).records == {topics["pin"]: 10, topics["geo"]: 10, topics["user"]: 10}

    # Two pins without siblings: the batch takes the ten triplets and carries the two.
    plain = make_producer(kafka_bootstrap)
    for i in idx[15:]:
        send(plain, topics, "pin", rows[i]["pin"])
    plain.flush()
    result = run_extractor(settings, group, count=100, until_end=True, allow_partial=True)
    assert [m.rows for m in result.batches] == [10] and result.pending == 2
    backlog = measure(settings, group)
    assert backlog.records == {topics["pin"]: 2, topics["geo"]: 0, topics["user"]: 0} and backlog.triplets == 0

    # Another group with its own batches owes everything committed; --limit stops the count early.
    other = tmp_path / "other"
    assert measure(settings, "another", other).records == {topics["pin"]: 12, topics["geo"]: 10, topics["user"]: 10}
    limited = measure(settings, "another", other, limit=3)
    assert not limited.counted_all and min(limited.records.values()) >= 3
    # A topic that does not exist yet holds nothing.
    missing = get_settings(kafka_bootstrap_servers=kafka_bootstrap, pin_topic="no_such_topic_" + topics["pin"],
                           geo_topic=topics["geo"], user_topic=topics["user"], batch_dir=other)
    assert measure(missing, "another").records["no_such_topic_" + topics["pin"]] == 0


def foreign_manifest(batch_dir: Path, topics: dict[str, str], cursor: int, topic_ids: dict[str, str]) -> None:
    """A batch as an extractor left it after reading another log of these names (a single broker's, say, when
    these topics are the cluster's): cursor `cursor` on every partition, nothing carried."""
    from pinpipe.extraction.batch_store import Manifest

    manifest = Manifest(batch_id="20200101T000000000000Z-elsewhere-1", created="2020-01-01T00:00:00+00:00", rows=0,
                        duplicates=0, rejected=0, pending=0,
                        offsets={t: {str(p): [0, cursor - 1] for p in range(3)} for t in topics.values()},
                        cursors={t: {str(p): cursor for p in range(3)} for t in topics.values()}, carried={},
                        group_id="g", topic_ids=topic_ids)
    batch_store.write_batch(batch_dir, manifest, [], [])


def commit_beyond_the_end(bootstrap: str, group: str, partitions: list, offset: int, timeout_s: float = 60) -> None:
    """Commit `offset` for `group` on every partition, and wait until the group's coordinator shows it: on a new
    broker the coordinator is not there at first, or moves while the offsets topic loads (commits then made
    were seen to vanish)."""
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError
    from kafka.structs import OffsetAndMetadata

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            try:
                admin.alter_group_offsets(group, {tp: OffsetAndMetadata(offset, "", None) for tp in partitions})
                shown = admin.list_group_offsets({group: partitions})[group]
                if all(shown[tp].offset == offset for tp in partitions):
                    return
            except KafkaError as exc:
                if not exc.retriable:
                    raise
            if time.monotonic() > deadline:
                raise TimeoutError(f"group {group}'s offsets not committed within {timeout_s:g} s")
            time.sleep(0.5)
    finally:
        admin.close()


def test_batches_of_another_log_by_the_same_name_do_not_make_the_extractor_skip_records(kafka_bootstrap, topics,
                                                                                         tmp_path):
    """Switching from the single broker to the cluster (or recreating the topics) under the same BATCH_DIR: the old
    batches' cursors belong to other logs. Followed, they made the extractor skip every record below them, unseen
    and never written. Older manifests (no topic ids) are caught by a cursor beyond the log's end; newer ones by
    Kafka's topic id, even where the new log has grown past the old cursor; a group's committed offsets beyond
    the log's end likewise."""
    from kafka import KafkaAdminClient

    from pinpipe.extraction.backlog import measure

    producer = make_producer(kafka_bootstrap)
    rows = triplet_rows(30, seed=8)
    send_all(producer, topics, rows)
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    ids = {t["name"]: str(t["topic_id"]) for t in admin.describe_topics(list(topics.values()))}
    admin.close()

    legacy, recreated, committed = tmp_path / "legacy", tmp_path / "recreated", tmp_path / "committed"
    foreign_manifest(legacy, topics, cursor=100_000, topic_ids={})  # beyond the end of these logs
    foreign_manifest(recreated, topics, cursor=3, topic_ids={t: "8f2b3c6e-0000-4000-8000-000000000000"
                                                             for t in topics.values()})  # within them
    # No batches, but the group's offsets committed on another log: beyond the end of these.
    commit_beyond_the_end(kafka_bootstrap, f"g-committed-{topics['pin']}",
                          [TopicPartition(t, p) for t in topics.values() for p in range(3)], 100_000)
    for batch_dir in (legacy, recreated, committed):
        settings = settings_for(kafka_bootstrap, topics, batch_dir)
        group = f"g-{batch_dir.name}-{topics['pin']}"
        assert measure(settings, group).triplets == 30
        result = run_extractor(settings, group, count=100, until_end=True, allow_partial=True)
        assert [m.rows for m in result.batches] == [30], batch_dir.name
        [written] = [idx for idx in written_idx_per_batch(batch_dir) if idx]
        assert sorted(written) == sorted(rows)
        newest = batch_store.read_manifests(batch_dir)[-1]
        assert newest.topic_ids == ids  # as the admin API names them
        assert batch_store.verify(batch_dir) == []  # two logs' ranges: neither overlapping nor a gap
        # The new batch, of this log, is the one the next run resumes from: nothing is read twice.
        assert measure(settings, group).records == dict.fromkeys(topics.values(), 0)


def partition_of(idx: int, partitions: int = 3) -> int:
    """The partition kafka-python's default partitioner gives an idx's records (murmur2 of the key, as Java's)."""
    from kafka.partitioner.default import murmur2

    from pinpipe.common.records import encode_key

    return (murmur2(encode_key(idx)) & 0x7FFFFFFF) % partitions


def test_records_deleted_from_kafka_are_said_and_not_pending_for_ever(kafka_bootstrap, topics, tmp_path, caplog):
    """Kafka deletes old records (retention: 7 days by default). Carried pins whose siblings never came, once
    deleted, are no longer listed as pending, nor the carried geo of a deleted pin (they stayed pending in every batch and held the group's committed
    offset below the log's start, where no new pin came after them); records deleted before the group read them
    are named, not skipped silently; the backlog count reads from the log's start (it counted nothing there)."""
    from kafka import KafkaAdminClient

    from pinpipe.extraction.backlog import measure

    settings = settings_for(kafka_bootstrap, topics, tmp_path)
    group = f"g-{settings.pin_topic}"
    rows = triplet_rows(60, seed=11)
    by_partition = {p: [i for i in rows if partition_of(i) == p] for p in range(3)}
    ghosts, later = by_partition[0][:2], by_partition[1][:4] + by_partition[2][:4]
    half = by_partition[0][12]  # its pin and geo; its user never comes
    producer = make_producer(kafka_bootstrap)
    send_all(producer, topics, {i: rows[i] for i in by_partition[0][2:12]})
    for i in ghosts:  # two pins whose siblings never come, in partition 0
        send(producer, topics, "pin", rows[i]["pin"])
    for kind in ("pin", "geo"):
        send(producer, topics, kind, rows[half][kind])
    producer.flush()
    first = run_extractor(settings, group, count=100, until_end=True, allow_partial=True)
    assert [m.rows for m in first.batches] == [10] and first.pending == 3
    assert list(batch_store.read_manifests(tmp_path)[-1].carried[topics["geo"]]) == ["0"]  # half's geo

    consumer = KafkaConsumer(bootstrap_servers=kafka_bootstrap)
    pins = [TopicPartition(topics["pin"], p) for p in range(3)]
    users = [TopicPartition(topics["user"], p) for p in range(3)]
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    admin.delete_records(consumer.end_offsets(pins))  # every pin so far, the two carried among them
    send_all(producer, topics, {i: rows[i] for i in later[:2]})  # partition 1: no new pin in partition 0
    admin.delete_records(consumer.end_offsets(users))  # ...and these two users, which no batch has read
    send_all(producer, topics, {i: rows[i] for i in later[2:]})
    admin.close()

    caplog.set_level("WARNING", logger="pinpipe")
    assert measure(settings, group).triplets == 6
    second = run_extractor(settings, group, count=100, until_end=True, allow_partial=True)
    assert [m.rows for m in second.batches] == [6] and second.pending == 2  # later[:2]: pin and geo, no user
    assert sorted(written_idx_per_batch(tmp_path)[-1]) == sorted(later[2:])
    newest = batch_store.read_manifests(tmp_path)[-1]
    assert newest.pending == 2 and "0" not in newest.carried.get(topics["pin"], {})  # the ghosts are gone...
    assert "0" not in newest.carried.get(topics["geo"], {})  # ...and half's geo, whose pin went with them
    assert "were deleted from Kafka before their idx completed" in caplog.text
    assert "nor 1 record of the other topics that cannot complete now" in caplog.text
    assert "before this group read them: " in caplog.text and f"{topics['user']}[1] offsets" in caplog.text
    assert measure(settings, group).records[topics["pin"]] == 2  # later[:2]'s pins, carried; not the ghosts
    consumer.close()
    assert batch_store.verify(tmp_path) == []
