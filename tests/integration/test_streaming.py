"""The streaming half against the real broker and real Spark: the same analytics as the batch path, exactly once
across SIGKILLs, aborted transactions invisible, poison records rejected with the extractor's reasons."""
from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import nbformat
import papermill
import pytest
from kafka import KafkaProducer

from pinpipe.common.config import PROJECT_ROOT
from pinpipe.common.records import PoisonRecord, decode_value, encode_key, encode_value
from pinpipe.common.schema import KINDS
from pinpipe.extraction.extractor import Extractor
from pinpipe.spark import analytics, cleaning, connector, session, spark_io, streaming
from tests import spark_services
from tests.conftest import free_port
from tests.helpers import consume_all, make_producer, process_arguments, processes_with_env, send_all, triplet_rows
from tests.integration.test_extractor import settings_for

pytestmark = pytest.mark.integration

POISON = [  # (kind, value): what the poster refuses but a producer of its own can write
    ("pin", b"{broken json"),
    ("geo", json.dumps({"idx": "6"}).encode()),
    ("user", b"\xff\xfe\x00"),
    ("pin", b"[1, 2]"),
    ("geo", json.dumps({"idx": 7, "timestamp": "2020-01-01 00:00:00", "latitude": 1.5, "longitude": {"x": 1},
                        "country": "Chile"}).encode()),
    ("user", json.dumps({"idx": 8, "first_name": "A"}).encode()),
    ("pin", None),
]


def results(frames: dict) -> dict[str, list[tuple]]:
    """The nine results of a small batch's plan (one partition per table; the crosscheck shows both plans agree)."""
    small = {name: spark_io.single_partition(frame) for name, frame in frames.items()}
    collected = spark_io.collect_all(analytics.all_results(**small, small=True))
    return {name: sorted(result.rows) for name, result in collected.items()}


@pytest.fixture(scope="module")
def streamed(spark, kafka_bootstrap, tmp_path_factory):
    """Fresh topics holding triplets (some idx posted twice), poison records, and an aborted transaction of
    triplets that must never be seen; the stream run once over them (availableNow)."""
    from pinpipe.common.topics import fresh_topics

    topics = fresh_topics(kafka_bootstrap, "stream")
    rows = triplet_rows(400, seed=11)
    producer = make_producer(kafka_bootstrap)
    send_all(producer, topics, rows)
    send_all(producer, topics, {idx: rows[idx] for idx in range(0, 400, 7)})  # the same idx again
    for kind, value in POISON:
        producer.send(topics[kind], key=b"0", value=value)
    producer.flush()
    aborted = KafkaProducer(bootstrap_servers=kafka_bootstrap, transactional_id=f"abort-{uuid.uuid4().hex}",
                            enable_idempotence=True, acks="all")
    aborted.init_transactions()
    aborted.begin_transaction()
    ghosts = {idx + 10_000: {kind: {**row, "idx": idx + 10_000} for kind, row in kinds.items()}
              for idx, kinds in list(rows.items())[:50]}
    send_all(aborted, topics, ghosts)
    aborted.abort_transaction()
    aborted.close()
    producer.send(topics["pin"], key=encode_key(399), value=encode_value("pin", rows[399]["pin"])).get(30)
    root = tmp_path_factory.mktemp("stream")
    config = streaming.StreamConfig(kafka_bootstrap, topics, str(root / "tables"), str(root / "checkpoints"))
    papermill.execute_notebook(  # the notebook itself, availableNow, in its own kernel and Spark session
        str(PROJECT_ROOT / "stream_processing_spark.ipynb"), str(root / "executed.ipynb"),
        parameters={"bootstrap_servers": kafka_bootstrap, "pin_topic": topics["pin"], "geo_topic": topics["geo"],
                    "user_topic": topics["user"], "output_dir": config.output_dir,
                    "checkpoint_dir": config.checkpoint_dir, "spark_master": "local[2]"},
        kernel_name="python3", cwd=str(PROJECT_ROOT), progress_bar=False)
    return topics, rows, config


def test_stream_equals_batch_on_the_same_kafka_data(spark, kafka_bootstrap, streamed, tmp_path):
    topics, rows, config = streamed
    batch = Extractor(settings_for(kafka_bootstrap, topics, tmp_path), group_id=f"g-{uuid.uuid4().hex}",
                      count=10_000, batches=1, timeout_s=30, allow_partial=True, until_end=True).run()
    assert [m.rows for m in batch.batches] == [400]
    raw = spark_io.read_batch(spark, str(tmp_path))
    batch_frames = {kind: cleaning.CLEANERS[kind](raw[kind]) for kind in KINDS}
    stream_frames = streaming.cleaned_frames(spark, config)
    assert {kind: frame.count() for kind, frame in stream_frames.items()} == {kind: 400 for kind in KINDS}
    assert results(stream_frames) == results(batch_frames)


def test_every_committed_record_once_aborted_never_poison_rejected_with_reasons(spark, kafka_bootstrap, streamed):
    topics, rows, config = streamed
    committed = consume_all(kafka_bootstrap, list(topics.values()))
    kind_of = {topic: kind for kind, topic in topics.items()}
    expected_reasons = {}
    for message in committed:
        try:
            decode_value(kind_of[message.topic], message.value)
        except PoisonRecord as exc:
            expected_reasons[(message.topic, message.partition, message.offset)] = str(exc)
    valid = {(m.topic, m.partition, m.offset) for m in committed} - set(expected_reasons)
    cleaned = []
    for kind in KINDS:
        table = streaming.read_table(spark, config, f"cleaned_{kind}")
        cleaned += [tuple(r) for r in table.select("topic", "partition", "offset").collect()]
        assert table.where("ind >= 10000").count() == 0  # the aborted transaction
    assert len(cleaned) == len(set(cleaned)) and set(cleaned) == valid
    rejected = {(r.topic, r.partition, r.offset): r.reason
                for r in streaming.read_table(spark, config, "rejected").collect()}
    assert len(expected_reasons) == len(POISON)
    # The same reasons as the extractor's, but that Spark does not say where the JSON syntax error is.
    assert rejected == {key: reason.split(" (")[0] if reason.startswith("value is not JSON") else reason
                        for key, reason in expected_reasons.items()}


def test_the_notebook_reports_the_records_each_query_read(kafka_bootstrap, streamed):
    """Its closing progress line: each query's records read, which are the committed records of its topics."""
    topics, rows, config = streamed
    committed = Counter(message.topic for message in consume_all(kafka_bootstrap, list(topics.values())))
    pins = committed[topics["pin"]]
    expected = (f"stream done: cleaned_pin read {pins:,} records in 1 batch, cleaned_geo read "
                f"{committed[topics['geo']]:,} records in 1 batch, cleaned_user read {committed[topics['user']]:,} "
                f"records in 1 batch, rejected read {sum(committed.values()):,} records in 1 batch, posts_per_minute "
                f"read {pins:,} records in 1 batch")
    assert expected in (Path(config.output_dir).parent / "executed.ipynb").read_text()


def test_live_counts_are_posts_per_category_per_minute(spark, streamed):
    topics, rows, config = streamed
    live = streaming.live_counts(spark, config).collect()
    pins = streaming.read_table(spark, config, "cleaned_pin").collect()
    expected: dict[tuple, int] = {}
    for pin in pins:
        minute = pin.kafka_timestamp.replace(second=0, microsecond=0)
        expected[(minute, pin.category)] = expected.get((minute, pin.category), 0) + 1
    assert {(r.minute, r.category): r.posts for r in live} == expected
    summary = json.loads((Path(config.output_dir) / "summary.json").read_text())  # written by the notebook
    assert summary["cleaned_pin"] == len(pins) and summary["rejected"] == len(POISON)
    assert summary["complete_idx"] == 400


def test_the_notebook_on_spark_connect_as_serverless_stand_in_writes_the_same_tables(spark, streamed, tmp_path,
                                                                                     monkeypatch):
    """The streaming notebook as Databricks serverless runs it: a Spark Connect session (the Kafka connector on the
    server's class path, foreachBatch run by the server's Python), no cache, RDD or settings but the time zone.
    Its tables must hold what the classic session's run wrote from the same topics, row for row."""
    topics, rows, config = streamed
    monkeypatch.setenv("IS_SERVERLESS", "TRUE")  # detected, as on Databricks serverless
    monkeypatch.setenv("PYSPARK_PYTHON", sys.executable)  # the server's Python for foreachBatch
    nb = nbformat.read(PROJECT_ROOT / "stream_processing_spark.ipynb", as_version=4)
    spark_services.insert_after_parameters(nb, spark_services.SERVERLESS_GUARD)
    nb.cells.append(nbformat.v4.new_code_cell(
        "from pinpipe.spark.session import is_connect\nassert is_connect(spark)\nprint('ran on Spark Connect')"))
    nbformat.write(nb, tmp_path / "notebook.ipynb")
    remote = streaming.StreamConfig(config.bootstrap_servers, topics, str(tmp_path / "tables"),
                                    str(tmp_path / "checkpoints"))
    # the connector's jars as README has a user put them on the server's class path
    jars = subprocess.run([sys.executable, "-m", "pinpipe.spark.connector"], capture_output=True, text=True,
                          check=True).stdout.strip().split(",")
    assert {connector.artifact_name(Path(jar).name) for jar in jars} >= {"spark-sql-kafka-0-10_2.13", "kafka-clients"}
    with spark_services.connect_server(tmp_path, jars=tuple(map(Path, jars))) as url:
        papermill.execute_notebook(
            str(tmp_path / "notebook.ipynb"), str(tmp_path / "executed.ipynb"),
            parameters={"bootstrap_servers": config.bootstrap_servers, "pin_topic": topics["pin"],
                        "geo_topic": topics["geo"], "user_topic": topics["user"], "output_dir": remote.output_dir,
                        "checkpoint_dir": remote.checkpoint_dir, "spark_master": url},
            kernel_name="python3", cwd=str(PROJECT_ROOT), progress_bar=False)
    assert "ran on Spark Connect" in (tmp_path / "executed.ipynb").read_text()

    def rows_of(table_config, name):  # in record order (the columns may hold nulls: rows do not sort)
        return sorted(streaming.read_table(spark, table_config, name).collect(),
                      key=lambda row: (row.topic, row.partition, row.offset))

    for name in streaming.TABLES[:4]:
        classic = rows_of(config, name)
        assert classic and rows_of(remote, name) == classic, name
    assert streaming.live_counts(spark, remote).collect() == streaming.live_counts(spark, config).collect()
    assert json.loads((tmp_path / "tables" / "summary.json").read_text()) == json.loads(
        (Path(config.output_dir) / "summary.json").read_text())


NO_KAFKA_SOURCE = """
import sys
from pinpipe.spark import streaming
from pinpipe.spark.session import get_spark

spark = get_spark("local[1]", kafka=False, small=True)  # as a Spark Connect server started without --jars
config = streaming.StreamConfig("127.0.0.1:9", {"pin": "p", "geo": "g", "user": "u"}, sys.argv[1] + "/tables",
                                sys.argv[1] + "/checkpoints")
try:
    streaming.start(spark, config)
except streaming.KafkaSourceMissing as error:
    print("refused:", error, "| active:", len(spark.streams.active))
"""


def test_a_spark_without_the_kafka_source_is_told_how_to_get_it(tmp_path):
    done = subprocess.run([sys.executable, "-c", NO_KAFKA_SOURCE, str(tmp_path)], capture_output=True, text=True,
                          timeout=300, cwd=PROJECT_ROOT, env={**os.environ, "SPARK_DRIVER_MEMORY": "1g"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert "refused: this Spark has no Kafka source" in done.stdout, done.stdout + done.stderr[-3000:]
    assert '--jars "$(python -m pinpipe.spark.connector)"' in done.stdout and "| active: 0" in done.stdout


def test_tables_kept_with_a_new_checkpoint_folder_are_refused_before_any_query_starts(spark, streamed, tmp_path):
    """The notebook's tables with an empty checkpoint folder: Spark's file sinks would skip the new checkpoint's
    first batches (their ids are in the sinks' logs) and lose those records; start refuses instead."""
    topics, rows, config = streamed
    fresh = streaming.StreamConfig(config.bootstrap_servers, topics, config.output_dir, str(tmp_path / "checkpoints"))
    with pytest.raises(streaming.CheckpointMismatch, match=r"cleaned_pin holds batches up to \d+.* has none"):
        streaming.start(spark, fresh)
    assert spark.streams.active == [] and not (tmp_path / "checkpoints").exists()


def test_the_command_line_says_so_and_exits_2(spark, streamed, tmp_path, monkeypatch, capsys):
    topics, rows, config = streamed
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", config.bootstrap_servers)
    for kind, topic in topics.items():
        monkeypatch.setenv(f"{kind.upper()}_TOPIC", topic)
    code = streaming.main(["--output-dir", config.output_dir, "--checkpoint-dir", str(tmp_path / "checkpoints"),
                           "--master", "local[2]"])  # the test session is active: main uses it
    err = capsys.readouterr().err
    assert code == 2 and spark.streams.active == []
    assert err.startswith("error: ") and "Spark would skip the new batches" in err


def test_ctrl_c_stops_a_continuous_run_cleanly_after_reporting_its_progress(streamed, tmp_path):
    """`python -m pinpipe.spark.streaming --trigger "5 seconds"` runs until Ctrl-C: it reports the records read
    every 10 s, and SIGINT stops the queries and exits 130 without py4j tracebacks (pyspark's own SIGINT handler
    calls the JVM; inside a blocked awaitTermination that failed with "reentrant call")."""
    topics, rows, config = streamed
    marker = uuid.uuid4().hex
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": config.bootstrap_servers, "SPARK_DRIVER_MEMORY": "1g",
           "PINPIPE_CTRL_C_TEST": marker, **{f"{kind.upper()}_TOPIC": topic for kind, topic in topics.items()}}
    log = tmp_path / "stream.log"
    with open(log, "w") as out:
        job = subprocess.Popen([sys.executable, "-m", "pinpipe.spark.streaming", "--trigger", "5 seconds",
                                "--master", "local[2]", "--output-dir", str(tmp_path / "tables"),
                                "--checkpoint-dir", str(tmp_path / "checkpoints")],
                               stdout=out, stderr=subprocess.STDOUT, cwd=PROJECT_ROOT, env=env)
        try:
            deadline = time.monotonic() + 180
            while "stream progress: cleaned_pin" not in log.read_text():
                assert job.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
                time.sleep(0.5)
            job.send_signal(signal.SIGINT)
            assert job.wait(timeout=60) == 130, log.read_text()[-3000:]
        finally:
            if job.poll() is None:
                job.kill()
    text = log.read_text()
    assert "Traceback" not in text and "reentrant" not in text, text[-3000:]
    deadline = time.monotonic() + 30
    while processes_with_env("PINPIPE_CTRL_C_TEST", marker):  # the driver JVM went with it
        assert time.monotonic() < deadline, processes_with_env("PINPIPE_CTRL_C_TEST", marker)
        time.sleep(0.2)


def test_ctrl_c_in_the_middle_of_micro_batches_lets_them_commit_then_stops(streamed, tmp_path):
    """Ctrl-C in a terminal reaches the whole process group while the first micro-batches run. pyspark's own
    handler cancelled every Spark job first: the queries died in pages of cancelled-job errors, with Python
    tracebacks from posts_per_minute's foreachBatch. Now each query is stopped once its batch is committed."""
    topics, rows, config = streamed
    marker = uuid.uuid4().hex
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": config.bootstrap_servers, "SPARK_DRIVER_MEMORY": "1g",
           "PINPIPE_CTRL_C_TEST": marker, **{f"{kind.upper()}_TOPIC": topic for kind, topic in topics.items()}}
    log, checkpoints = tmp_path / "stream.log", tmp_path / "checkpoints"
    with open(log, "w") as out:
        job = subprocess.Popen([sys.executable, "-m", "pinpipe.spark.streaming", "--trigger", "5 seconds",
                                "--master", "local[2]", "--output-dir", str(tmp_path / "tables"),
                                "--checkpoint-dir", str(checkpoints)],
                               stdout=out, stderr=subprocess.STDOUT, cwd=PROJECT_ROOT, env=env, start_new_session=True)
        try:
            deadline = time.monotonic() + 180
            while not (checkpoints / "cleaned_pin" / "offsets" / "0").exists():  # its first micro-batch has begun
                assert job.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
                time.sleep(0.1)
            os.killpg(job.pid, signal.SIGINT)
            assert job.wait(timeout=120) == 130, log.read_text()[-3000:]
        finally:
            if job.poll() is None:
                os.killpg(job.pid, signal.SIGKILL)
    text = log.read_text()
    assert "Ctrl-C: stopping each query once its micro-batch in progress is committed" in text, text[-3000:]
    assert re.search(r"^\S+ INFO \S+: stopped$", text, re.MULTILINE), text[-3000:]
    for noise in ("SPARK_JOB_CANCELLED", "Traceback", "Exception in thread", "ERROR"):
        assert noise not in text, text[-3000:]
    assert commits_done(tmp_path) >= 1  # the batch in progress was committed, not cut short


def commits_done(root) -> int:
    commits = root / "checkpoints" / "cleaned_pin" / "commits"
    return len([p for p in commits.iterdir() if p.name.isdigit()]) if commits.exists() else 0


def jvm_arguments(group: int) -> list[str]:
    """The command line of the JVM in process group `group` (the streaming job's Spark driver)."""
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and os.getpgid(int(proc.name)) == group:
                arguments = process_arguments(proc.name)
                if Path(arguments[0]).name == "java":
                    return arguments
        except (OSError, ProcessLookupError):  # gone meanwhile
            continue
    return []


def wait_for_commits(checkpoint, count: int, job, timeout_s: float = 240) -> None:
    deadline = time.monotonic() + timeout_s
    while commits_done(checkpoint.parent.parent) < count:
        assert job.poll() is None, f"the streaming job exited ({job.returncode})"
        assert time.monotonic() < deadline, f"fewer than {count} micro-batches committed in {timeout_s} s"
        time.sleep(0.2)


@pytest.mark.slow
def test_sigkill_at_random_moments_then_restart_is_exactly_once(kafka_bootstrap, pg_url, spark, tmp_path):
    """The emulator posts through the API while the streaming job (processing-time trigger) is killed five times
    at random moments and restarted from its checkpoints; a last availableNow run finishes. Every committed
    record is then in the cleaned tables exactly once and every poison record in the rejected one."""
    from pinpipe.common.topics import fresh_topics

    topics = fresh_topics(kafka_bootstrap, "killed")
    port = free_port()
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "PIN_TOPIC": topics["pin"],
           "GEO_TOPIC": topics["geo"], "USER_TOPIC": topics["user"], "DATABASE_URL": pg_url,
           "POSTER_PORT": str(port), "TRANSACTIONAL_ID": f"t-{uuid.uuid4().hex}", "SPARK_DRIVER_MEMORY": "1g",
           # a JVM killed leaves its scratch (Spark's spark-<uuid> and artifacts-<uuid> folders): here, not in /tmp
           "SPARK_LOCAL_DIRS": str(tmp_path / "spark-local"),
           "JAVA_TOOL_OPTIONS": f"{os.environ.get('JAVA_TOOL_OPTIONS', '')} -Djava.io.tmpdir={tmp_path / 'jvm-tmp'}"}
    for scratch in ("spark-local", "jvm-tmp"):
        (tmp_path / scratch).mkdir()
    poster = subprocess.Popen([sys.executable, "data_poster.py", "--rate", "20", "--random-seed", "4"], env=env,
                              stdout=subprocess.PIPE, stderr=open(tmp_path / "poster.log", "w"), text=True)
    command = [sys.executable, "-m", "pinpipe.spark.streaming", "--output-dir", str(tmp_path / "tables"),
               "--checkpoint-dir", str(tmp_path / "checkpoints"), "--master", "local[2]"]
    rng = random.Random(15)
    producer = make_producer(kafka_bootstrap)
    job = None
    try:
        for kill in range(5):
            job = subprocess.Popen([*command, "--trigger", "1 second"], env=env, start_new_session=True,
                                   stderr=open(tmp_path / f"stream-{kill}.log", "w"))
            kind, value = POISON[kill]
            producer.send(topics[kind], key=b"poison", value=value)
            # Python and the JVM that runs the queries, killed at once (the process group): three times once the
            # job has committed another micro-batch, at a random moment of the next ones; twice at a random moment
            # of its start (the session, the queries, the first batch: the checkpoints may be half written).
            if kill % 2 == 0:
                wait_for_commits(tmp_path / "checkpoints" / "cleaned_pin", commits_done(tmp_path) + 1, job)
                if kill == 0:  # the job's default: a small stream, a JVM compiled with C1 only
                    assert session.QUICK_JIT in jvm_arguments(job.pid)
                time.sleep(rng.uniform(0, 2))
            else:
                time.sleep(rng.uniform(4, 20))
            os.killpg(job.pid, signal.SIGKILL)
            job.wait(30)
    finally:
        if job is not None and job.poll() is None:  # a failed wait: the job must not outlive the test
            os.killpg(job.pid, signal.SIGKILL)
        stopping = time.monotonic()
        poster.send_signal(signal.SIGTERM)
        poster.communicate(timeout=120)
        print(f"poster stopped {time.monotonic() - stopping:.1f} s after SIGTERM")
    producer.flush()
    assert poster.returncode == 0, (tmp_path / "poster.log").read_text()[-3000:]
    final = subprocess.run([*command, "--trigger", "availableNow"], env=env, capture_output=True, text=True,
                           timeout=300)
    assert final.returncode == 0, final.stderr[-3000:]
    config = streaming.StreamConfig(kafka_bootstrap, topics, str(tmp_path / "tables"), str(tmp_path / "checkpoints"))
    committed = consume_all(kafka_bootstrap, list(topics.values()))
    poison = {(m.topic, m.partition, m.offset) for m in committed if m.key == b"poison"}
    valid = {(m.topic, m.partition, m.offset) for m in committed} - poison
    assert len(valid) > 300 and len(poison) == 5
    cleaned = [tuple(r) for kind in KINDS for r in streaming.read_table(spark, config, f"cleaned_{kind}")
               .select("topic", "partition", "offset").collect()]
    assert len(cleaned) == len(set(cleaned)), "a record is in a cleaned table twice"
    assert set(cleaned) == valid
    rejected = [tuple(r) for r in streaming.read_table(spark, config, "rejected")
                .select("topic", "partition", "offset").collect()]
    assert sorted(rejected) == sorted(poison)
    assert commits_done(tmp_path) >= 4  # three runs committed a micro-batch before their kill, then the last


def test_checkpoints_of_topics_since_created_again_are_named_as_such_and_every_query_stopped(spark, kafka_bootstrap,
                                                                                            tmp_path):
    """The same topic names on another Kafka (the single broker's checkpoints, then the three-broker cluster) or
    created again: each partition's log starts again at 0, below the checkpoints' offsets. Spark's error names its
    failOnDataLoss option; this says what happened and what to do, and stops the other queries."""
    from kafka import KafkaAdminClient

    from pinpipe.common.topics import create_topics, fresh_topics

    topics = fresh_topics(kafka_bootstrap, "recreated")
    rows = triplet_rows(30, seed=4)
    send_all(make_producer(kafka_bootstrap), topics, rows)
    config = streaming.StreamConfig(kafka_bootstrap, topics, str(tmp_path / "tables"), str(tmp_path / "checkpoints"))
    streaming.await_all(streaming.start(spark, config), report=lambda line: None)

    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    admin.delete_topics(list(topics.values()))
    deadline = time.monotonic() + 60
    while set(topics.values()) & set(admin.list_topics()) and time.monotonic() < deadline:
        time.sleep(0.5)
    admin.close()
    create_topics(kafka_bootstrap, topics)
    send_all(make_producer(kafka_bootstrap), topics, {idx: rows[idx] for idx in list(rows)[:2]})
    with pytest.raises(streaming.OffsetsOfAnotherLog, match=r"checkpoint read recreated_\w+\.\w+-\d up to offset "
                                                            r"\d+, but that log ends at \d+ now"):
        streaming.await_all(streaming.start(spark, config), report=lambda line: None)
    assert spark.streams.active == []


def test_records_deleted_before_the_stream_read_them_stop_it_saying_so_until_allowed(spark, kafka_bootstrap, tmp_path,
                                                                                       monkeypatch, capsys):
    """Kafka deletes old records (retention, 7 days by default): a stream left that long finds its checkpoints
    below the logs' starts. Spark's error is pages of plan and a failOnDataLoss hint; this names the offsets and the
    command that reads on (exit 2), stops every query, and the run it names reads what Kafka still holds; later
    runs go on as usual."""
    from kafka import KafkaAdminClient, KafkaConsumer
    from kafka.structs import TopicPartition

    from pinpipe.common.topics import fresh_topics

    topics = fresh_topics(kafka_bootstrap, "aged")
    rows = triplet_rows(40, seed=9)
    idx = list(rows)
    producer = make_producer(kafka_bootstrap)
    send_all(producer, topics, {i: rows[i] for i in idx[:10]})
    config = streaming.StreamConfig(kafka_bootstrap, topics, str(tmp_path / "tables"), str(tmp_path / "checkpoints"))
    streaming.await_all(streaming.start(spark, config), report=lambda line: None)
    send_all(producer, topics, {i: rows[i] for i in idx[10:30]})  # never read by the stream...
    consumer = KafkaConsumer(bootstrap_servers=kafka_bootstrap)
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    admin.delete_records(consumer.end_offsets([TopicPartition(t, p) for t in topics.values() for p in range(3)]))
    admin.close()
    consumer.close()
    send_all(producer, topics, {i: rows[i] for i in idx[30:]})  # ...and these come after the deletion

    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    for kind, topic in topics.items():
        monkeypatch.setenv(f"{kind.upper()}_TOPIC", topic)
    where = ["--output-dir", config.output_dir, "--checkpoint-dir", config.checkpoint_dir]
    assert streaming.main([*where, "--master", "local[2]"]) == 2  # the test session is active: main uses it
    err = capsys.readouterr().err
    assert spark.streams.active == []
    assert re.search(r"^error: query \w+ could not read aged_\w+\.\w+-\d from offset \d+: Kafka deleted records there", err,
                     re.MULTILINE), err[-3000:]
    assert "python -m pinpipe.spark.streaming --allow-data-loss --output-dir " in err  # .venv/bin/python here
    assert streaming.row_counts(spark, config)["cleaned_pin"] == 10

    assert streaming.main([*where, "--master", "local[2]", "--allow-data-loss"]) == 0
    counts = streaming.row_counts(spark, config)
    assert counts["cleaned_pin"] == counts["cleaned_user"] == counts["complete_idx"] == 20  # idx[:10] and idx[30:]
    assert sorted(r.ind for r in streaming.read_table(spark, config, "cleaned_geo").collect()) == sorted(
        idx[:10] + idx[30:])
    send_all(producer, topics, {i: rows[i] for i in idx[10:12]})
    assert streaming.main([*where, "--master", "local[2]"]) == 0  # past the gap: as usual again
    assert streaming.row_counts(spark, config)["cleaned_pin"] == 22



def run_stream_cli(monkeypatch, config, topics) -> list[str]:
    """The streaming command's arguments for `config`, its settings in the environment."""
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", config.bootstrap_servers)
    for kind, topic in topics.items():
        monkeypatch.setenv(f"{kind.upper()}_TOPIC", topic)
    return ["--output-dir", config.output_dir, "--checkpoint-dir", config.checkpoint_dir, "--master", "local[2]"]


def one_line_error(err: str, pattern: str) -> str:
    found = re.search(f"^error: {pattern}$", err, re.MULTILINE)
    assert found and "\tat " not in err and "Traceback" not in err, err[-3000:]
    return found.group(1)


def test_a_query_that_cannot_start_stops_those_started_and_says_why_in_one_line(spark, kafka_bootstrap, tmp_path,
                                                                               monkeypatch, capsys):
    """A file where the cleaned_geo table's folder goes: Spark's error (a Py4JJavaError and its Java frames) came
    out as a traceback. Now one line names the query and the cause; cleaned_pin, started before it, is stopped."""
    from pinpipe.common.topics import fresh_topics

    topics = fresh_topics(kafka_bootstrap, "unstartable")
    send_all(make_producer(kafka_bootstrap), topics, triplet_rows(5, seed=6))
    config = streaming.StreamConfig(kafka_bootstrap, topics, str(tmp_path / "tables"), str(tmp_path / "checkpoints"))
    (tmp_path / "tables").mkdir()
    (tmp_path / "tables" / "cleaned_geo").write_text("not a folder")
    assert streaming.main(run_stream_cli(monkeypatch, config, topics)) == 1  # the test session is active: main uses it
    cause = one_line_error(capsys.readouterr().err, "query cleaned_geo could not start: (.*); no query is running")
    assert "Parent path is not a directory" in cause and cause.endswith("tables/cleaned_geo")
    assert spark.streams.active == []


def test_a_query_that_fails_stops_the_others_says_why_in_one_line_and_the_next_run_goes_on(spark, kafka_bootstrap,
                                                                                          tmp_path, monkeypatch,
                                                                                          capsys):
    """A micro-batch that cannot be written (here a file where posts_per_minute's folder goes; a full disk alike):
    Spark's error came up as a traceback of Java frames and the other queries went on running. Now each is stopped,
    the error is one line naming the query and the cause, the exit status is 1, and once the folder is usable the
    next run writes what the failed one did not, from the checkpoints, nothing twice."""
    from pinpipe.common.topics import fresh_topics

    topics = fresh_topics(kafka_bootstrap, "unwritable")
    rows = triplet_rows(12, seed=5)
    send_all(make_producer(kafka_bootstrap), topics, rows)
    config = streaming.StreamConfig(kafka_bootstrap, topics, str(tmp_path / "tables"), str(tmp_path / "checkpoints"))
    (tmp_path / "tables").mkdir()
    (tmp_path / "tables" / "posts_per_minute").write_text("not a folder")
    arguments = run_stream_cli(monkeypatch, config, topics)
    assert streaming.main(arguments) == 1  # the test session is active: main uses it
    cause = one_line_error(capsys.readouterr().err, "query posts_per_minute failed: (.*); the other queries are "
                                                    "stopped, and each goes on from its checkpoint next run")
    assert "Parent path is not a directory" in cause or "Not a directory" in cause, cause
    assert spark.streams.active == []

    (tmp_path / "tables" / "posts_per_minute").unlink()
    assert streaming.main(arguments) == 0
    counts = streaming.row_counts(spark, config)
    assert counts["cleaned_pin"] == counts["cleaned_geo"] == counts["cleaned_user"] == len(rows)
    live = streaming.live_counts(spark, config).collect()
    assert sum(row.posts for row in live) == len(rows)
