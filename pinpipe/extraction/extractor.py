"""The batch extractor: consume the three topics, align by idx, write batches, commit after the write.

Exactly-once output rests on three rules (README, "Delivery guarantees"):
1. a batch's files and manifest become visible together, by an atomic rename, after fsync;
2. offsets are committed only after that rename, and only up to the oldest record still pending;
3. on start (and after a rebalance) each partition resumes from the newest manifest that owned it:
   records below its cursor are skipped unless the manifest lists them as carried (still pending);
   carried records not read back yet when the next batch closes are listed as carried again.
"""
from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from kafka import ConsumerRebalanceListener, KafkaConsumer
from kafka.coordinator.assignors.range import RangePartitionAssignor
from kafka.errors import KafkaError, KafkaTimeoutError
from kafka.structs import OffsetAndMetadata, TopicPartition

from pinpipe.common.config import Settings
from pinpipe.common.records import PoisonRecord, decode_value
from pinpipe.extraction import batch_store, membership
from pinpipe.extraction.alignment import Aligner, Record
from pinpipe.extraction.batch_store import Manifest, PartitionResume, Reject

log = logging.getLogger(__name__)

EXIT_OK, EXIT_NOT_ENOUGH_DATA, EXIT_INTERRUPTED = 0, 2, 130
JOIN_TIMEOUT_S = 60.0  # longest wait for a partition assignment before giving up
# How long the group keeps a member that stopped heartbeating (a killed extractor that does not come back).
# A restart with the same instance id does not wait for it: static membership hands the partitions over at once.
SESSION_TIMEOUT_MS = 10_000


class GroupJoinTimeout(KafkaTimeoutError):
    """The broker answers but the consumer group assigned no partitions in time."""

    def __init__(self, group_id: str, instance_id: str, waited_s: float, broker_reachable: bool, bootstrap: str):
        self.broker_reachable = broker_reachable
        if broker_reachable:
            text = (f"the broker at {bootstrap} answers, but consumer group '{group_id}' assigned this extractor "
                    f"(instance {instance_id}) no partitions within {waited_s:g} s: the group is waiting for its "
                    f"other members to rejoin or to time out ({SESSION_TIMEOUT_MS // 1000} s for a dead one). "
                    f"See who is in it with kafka-consumer-groups.sh --bootstrap-server {bootstrap} --describe "
                    f"--group {group_id} --members; start again in a moment, stop extractors of this group that "
                    "hold partitions without working, or use another --group-id")
        else:
            text = (f"cannot reach Kafka at {bootstrap}: no partitions assigned within {waited_s:g} s; is the broker "
                    "running (./start_kafka.sh) and KAFKA_BOOTSTRAP_SERVERS right?")
        self.text = text  # the sentence for the person at the terminal (str() adds the class name)
        super().__init__(text)


@dataclass
class ExtractResult:
    batches: list[Manifest] = field(default_factory=list)
    complete_unwritten: int = 0  # complete triplets left in memory when it stopped (not written)
    pending: int = 0
    records: int = 0
    seconds: float = 0.0
    exit_code: int = EXIT_OK
    message: str = ""

    @property
    def rows(self) -> int:
        return sum(m.rows for m in self.batches)


@dataclass
class _PartitionState:
    cursor: int  # first offset this batch accounts for
    skip_below: int = 0  # offsets below this were accounted for by earlier batches...
    carried: frozenset[int] = frozenset()  # ...except these, which are still pending
    last: int | None = None  # last offset accounted for in the current batch
    seen: int = -1  # last offset read since the partition was positioned (taken or skipped)

    @property
    def next_cursor(self) -> int:
        """Where the next batch starts: after this batch's last record, or where this one started."""
        return self.cursor if self.last is None else self.last + 1

    def carried_unread(self) -> set[int]:
        """Carried records not read back yet: still pending, though not in the aligner."""
        return {offset for offset in self.carried if offset > self.seen}


def carried_offsets(partitions: dict[TopicPartition, _PartitionState],
                    pending: list[Record]) -> dict[str, dict[str, list[int]]]:
    """What a closing batch must list as carried, per topic and partition: the pending records in the
    aligner, and the carried records of earlier batches that this process has not read back yet (a batch
    can fill up before the replay of every partition reaches them; leaving them out would lose them)."""
    carried: dict[str, dict[str, set[int]]] = {}
    for record in pending:
        carried.setdefault(record.topic, {}).setdefault(str(record.partition), set()).add(record.offset)
    for tp, state in partitions.items():
        if unread := state.carried_unread():
            carried.setdefault(tp.topic, {}).setdefault(str(tp.partition), set()).update(unread)
    return {topic: {partition: sorted(offsets) for partition, offsets in parts.items()}
            for topic, parts in carried.items()}


class Extractor:
    """One consumer in the extractor group; call `run()` once."""

    def __init__(self, settings: Settings, *, count: int = 500, batches: int = 1, timeout_s: float = 60.0,
                 allow_partial: bool = False, group_id: str | None = None, batch_dir: Path | None = None,
                 progress: bool | None = None, stop_event: threading.Event | None = None,
                 instance_id: str | None = None):
        if count < 1:
            raise ValueError("--count must be a positive integer")
        self.settings = settings
        self.count = count
        self.batches_wanted = batches
        self.timeout_s = timeout_s
        self.allow_partial = allow_partial
        self.group_id = group_id or settings.group_id
        self.instance_id = instance_id or settings.extractor_instance_id  # None: a slot of the batch directory
        self.batch_dir = Path(batch_dir or settings.batch_dir)
        self.progress = sys.stderr.isatty() if progress is None else progress
        self.stop_event = stop_event or threading.Event()
        self.kind_by_topic = settings.kind_by_topic
        self.aligner = Aligner()
        self.partitions: dict[TopicPartition, _PartitionState] = {}
        self.rejects: list[Reject] = []
        self.consumer: KafkaConsumer | None = None
        self._to_reconcile: set[TopicPartition] = set()
        self._revoked = threading.Event()
        self._joining = True  # until the group assigns partitions (again, after a revocation)
        self._closing = False

    # --- Kafka plumbing -------------------------------------------------------------------------------

    def _make_consumer(self) -> KafkaConsumer:
        return KafkaConsumer(
            bootstrap_servers=self.settings.kafka_bootstrap_servers,
            group_id=self.group_id,
            # Static membership: a restarted extractor with the same instance id takes its partitions
            # back at once instead of waiting for the dead member's session to time out.
            group_instance_id=self.instance_id,
            session_timeout_ms=SESSION_TIMEOUT_MS,
            client_id=f"batch-extractor-{self.group_id}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            # Range assignment gives one consumer the same partition numbers of all three topics,
            # so every idx (keyed, hence co-partitioned) is aligned by a single process.
            partition_assignment_strategy=[RangePartitionAssignor],
            max_poll_records=5000,
            fetch_max_bytes=64 * 1024 * 1024,
            max_partition_fetch_bytes=8 * 1024 * 1024,
            key_deserializer=None,
            value_deserializer=None,
        )

    def _on_revoked(self, revoked) -> None:
        # Runs on the client's IO thread, concurrently with the main loop: only raise a flag. The main loop
        # stops using its records, writes no batch, and forgets its state (all of it can be rebuilt from
        # Kafka and the manifests).
        self._revoked.set()

    def _forget(self) -> None:
        if self.aligner.complete and not self._closing:
            log.info("partitions revoked: dropping %d unwritten triplets; they will be re-read",
                     len(self.aligner.complete))
        self.aligner = Aligner()
        self.rejects = []
        self.partitions = {}
        self._revoked.clear()
        self._joining = True

    def _on_assigned(self, assigned) -> None:
        # Runs on the client's IO thread, which must not block: pause the partitions and let the main
        # loop position them (blocking calls) before any of their records is used.
        self._to_reconcile = set(assigned)
        if assigned:
            self.consumer.pause(*assigned)

    def _reconcile(self) -> None:
        assigned, self._to_reconcile = self._to_reconcile, set()
        self._joining = False
        resume = batch_store.resume_points(batch_store.read_manifests(self.batch_dir))
        fresh = [tp for tp in assigned if (tp.topic, tp.partition) not in resume]
        beginnings = self.consumer.beginning_offsets(fresh) if fresh else {}
        for tp in assigned:
            point: PartitionResume | None = resume.get((tp.topic, tp.partition))
            committed = self.consumer.committed(tp)
            if point is not None:
                if committed is not None and committed != point.commit_offset:
                    log.warning("%s[%d]: committed offset %s disagrees with batch %s (resume at %d); "
                                "following the batch, which was written durably", tp.topic, tp.partition,
                                committed, point.batch_id, point.commit_offset)
                self.partitions[tp] = _PartitionState(cursor=point.cursor, skip_below=point.cursor,
                                                      carried=point.carried)
                self.consumer.seek(tp, point.commit_offset)
            else:
                start = committed if committed is not None else beginnings[tp]
                self.partitions[tp] = _PartitionState(cursor=start, skip_below=start)
                self.consumer.seek(tp, start)
        self.consumer.resume(*assigned)
        log.info("assigned %s", ", ".join(f"{tp.topic}[{tp.partition}]" for tp in sorted(assigned)) or "nothing")

    # --- the loop -------------------------------------------------------------------------------------

    def run(self) -> ExtractResult:
        result = ExtractResult()
        started = time.perf_counter()
        removed = batch_store.remove_abandoned_temp_dirs(self.batch_dir)
        if removed:
            log.info("removed %d unfinished batch directories left by a crash", len(removed))
        existing = batch_store.batch_paths(self.batch_dir)
        if existing:  # a crash may have come between a batch's rename and its publication
            batch_store.publish(self.batch_dir, existing[-1])
        slot = None
        if self.instance_id is None:
            slot = membership.claim(self.batch_dir, self.group_id)
            self.instance_id = slot.instance_id
        log.info("joining consumer group %s as %s", self.group_id, self.instance_id)
        try:
            self.consumer = self._make_consumer()
            listener = _Listener(self)
            try:
                self.consumer.subscribe(list(self.kind_by_topic), listener=listener)
                self._loop(result)
                result.pending = len(self.aligner.pending)
            finally:
                self._closing = True
                self.consumer.close(autocommit=False)
                self.consumer = None
        finally:
            if slot is not None:
                slot.release()
        result.seconds = time.perf_counter() - started
        return result

    def _loop(self, result: ExtractResult) -> None:
        bar = _progress_bar(self.count) if self.progress else None
        last_progress = time.monotonic()
        try:
            while True:
                if self.stop_event.is_set():
                    result.exit_code = EXIT_INTERRUPTED
                    result.complete_unwritten = len(self.aligner.complete)
                    result.message = (f"interrupted: {len(self.aligner.complete)} complete triplets were not "
                                      "written; their offsets are not committed, so the next run re-reads them")
                    return
                polled = self.consumer.poll(timeout_ms=200, max_records=5000)
                if self._revoked.is_set():
                    self._forget()
                if self._to_reconcile:
                    self._reconcile()
                    last_progress = time.monotonic()  # the idle clock runs only while partitions are ours
                    continue  # anything polled before positioning is fetched again after the seek
                for tp, records in polled.items():
                    state = self.partitions.get(tp)
                    if state is None:
                        continue  # not (or no longer) ours
                    for message in records:
                        if self._revoked.is_set():
                            break  # a rebalance began: these records may belong to another member now
                        result.records += 1
                        before = len(self.aligner.complete)
                        self._take(tp, state, message)
                        if bar is not None and len(self.aligner.complete) != before:
                            bar.update(1)
                        if len(self.aligner.complete) >= self.count:
                            self._finish_batch(result)
                            if bar is not None:
                                bar.reset()
                            if self._done(result):
                                return
                if polled:
                    last_progress = time.monotonic()
                elif self._joining:
                    # (Re)joining the group, e.g. while a killed member's session expires, is not "no data".
                    waited = max(JOIN_TIMEOUT_S, self.timeout_s)
                    if time.monotonic() - last_progress > waited:
                        raise GroupJoinTimeout(self.group_id, self.instance_id, waited,
                                               self.consumer.bootstrap_connected(),
                                               self.settings.kafka_bootstrap_servers)
                elif time.monotonic() - last_progress > self.timeout_s:
                    self._timed_out(result)
                    return
        finally:
            if bar is not None:
                bar.close()

    def _done(self, result: ExtractResult) -> bool:
        return self.batches_wanted > 0 and len(result.batches) >= self.batches_wanted

    def _take(self, tp: TopicPartition, state: _PartitionState, message) -> None:
        offset = message.offset
        state.seen = offset
        if offset < state.skip_below:
            if offset not in state.carried:
                return  # accounted for by an earlier batch
            # A pending record carried by an earlier batch: back into the aligner, not counted again.
        else:
            state.last = offset
        kind = self.kind_by_topic[tp.topic]
        try:
            value = decode_value(kind, message.value)
        except PoisonRecord as exc:
            self.rejects.append(Reject(tp.topic, tp.partition, offset, message.value, str(exc)))
            return
        self.aligner.add(Record(kind, tp.topic, tp.partition, offset, value["idx"], value))

    def _finish_batch(self, result: ExtractResult) -> None:
        if self._revoked.is_set():
            return  # never write a batch for partitions that may have moved; the loop forgets it all
        triplets, duplicates = self.aligner.close_batch()
        carried = carried_offsets(self.partitions, self.aligner.pending_records())
        offsets: dict[str, dict[str, list[int]]] = {}
        cursors: dict[str, dict[str, int]] = {}
        commits: dict[TopicPartition, OffsetAndMetadata] = {}
        batch_id = batch_store.new_batch_id()
        for tp, state in self.partitions.items():
            next_cursor = state.next_cursor
            if state.last is not None:
                offsets.setdefault(tp.topic, {})[str(tp.partition)] = [state.cursor, state.last]
            cursors.setdefault(tp.topic, {})[str(tp.partition)] = next_cursor
            held = carried.get(tp.topic, {}).get(str(tp.partition), [])
            commits[tp] = OffsetAndMetadata(min(held, default=next_cursor), batch_id, -1)
        manifest = Manifest(
            batch_id=batch_id, created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            rows=len(triplets), duplicates=duplicates, rejected=len(self.rejects), pending=len(self.aligner.pending),
            offsets=offsets, cursors=cursors, carried=carried, group_id=self.group_id,
        )
        path = batch_store.write_batch(self.batch_dir, manifest, triplets, self.rejects)
        batch_store.publish(self.batch_dir, path)
        try:
            self.consumer.commit(commits)
        except KafkaError as exc:
            # The batch is durable; the next start reconciles the offsets from its manifest.
            log.warning("batch %s written but the offset commit failed (%s); the next start repairs it", batch_id, exc)
        for state in self.partitions.values():
            state.cursor, state.last = state.next_cursor, None
        self.rejects = []
        result.batches.append(manifest)
        log.info("batch %s: %d triplets, %d duplicates, %d rejected, %d idx pending -> %s",
                 batch_id, manifest.rows, duplicates, manifest.rejected, manifest.pending, path)

    def _timed_out(self, result: ExtractResult) -> None:
        complete = len(self.aligner.complete)
        if self.allow_partial and complete:
            log.info("no new records for %.0f s: writing a partial batch of %d triplets", self.timeout_s, complete)
            self._finish_batch(result)
            result.exit_code = EXIT_OK
            return
        result.complete_unwritten = complete
        if self.allow_partial or (self.batches_wanted == 0 and result.batches):
            result.exit_code = EXIT_OK
            result.message = f"no new records for {self.timeout_s:g} s; nothing more to write"
            return
        result.exit_code = EXIT_NOT_ENOUGH_DATA
        result.message = (f"no new records for {self.timeout_s:g} s: only {complete} of {self.count} triplets are "
                          "complete, so no batch was written (offsets not committed; use --allow-partial to "
                          "write what there is)")


class _Listener(ConsumerRebalanceListener):
    def __init__(self, extractor: Extractor):
        self.extractor = extractor

    def on_partitions_revoked(self, revoked):
        self.extractor._on_revoked(revoked)

    def on_partitions_assigned(self, assigned):
        self.extractor._on_assigned(assigned)


def _progress_bar(total: int):
    from tqdm import tqdm

    return tqdm(total=total, unit="triplet", desc="collecting", leave=False)


def install_stop_signals(stop_event: threading.Event) -> None:
    """Ctrl-C and SIGTERM finish the current step and stop; no partial batch is written."""

    def handler(signum, _frame):
        log.info("%s received: stopping", signal.Signals(signum).name)
        stop_event.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
