"""The batch extractor: consume the three topics, align by idx, write batches, commit after the write.

Exactly-once output rests on three rules (README, "Delivery guarantees"):
1. a batch's files and manifest become visible together, by an atomic rename, after fsync;
2. offsets are committed only after that rename, and only up to the oldest record still pending;
3. on start (and after a rebalance) each partition resumes from the newest manifest that owned it:
   records below its cursor are skipped unless the manifest lists them as carried (still pending);
   carried records not read back yet when the next batch closes are listed as carried again.
The bookkeeping behind 2 and 3 is the ledger (`ledger.py`); the group membership and positioning are in
`group.py`; this module is the loop.
"""
from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from pinpipe.common.config import Settings
from pinpipe.common.records import PoisonRecord, decode_value
from pinpipe.extraction import batch_store
from pinpipe.extraction.alignment import Aligner, Record
from pinpipe.extraction.batch_store import Manifest, Reject
from pinpipe.extraction.group import GroupMember
from pinpipe.extraction.ledger import Ledger

log = logging.getLogger(__name__)

EXIT_OK, EXIT_NOT_ENOUGH_DATA, EXIT_INTERRUPTED = 0, 2, 130
JOIN_TIMEOUT_S = 60.0  # longest wait for a partition assignment before giving up


@dataclass
class ExtractResult:
    batches: list[Manifest] = field(default_factory=list)
    complete_unwritten: int = 0  # complete triplets left in memory when it stopped (not written)
    pending: int = 0
    records: int = 0
    seconds: float = 0.0
    # done | partial (idle: wrote what there was) | idle (nothing more to write) | not_enough (idle, no batch) |
    # interrupted (stopped by a signal, nothing half-written)
    stop: str = "done"
    at_end: bool = False  # it stopped at the end of its partitions (until_end), not after timeout_s idle

    @property
    def rows(self) -> int:
        return sum(m.rows for m in self.batches)

    @property
    def exit_code(self) -> int:
        return {"not_enough": EXIT_NOT_ENOUGH_DATA, "interrupted": EXIT_INTERRUPTED}.get(self.stop, EXIT_OK)


class Extractor:
    """One consumer in the extractor group; call `run()` once. `progress(complete, count)` hears of every
    new complete triplet, and of 0 when a batch is written."""

    def __init__(self, settings: Settings, *, count: int = 500, batches: int = 1, timeout_s: float = 60.0,
                 allow_partial: bool = False, group_id: str | None = None, batch_dir: Path | None = None,
                 stop_event: threading.Event | None = None, instance_id: str | None = None,
                 progress: Callable[[int, int], None] | None = None, until_end: bool = False):
        if count < 1:
            raise ValueError("count must be a positive integer")
        self.settings, self.count, self.batches_wanted = settings, count, batches
        self.timeout_s, self.allow_partial = timeout_s, allow_partial
        # until_end: stop (as if idle) once every assigned partition is read up to where its log ended when it
        # was assigned, instead of waiting timeout_s for records that are not coming.
        self.until_end = until_end
        self.group_id = group_id or settings.group_id
        # None: a static member id from a slot of the batch directory; "dynamic": no id (group.py)
        self.instance_id = instance_id or settings.extractor_instance_id
        self.batch_dir = Path(batch_dir or settings.batch_dir)
        self.stop_event = stop_event or threading.Event()
        self.progress = progress or (lambda complete, count: None)
        self.ledger = Ledger()
        self.aligner = Aligner()
        self.rejects: list[Reject] = []

    def run(self) -> ExtractResult:
        result, started = ExtractResult(), time.perf_counter()
        if removed := batch_store.remove_abandoned_temp_dirs(self.batch_dir):
            log.info("removed %d unfinished batch directories left by a crash", len(removed))
        if existing := batch_store.batch_paths(self.batch_dir):  # a crash may have come between rename and publish
            batch_store.publish(self.batch_dir, existing[-1])
        member = GroupMember(self.settings, self.group_id, self.instance_id, self.batch_dir, self.ledger)
        log.info("joining consumer group %s %s", self.group_id,
                 f"as static member {member.instance_id}" if member.instance_id else "as a dynamic member")
        try:
            self._loop(member, result)
            result.pending = len(self.aligner.pending)
        finally:
            member.close()
        result.seconds = time.perf_counter() - started
        return result

    def _loop(self, member: GroupMember, result: ExtractResult) -> None:
        """poll -> align -> write -> commit, until enough batches, idle, or stopped."""
        last_progress, join_wait = time.monotonic(), max(JOIN_TIMEOUT_S, self.timeout_s)
        while not self.stop_event.is_set():
            polled = member.poll()
            if polled.revoked:
                self._drop_unwritten()
            if polled.positioned:
                last_progress = time.monotonic()  # the idle clock runs only while partitions are ours
            if not polled.records:
                waited = time.monotonic() - last_progress
                if member.joining and waited > join_wait:  # (re)joining the group is not "no data"...
                    raise member.join_timeout(join_wait)
                if not member.joining and waited > self.timeout_s:  # ...but this is
                    return self._idle(member, result)
                if self.until_end and not member.joining and member.at_end():
                    result.at_end = True
                    return self._idle(member, result)
                continue
            last_progress = time.monotonic()
            for tp, messages in polled.records.items():
                if not self.ledger.owns(tp):
                    continue  # not (or no longer) ours
                for message in messages:
                    if member.revoking():
                        break  # a rebalance began: these records may belong to another member now
                    result.records += 1
                    self._take(tp, message)
                    if len(self.aligner.complete) >= self.count:
                        self._write_batch(member, result)
                        if self.batches_wanted and len(result.batches) >= self.batches_wanted:
                            return
        result.stop, result.complete_unwritten = "interrupted", len(self.aligner.complete)

    def _take(self, tp, message) -> None:
        if not self.ledger.take(tp, message.offset):
            return  # accounted for by an earlier batch (a carried record comes back, not counted again)
        kind = self.settings.kind_by_topic[tp.topic]
        try:
            value = decode_value(kind, message.value)
        except PoisonRecord as exc:
            self.rejects.append(Reject(tp.topic, tp.partition, message.offset, message.value, str(exc)))
            return
        before = len(self.aligner.complete)
        self.aligner.add(Record(kind, tp.topic, tp.partition, message.offset, value["idx"], value))
        if len(self.aligner.complete) != before:
            self.progress(len(self.aligner.complete), self.count)

    def _write_batch(self, member: GroupMember, result: ExtractResult) -> None:
        if member.revoking():
            return  # never write a batch for partitions that may have moved; the next poll drops it all
        triplets, duplicates = self.aligner.close_batch()
        closing = self.ledger.closing(self.aligner.pending_records())
        manifest = Manifest(
            batch_id=batch_store.new_batch_id(), created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            rows=len(triplets), duplicates=duplicates, rejected=len(self.rejects), pending=len(self.aligner.pending),
            offsets=closing.offsets, cursors=closing.cursors, carried=closing.carried, group_id=self.group_id,
            topic_ids=member.topic_ids(), carried_idx=closing.carried_idx,
        )
        path = batch_store.write_batch(self.batch_dir, manifest, triplets, self.rejects)
        batch_store.publish(self.batch_dir, path)
        member.commit(closing.commits, manifest.batch_id)  # only now: the batch is durable
        self.ledger.closed()
        self.rejects = []
        result.batches.append(manifest)
        self.progress(0, self.count)
        log.info("batch %s: %d triplets, %d duplicates, %d rejected, %d idx pending -> %s", manifest.batch_id,
                 manifest.rows, duplicates, manifest.rejected, manifest.pending, path)

    def _drop_unwritten(self) -> None:
        if self.aligner.complete:
            log.info("partitions revoked: dropping %d unwritten triplets; they will be re-read",
                     len(self.aligner.complete))
        self.aligner, self.rejects = Aligner(), []

    def _idle(self, member: GroupMember, result: ExtractResult) -> None:
        """No new records for `timeout_s`: write what there is if allowed, else stop without a batch."""
        complete = len(self.aligner.complete)
        if self.allow_partial and complete:
            log.info("%s: writing a partial batch of %d triplets",
                     "at the end of the partitions" if result.at_end else f"no new records for {self.timeout_s:g} s",
                     complete)
            self._write_batch(member, result)
            result.stop = "partial"
            return
        result.complete_unwritten = complete
        nothing_more = self.allow_partial or (self.batches_wanted == 0 and result.batches)
        result.stop = "idle" if nothing_more else "not_enough"


def install_stop_signals(stop_event: threading.Event) -> None:
    """Ctrl-C and SIGTERM finish the current step and stop; no partial batch is written."""

    def handler(signum, _frame):
        log.info("%s received: stopping", signal.Signals(signum).name)
        stop_event.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
