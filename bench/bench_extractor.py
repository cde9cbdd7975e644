"""Pre-load triplets, then: (a) a raw kafka-python consumer reading all three topics (the limit) and
(b) the extractor writing batches of 10,000 with fsync and commits. Needs a broker (./start_kafka.sh)."""
from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time

from common import fresh_topics
from kafka import KafkaConsumer, KafkaProducer

from pinpipe.common.config import get_settings
from pinpipe.common.records import encode_key, encode_value, row_dict
from pinpipe.common.schema import KINDS
from pinpipe.extraction.extractor import Extractor
from pinpipe.source import datagen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--triplets", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=10_000)
    args = parser.parse_args()
    settings = get_settings()
    bootstrap = settings.kafka_bootstrap_servers
    topics = fresh_topics(bootstrap, "benchx")
    suffix = topics["pin"].split(".")[0]
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20, batch_size=512 * 1024)
    for t in datagen.iter_rows(args.triplets, seed=2):
        for kind, row in zip(KINDS, t):
            producer.send(topics[kind], key=encode_key(row[0]), value=encode_value(kind, row_dict(kind, row)))
    producer.flush()
    producer.close()
    total = 3 * args.triplets

    consumer = KafkaConsumer(*topics.values(), bootstrap_servers=bootstrap, group_id=f"raw-{suffix}",
                             auto_offset_reset="earliest", enable_auto_commit=False, isolation_level="read_committed",
                             max_poll_records=5000, fetch_max_bytes=64 * 1024 * 1024,
                             max_partition_fetch_bytes=8 * 1024 * 1024)
    started, seen = time.perf_counter(), 0
    while seen < total:
        for records in consumer.poll(timeout_ms=500).values():
            seen += len(records)
    raw_rate = total / (time.perf_counter() - started)
    consumer.close()

    with tempfile.TemporaryDirectory() as tmp:
        s = get_settings(pin_topic=topics["pin"], geo_topic=topics["geo"], user_topic=topics["user"], batch_dir=tmp)
        result = Extractor(s, count=args.batch, batches=args.triplets // args.batch, timeout_s=10,
                           group_id=f"ext-{suffix}").run()
    ours = result.records / result.seconds
    print(f"machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}")
    print(f"pre-loaded: {args.triplets:,} triplets ({total:,} records)")
    print(f"(a) raw kafka-python consumer, 3 topics   {raw_rate:>9,.0f} records/s   (the limit)")
    print(f"(b) extractor, batches of {args.batch:,}, fsync+commit {ours:>9,.0f} records/s   {ours / raw_rate:.2f}x (a), goal >= 0.5x"
          f"  ({len(result.batches)} batches, {result.rows:,} triplets)")


if __name__ == "__main__":
    main()
