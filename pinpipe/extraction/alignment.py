"""Aligning pin, geo and user records by idx into complete triplets (pure logic, no Kafka)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pinpipe.common.schema import KINDS


@dataclass(frozen=True)
class Record:
    """One decoded Kafka record: which kind, where it came from, and its value."""

    kind: str
    topic: str
    partition: int
    offset: int
    idx: int
    value: dict[str, Any]


Triplet = dict[str, Record]  # kind -> record, all with one idx


@dataclass
class Aligner:
    """Collects records by idx; an idx is complete once it has all three kinds (the extractor closes a batch
    when enough are).

    Within one batch an idx is written once: any further record for it is a duplicate. A record for a kind
    the idx already has while incomplete is a duplicate too (the first copy is kept). Incomplete idx stay
    pending across batches until their siblings arrive.
    """

    pending: dict[int, Triplet] = field(default_factory=dict)
    complete: list[Triplet] = field(default_factory=list)
    complete_idx: set[int] = field(default_factory=set)
    duplicates: int = 0

    def add(self, record: Record) -> str:
        """Take one record; returns 'complete', 'pending' or 'duplicate'."""
        if record.idx in self.complete_idx:
            self.duplicates += 1
            return "duplicate"
        triplet = self.pending.setdefault(record.idx, {})
        if record.kind in triplet:
            self.duplicates += 1
            return "duplicate"
        triplet[record.kind] = record
        if len(triplet) < len(KINDS):
            return "pending"
        del self.pending[record.idx]
        self.complete.append(triplet)
        self.complete_idx.add(record.idx)
        return "complete"

    def close_batch(self) -> tuple[list[Triplet], int]:
        """Hand over the complete triplets (in completion order) and duplicates; pending ones carry on."""
        complete, duplicates = self.complete, self.duplicates
        self.complete, self.complete_idx, self.duplicates = [], set(), 0
        return complete, duplicates

    def pending_records(self) -> list[Record]:
        return [record for triplet in self.pending.values() for record in triplet.values()]
