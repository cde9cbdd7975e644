"""The extractor's bookkeeping, apart from Kafka: for each partition it owns, where the current batch starts,
which offsets earlier batches accounted for, which records are carried (still pending), and, when a batch
closes, what its manifest says and where the group's committed offset goes.

The rules (README, "Delivery guarantees"): a partition resumes from the newest manifest that owned it,
skipping offsets below that manifest's cursor unless they are carried; a closing batch lists as carried the
pending records in the aligner and the carried records not read back yet; the committed offset is the
oldest carried record, or the next batch's start.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from pinpipe.extraction.alignment import Record
from pinpipe.extraction.batch_store import PartitionResume

Partition = tuple[str, int]  # (topic, partition); kafka's TopicPartition is one


@dataclass
class PartitionLedger:
    cursor: int  # first offset this batch accounts for
    skip_below: int = 0  # offsets below this were accounted for by earlier batches...
    carried: frozenset[int] = frozenset()  # ...except these, which are still pending
    carried_idx: Mapping[int, int] = field(default_factory=dict)  # offset -> idx of carried records, where known
    last: int | None = None  # last offset accounted for in the current batch
    seen: int = -1  # last offset read since the partition was positioned (taken or skipped)

    @property
    def next_cursor(self) -> int:
        """Where the next batch starts: after this batch's last record, or where this one started."""
        return self.cursor if self.last is None else self.last + 1

    def carried_unread(self) -> set[int]:
        """Carried records not read back yet: still pending, though not in the aligner."""
        return {offset for offset in self.carried if offset > self.seen}

    def take(self, offset: int) -> bool:
        """Note that `offset` was read; True when its record belongs in the aligner (new, or carried)."""
        self.seen = offset
        if offset < self.skip_below:
            return offset in self.carried  # accounted for by an earlier batch, unless still pending
        self.last = offset
        return True


@dataclass(frozen=True)
class BatchOffsets:
    """What a closing batch's manifest records, and the offsets to commit once it is on disk."""

    offsets: dict[str, dict[str, list[int]]]  # topic -> partition -> [first, last] accounted for
    cursors: dict[str, dict[str, int]]  # topic -> partition -> where the next batch starts
    carried: dict[str, dict[str, list[int]]]  # topic -> partition -> offsets still pending
    commits: dict[Partition, int]  # the group's next offset per partition
    carried_idx: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)  # ... -> offset -> idx


def carried_records(partitions: dict[Partition, PartitionLedger],
                    pending: Iterable[Record]) -> dict[str, dict[str, dict[int, int | None]]]:
    """What a closing batch must list as carried, per topic and partition, offset -> idx (None where unknown: a
    manifest from before idx were kept): the pending records in the aligner, and the carried records of earlier
    batches that this process has not read back yet (a batch can fill up before the replay of every partition
    reaches them; leaving them out would lose them)."""
    carried: dict[str, dict[str, dict[int, int | None]]] = {}
    for record in pending:
        carried.setdefault(record.topic, {}).setdefault(str(record.partition), {})[record.offset] = record.idx
    for (topic, partition), state in partitions.items():
        for offset in state.carried_unread():
            carried.setdefault(topic, {}).setdefault(str(partition), {})[offset] = state.carried_idx.get(offset)
    return carried


def carried_offsets(partitions: dict[Partition, PartitionLedger],
                    pending: Iterable[Record]) -> dict[str, dict[str, list[int]]]:
    """carried_records' offsets, in order: the manifest's `carried`."""
    return _offsets(carried_records(partitions, pending))


def _offsets(carried: dict[str, dict[str, dict[int, int | None]]]) -> dict[str, dict[str, list[int]]]:
    return {topic: {partition: sorted(records) for partition, records in parts.items()}
            for topic, parts in carried.items()}


def _known_idx(carried: dict[str, dict[str, dict[int, int | None]]]) -> dict[str, dict[str, dict[str, int]]]:
    """carried_records' idx where known: the manifest's `carried_idx`."""
    known = {topic: {partition: {str(offset): idx for offset, idx in records.items() if idx is not None}
                     for partition, records in parts.items()} for topic, parts in carried.items()}
    return {topic: {partition: idx for partition, idx in parts.items() if idx}
            for topic, parts in known.items() if any(parts.values())}


@dataclass
class Ledger:
    """The bookkeeping of every partition this extractor owns now."""

    partitions: dict[Partition, PartitionLedger] = field(default_factory=dict)

    def resume(self, tp: Partition, point: PartitionResume | None, start: int) -> int:
        """Own `tp` from the manifest `point` (None: from `start`, the committed or first offset); returns
        the offset to read from."""
        if point is None:
            self.partitions[tp] = PartitionLedger(cursor=start, skip_below=start)
            return start
        self.partitions[tp] = PartitionLedger(cursor=point.cursor, skip_below=point.cursor, carried=point.carried,
                                              carried_idx=point.carried_idx)
        return point.commit_offset

    def owns(self, tp: Partition) -> bool:
        return tp in self.partitions

    def take(self, tp: Partition, offset: int) -> bool:
        return self.partitions[tp].take(offset)

    def closing(self, pending: Iterable[Record]) -> BatchOffsets:
        """The offsets of the batch closing now, with `pending` the records left in the aligner."""
        records = carried_records(self.partitions, pending)
        carried = _offsets(records)
        offsets: dict[str, dict[str, list[int]]] = {}
        cursors: dict[str, dict[str, int]] = {}
        commits: dict[Partition, int] = {}
        for tp, state in self.partitions.items():
            topic, partition = tp
            if state.last is not None:
                offsets.setdefault(topic, {})[str(partition)] = [state.cursor, state.last]
            cursors.setdefault(topic, {})[str(partition)] = state.next_cursor
            held = carried.get(topic, {}).get(str(partition), [])
            commits[tp] = min(held, default=state.next_cursor)
        return BatchOffsets(offsets, cursors, carried, commits, _known_idx(records))

    def closed(self) -> None:
        """The batch is on disk: the next one starts where it ended."""
        for state in self.partitions.values():
            state.cursor, state.last = state.next_cursor, None

    def forget(self) -> None:
        self.partitions = {}
