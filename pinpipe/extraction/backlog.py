"""What the extractor group has not taken yet: per topic, the committed records the next extractor run would
take before anything posted after this moment (records pending since an earlier batch, records no batch has
reached).

It reads them, positioned as the extractor positions itself (the newest manifest of each partition, else the
group's committed offset, else the start of the log), because offsets alone overcount: transaction markers
take offsets, and records between a carried one and the batch cursor were written already.
`run_pipeline.sh` asks before posting, so that its batch takes what was left in the topics (posted by hand,
pending since an earlier run) besides its own posts, and its summary can tell the two apart.
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from pinpipe.common.brokers import reachable
from pinpipe.common.config import Settings, cli_settings
from pinpipe.common.logs import setup_logging
from pinpipe.extraction.group import past_deleted, resume_points_for, topic_ids, usable_committed
from pinpipe.extraction.ledger import Ledger


@dataclass(frozen=True)
class Backlog:
    group_id: str
    records: dict[str, int]  # topic -> records the group would take
    counted_all: bool = True  # False: counting stopped once every topic reached the limit

    @property
    def triplets(self) -> int:
        """At most this many triplets are complete among them: each needs a record of every topic."""
        return min(self.records.values(), default=0)


def measure(settings: Settings, group_id: str | None = None, batch_dir: Path | None = None,
            limit: int | None = None, timeout_s: float = 30.0) -> Backlog:
    """The group's backlog on the three topics, counted up to `limit` records a topic; a topic that does not
    exist yet holds nothing. Raises KafkaError (or TimeoutError after `timeout_s` without progress)."""
    from kafka import KafkaAdminClient, KafkaConsumer
    from kafka.structs import TopicPartition

    group_id = group_id or settings.group_id
    bootstrap = settings.kafka_bootstrap_servers
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, isolation_level="read_committed", enable_auto_commit=False)
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        existing = consumer.topics()
        partitions = [TopicPartition(topic, p) for topic in settings.topics.values() if topic in existing
                      for p in sorted(consumer.partitions_for_topic(topic) or ())]
        records = dict.fromkeys(settings.topics.values(), 0)
        if not partitions:
            return Backlog(group_id, records)
        ends = consumer.end_offsets(partitions)  # read_committed: the last stable offsets
        starts = consumer.beginning_offsets(partitions)
        offsets = _group_offsets(admin, group_id, partitions, timeout_s)
        committed = usable_committed({tp: offsets[tp].offset if tp in offsets and offsets[tp].offset >= 0 else None
                                      for tp in partitions}, ends)  # -1: never committed
        ledger = Ledger()
        resume = resume_points_for(Path(batch_dir or settings.batch_dir), topic_ids(consumer, settings.topics.values()),
                                   ends, starts)
        read_from = past_deleted({tp: ledger.resume(tp, resume.get((tp.topic, tp.partition)),
                                                    starts[tp] if committed[tp] is None else committed[tp])
                                  for tp in partitions}, starts)
        to_read = [tp for tp in partitions if read_from[tp] < ends[tp]]
        if not to_read:
            return Backlog(group_id, records)
        consumer.assign(to_read)
        for tp in to_read:
            consumer.seek(tp, read_from[tp])
        return Backlog(group_id, records, _count(consumer, ledger, {tp: ends[tp] for tp in to_read}, records, limit,
                                                 timeout_s))
    finally:
        _close_quietly(consumer)
        admin.close()


def _close_quietly(consumer) -> None:
    """Close the consumer; closing cancels a metadata refresh in flight, which kafka-python logs as an error."""
    cluster_log = logging.getLogger("kafka.cluster")
    level = cluster_log.level
    cluster_log.setLevel(logging.CRITICAL)
    try:
        consumer.close()
    finally:
        cluster_log.setLevel(level)


def _count(consumer, ledger: Ledger, ends: dict, records: dict[str, int], limit: int | None,
           timeout_s: float) -> bool:
    """Add to `records` what the extractor would take up to `ends`; False if it stopped at `limit`."""
    left = set(ends)
    progress = time.monotonic()
    while left:
        polled = consumer.poll(timeout_ms=500)
        for tp, messages in polled.items():
            for message in messages:
                if message.offset < ends[tp] and ledger.take(tp, message.offset):
                    records[tp.topic] += 1
                    if limit is not None and all(n >= limit for n in records.values()):
                        return False
        if polled:
            progress = time.monotonic()
        elif time.monotonic() - progress > timeout_s:
            raise TimeoutError(f"no records for {timeout_s:g} s while reading up to the end of the topics")
        left = {tp for tp in left if consumer.position(tp) < ends[tp]}
        consumer.pause(*(set(ends) - left))
    return True


def _group_offsets(admin, group_id: str, partitions: list, timeout_s: float) -> dict:
    """The group's committed offsets; on a new broker the offsets topic, and so the group's coordinator, takes
    a moment to appear (COORDINATOR_NOT_AVAILABLE, a retriable error)."""
    from kafka.errors import KafkaError

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return admin.list_group_offsets({group_id: partitions})[group_id]
        except KafkaError as exc:
            if not exc.retriable or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Print how many records of the pin, geo and user topics the extractor group would take next, "
                    "and so how many triplets they hold at most (the last line: 'backlog: N triplets at most', or with "
                    "--limit reached 'backlog: at least N records a topic').",
        epilog="Topics, broker and batch directory come from PIN_TOPIC, GEO_TOPIC, USER_TOPIC, "
               "KAFKA_BOOTSTRAP_SERVERS and BATCH_DIR (see README).")
    parser.add_argument("--group-id", default=None, help="consumer group (default EXTRACTOR_GROUP_ID or "
                                                         "pin-batch-extractor)")
    parser.add_argument("--limit", type=int, default=None,
                        help="stop counting once every topic has this many records")
    args = parser.parse_args(argv)
    if args.limit is not None and args.limit < 1:
        parser.error("--limit must be a positive integer")
    setup_logging(False)
    settings = cli_settings()
    if not reachable(settings.kafka_bootstrap_servers):  # rather than the client's 30 s of retries
        print(f"error: cannot reach Kafka at {settings.kafka_bootstrap_servers}; is the broker running "
              "(./start_kafka.sh) and KAFKA_BOOTSTRAP_SERVERS right?", file=sys.stderr)
        return 1
    try:
        backlog = measure(settings, args.group_id, limit=args.limit)
    except Exception as exc:  # one line for the person at the terminal
        print(f"error: cannot measure the backlog at {settings.kafka_bootstrap_servers}: {type(exc).__name__}: "
              f"{exc}", file=sys.stderr)
        return 1
    for topic, records in backlog.records.items():
        print(f"{topic}: {'' if backlog.counted_all else 'at least '}{records} records the group {backlog.group_id} "
              "has not taken")
    if backlog.counted_all:
        print(f"backlog: {backlog.triplets} triplets at most")
    else:
        print(f"backlog: at least {args.limit} records a topic (counting stopped at --limit)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
