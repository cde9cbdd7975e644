"""The streaming half against the batch path on the same Kafka records, in one run: N triplets (3N records)
produced straight to fresh topics of a private broker, then

  batch   batch_extractor (one batch of every complete triplet) + the batch notebook, as run_pipeline.sh runs them
  stream  the streaming notebook, availableNow: the five queries read the topics from the start and stop,
          twice: with its default small = True (a JVM with C1 only) and with small = False (C2 as well)

each timed end to end (Spark session start included: both notebooks start one), as records read per second.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kafka import KafkaProducer

from pinpipe.common.config import PROJECT_ROOT
from pinpipe.common.records import encode_key, encode_value, row_dict
from pinpipe.common.schema import KINDS
from pinpipe.common.topics import fresh_topics
from pinpipe.source import datagen


def _produce_share(bootstrap: str, topics: dict[str, str], triplets: int, share: int, shares: int) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20, batch_size=512 * 1024,
                             max_request_size=8 * 1024 * 1024)
    for n, rows in enumerate(datagen.iter_rows(triplets, 1)):
        if n % shares != share:
            continue
        for kind, row in zip(KINDS, rows):
            producer.send(topics[kind], key=encode_key(row[0]), value=encode_value(kind, row_dict(kind, row)))
        if share == 0 and n % 200_000 == 0 and n:
            print(f"  produced ~{n:,} triplets", flush=True)
    producer.flush()
    producer.close()


def produce(bootstrap: str, topics: dict[str, str], triplets: int, shares: int = 2) -> float:
    """kafka-python is CPU-bound: one producer process per core, each sending every `shares`-th triplet."""
    started = time.perf_counter()
    workers = [mp.Process(target=_produce_share, args=(bootstrap, topics, triplets, k, shares)) for k in range(shares)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
        if worker.exitcode != 0:
            raise SystemExit(f"a producer process failed (exit {worker.exitcode})")
    return time.perf_counter() - started


def timed(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=PROJECT_ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"failed: {' '.join(command)}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--triplets", type=int, default=1_000_000, help="triplets produced (default 1,000,000)")
    parser.add_argument("--port", type=int, default=38092, help="the private broker's port")
    args = parser.parse_args()
    python = sys.executable
    with tempfile.TemporaryDirectory(prefix="bench-stream-") as tmp:
        root = Path(tmp)
        env = {k: v for k, v in os.environ.items() if k not in ("KAFKA_DATA_DIR", "KAFKA_LOG_DIR")}
        env |= {"KAFKA_STATE_DIR": str(root / "kafka"), "KAFKA_PORT": str(args.port),
                "KAFKA_CONTROLLER_PORT": str(args.port + 1)}
        subprocess.run([str(PROJECT_ROOT / "start_kafka.sh")], env=env, check=True, capture_output=True)
        try:
            bootstrap = f"localhost:{args.port}"
            topics = fresh_topics(bootstrap, "benchs")
            print(f"producing {args.triplets:,} triplets to {bootstrap}", flush=True)
            produced_s = produce(bootstrap, topics, args.triplets)
            run_env = env | {"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "PIN_TOPIC": topics["pin"],
                             "GEO_TOPIC": topics["geo"], "USER_TOPIC": topics["user"],
                             "BATCH_DIR": str(root / "batch")}
            print("batch path: extractor", flush=True)
            extract_s = timed([python, "batch_extractor.py", "--count", str(args.triplets), "--timeout", "10",
                               "--allow-partial", "--no-progress", "--group-id", f"bench-{topics['pin']}"], run_env)
            print("batch path: notebook", flush=True)
            notebook_s = timed([python, "-m", "papermill", "batch_processing_spark.ipynb", str(root / "batch.ipynb"),
                                "-p", "input_dir", str(root / "batch"), "--log-level", "WARNING",
                                "--no-progress-bar"], run_env)
            stream_s = {}
            for small in (True, False):
                print(f"stream: notebook, availableNow, small = {small}", flush=True)
                out = root / f"stream-{small}"
                out.mkdir()
                stream_s[small] = timed(
                    [python, "-m", "papermill", "stream_processing_spark.ipynb", str(out / "stream.ipynb"),
                     "-p", "output_dir", str(out / "tables"), "-p", "checkpoint_dir", str(out / "checkpoints"),
                     "-p", "small", str(small), "--log-level", "WARNING", "--no-progress-bar"], run_env)
        finally:
            subprocess.run([str(PROJECT_ROOT / "stop_kafka.sh")], env=env, capture_output=True)
    records = 3 * args.triplets
    batch_s = extract_s + notebook_s
    print(f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"{records:,} records ({args.triplets:,} triplets); produced in {produced_s:.1f} s")
    print(f"{'path':<8}{'seconds':>10}{'records/s':>12}   detail")
    print(f"{'batch':<8}{batch_s:>10.1f}{records / batch_s:>12,.0f}   extractor {extract_s:.1f} s + notebook "
          f"{notebook_s:.1f} s")
    for small, seconds in stream_s.items():
        jit = "C1 only (the default)" if small else "C1 and C2"
        print(f"{'stream':<8}{seconds:>10.1f}{records / seconds:>12,.0f}   streaming notebook (5 queries, availableNow), "
              f"small = {small}: {jit}")
    print(f"stream / batch time: {stream_s[True] / batch_s:.2f} (small = True), {stream_s[False] / batch_s:.2f} "
          "(small = False)")


if __name__ == "__main__":
    main()
