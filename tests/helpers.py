"""Test helpers: produce generated triplets straight to Kafka, and read batches back; watch processes; stop
the scripts part-way."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import time
from pathlib import Path

from kafka import KafkaConsumer, KafkaProducer
from kafka.structs import TopicPartition

from pinpipe.common.records import encode_key, encode_value, row_dict
from pinpipe.common.schema import CSV_FILES, KINDS
from pinpipe.extraction import batch_store
from pinpipe.source import datagen


def make_producer(bootstrap: str) -> KafkaProducer:
    return KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)


def triplet_rows(rows: int, seed: int = 0) -> dict[int, dict[str, dict]]:
    """idx -> kind -> row dict, from the generator."""
    return {t[0][0]: {kind: row_dict(kind, row) for kind, row in zip(KINDS, t)}
            for t in datagen.iter_rows(rows, seed)}


def send(producer: KafkaProducer, topics: dict[str, str], kind: str, row: dict):
    """Produce one row; returns the send future (check it when a lost record would matter)."""
    return producer.send(topics[kind], key=encode_key(row["idx"]), value=encode_value(kind, row))


def send_all(producer: KafkaProducer, topics: dict[str, str], rows: dict[int, dict[str, dict]]) -> None:
    """Every kind of every row, then flush."""
    for kinds in rows.values():
        for kind in KINDS:
            send(producer, topics, kind, kinds[kind])
    producer.flush()


def read_batch(path: Path) -> dict[str, list[dict[str, str]]]:
    out = {}
    for kind in KINDS:
        with open(path / CSV_FILES[kind], encoding="utf-8", newline="") as handle:
            out[kind] = list(csv.DictReader(handle))
    return out



def written_idx_per_batch(batch_dir: Path) -> list[list[int]]:
    """idx written by each batch, checking the three files agree row by row."""
    result = []
    for path in batch_store.batch_paths(batch_dir):
        batch = read_batch(path)
        idx = [int(r["idx"]) for r in batch["pin"]]
        assert idx == [int(r["idx"]) for r in batch["geo"]] == [int(r["idx"]) for r in batch["user"]], path
        manifest = json.loads((path / "manifest.json").read_text())
        assert manifest["rows"] == len(idx)
        result.append(idx)
    return result


def consume_all(bootstrap, topic_names, expected=None, committed_only=True, timeout_s=120.0):
    """Every record of the topics from the start: the first `expected` ones, or (None) all of them up to each
    partition's end as the read began (the last stable offset under read_committed), without waiting for
    the topics to go quiet."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                             isolation_level="read_committed" if committed_only else "read_uncommitted")
    records, deadline = [], time.monotonic() + timeout_s
    try:
        partitions = [TopicPartition(t, p) for t in topic_names for p in sorted(_partitions(consumer, t, deadline))]
        consumer.assign(partitions)
        consumer.seek_to_beginning()
        ends = consumer.end_offsets(partitions)
        while (len(records) < expected if expected is not None
               else any(consumer.position(tp) < end for tp, end in ends.items())):
            assert time.monotonic() < deadline, f"read {len(records)} records of {topic_names} in {timeout_s} s"
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
    finally:
        consumer.close()
    return records[:expected] if expected is not None else records


def _partitions(consumer: KafkaConsumer, topic: str, deadline: float) -> set[int]:
    while not (partitions := consumer.partitions_for_topic(topic)):
        assert time.monotonic() < deadline, f"no metadata for topic {topic}"
        time.sleep(0.2)
    return partitions


def records_in_kafka(bootstrap: str, topics: dict[str, str]) -> dict[int, list[tuple[str, int, int]]]:
    """Ground truth read straight from the log (committed data, every partition): idx -> (kind, partition, offset)."""
    kind_of = {topic: kind for kind, topic in topics.items()}
    found: dict[int, list[tuple[str, int, int]]] = {}
    for message in consume_all(bootstrap, list(topics.values())):
        found.setdefault(json.loads(message.value)["idx"], []).append(
            (kind_of[message.topic], message.partition, message.offset))
    return found


def complete_idx_in_kafka(bootstrap: str, topics: dict[str, str]) -> set[int]:
    """The idx that have all three kinds in the log."""
    return {idx for idx, records in records_in_kafka(bootstrap, topics).items()
            if {kind for kind, _, _ in records} == set(KINDS)}


def process_arguments(pid: int | str) -> list[str]:
    """A running process's command line (Linux /proc): what a JVM was started with."""
    return (Path("/proc") / str(pid) / "cmdline").read_bytes().decode().rstrip("\0").split("\0")


def process_gone(pid: int, patience_s: float = 10) -> bool:
    """Whether process `pid` has ended (or is a zombie, dead but not yet reaped by its parent) within
    `patience_s`."""
    deadline = time.monotonic() + patience_s
    while True:
        try:
            if "zombie" in (Path("/proc") / str(pid) / "status").read_text():
                return True
        except FileNotFoundError:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)


def processes_with_env(name: str, value: str) -> list[int]:
    """Live processes (not zombies) whose environment has name=value: what a test's children (and theirs:
    kernels, JVMs) inherited, to check none is left running."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if (f"{name}={value}".encode() in (proc / "environ").read_bytes()
                    and "zombie" not in (proc / "status").read_text()):
                found.append(int(proc.name))
        except OSError:
            continue
    return sorted(found)


def write_generated_batch(path: Path, rows: int, seed: int) -> None:
    """The three CSV files of `rows` generated triplets in `path`, written by the extractor's own writer."""
    from pinpipe.common.records import encode_value_field
    from pinpipe.common.schema import FIELDS
    from pinpipe.extraction.alignment import Record

    triplets = []
    for n, generated in enumerate(datagen.iter_rows(rows, seed=seed)):
        values = {kind: {name: encode_value_field(v) for name, v in zip(FIELDS[kind], row)}
                  for kind, row in zip(KINDS, generated)}
        triplets.append({kind: Record(kind, kind, 0, n, values[kind]["idx"], values[kind]) for kind in KINDS})
    for kind in KINDS:
        batch_store.write_csv(path / CSV_FILES[kind], kind, triplets)


def signal_during_install(repo: Path, script: str, sent: int, env: dict[str, str] | None = None):
    """Run `script` (run_tests.sh, run_pipeline.sh) in `repo` with a stand-in python whose `-m venv` sleeps (the
    "installer"), send it `sent` once the installer runs, and return (the script's exit status, stdout, stderr,
    the installer's pid)."""
    started = repo.parent / "installer.pid"
    python = repo.parent / "python"
    python.write_text(f'#!/bin/sh\n[ "$1" != -c ] || exit 0\necho $$ > "{started}"\nexec sleep 120\n')
    python.chmod(0o755)
    run = subprocess.Popen([f"./{script}"], cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           env={**os.environ, **(env or {}), "PYTHON": str(python)})
    try:
        deadline = time.monotonic() + 30
        while not started.exists() or not started.read_text().strip():
            assert run.poll() is None and time.monotonic() < deadline, run.communicate()
            time.sleep(0.05)
        installer = int(started.read_text())
        run.send_signal(sent)
        out, err = run.communicate(timeout=20)
    finally:
        if run.poll() is None:
            run.kill()
    return run.returncode, out, err, installer
