"""Batches on disk: RFC 4180 CSVs and a manifest per batch, written durably, and what restarts read back.

Layout under BATCH_DIR:
    batches/<batch_id>/{pin,geo,user}_data.csv, rejected.jsonl, manifest.json   (one directory per batch)
    pin_data.csv, geo_data.csv, user_data.csv     (the newest batch, hard links; what the notebook reads)
    rejected.jsonl                                (every batch's poison records, in batch order)
A batch directory appears by an atomic rename after every file in it is fsynced, so a batch either exists
whole or not at all.
"""
from __future__ import annotations

import base64
import csv
import fcntl
import json
import os
import shutil
import socket
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pinpipe.common import csv_format
from pinpipe.common.schema import CSV_FILES, FIELDS, KINDS
from pinpipe.extraction.alignment import Triplet

BATCHES = "batches"
MANIFEST = "manifest.json"
REJECTED = "rejected.jsonl"
TMP_PREFIX = ".tmp-"

TopicPartitionKey = tuple[str, int]  # (topic, partition)


@dataclass(frozen=True)
class Reject:
    topic: str
    partition: int
    offset: int
    raw: bytes | None
    reason: str

    def to_json(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"topic": self.topic, "partition": self.partition, "offset": self.offset}
        if self.raw is None:
            entry["value"] = None
        else:
            try:
                entry["value"] = self.raw.decode("utf-8")
            except UnicodeDecodeError:
                entry["value_base64"] = base64.b64encode(self.raw).decode("ascii")
        entry["reason"] = self.reason
        return entry


@dataclass
class Manifest:
    """What one batch wrote and which offsets it accounts for.

    `offsets` holds the inclusive range of positions each partition advanced through in this batch: every
    record in it was written, counted as a duplicate, rejected, or carried forward (still pending, listed in
    `carried` with its offset, and in `carried_idx` with its idx). `cursors` is where each owned partition's next
    batch starts.
    """

    batch_id: str
    created: str
    rows: int
    duplicates: int
    rejected: int
    pending: int
    offsets: dict[str, dict[str, list[int]]]
    cursors: dict[str, dict[str, int]]
    carried: dict[str, dict[str, list[int]]]
    group_id: str = ""
    # topic -> Kafka's id of the log the offsets refer to: a topic deleted and created again, or the same name on
    # another cluster, is another log whose offsets start again (empty in manifests written before it was kept)
    topic_ids: dict[str, str] = field(default_factory=dict)
    # topic -> partition -> offset -> idx of each carried record: when Kafka deletes one, its siblings can no longer
    # complete (empty in manifests written before it was kept)
    carried_idx: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "batch_id": self.batch_id, "created": self.created, "rows": self.rows,
            "duplicates": self.duplicates, "rejected": self.rejected, "pending": self.pending,
            "offsets": self.offsets, "cursors": self.cursors, "carried": self.carried,
            "group_id": self.group_id, "topic_ids": self.topic_ids, "carried_idx": self.carried_idx, **self.extra,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Manifest:
        known = {"batch_id", "created", "rows", "duplicates", "rejected", "pending", "offsets", "cursors",
                 "carried", "group_id", "topic_ids", "carried_idx"}
        maps = ("offsets", "cursors", "carried", "topic_ids", "carried_idx")
        return cls(**{k: data.get(k, {} if k in maps else 0) for k in known
                      if k != "group_id"}, group_id=data.get("group_id", ""),
                   extra={k: v for k, v in data.items() if k not in known})


_last_id = ""


def new_batch_id() -> str:
    """Sortable in creation order: UTC time to the microsecond, then host and pid for uniqueness."""
    global _last_id
    while True:
        now = datetime.now(timezone.utc)
        batch_id = f"{now:%Y%m%dT%H%M%S%f}Z-{socket.gethostname()[:16]}-{os.getpid()}"
        if batch_id > _last_id:
            _last_id = batch_id
            return batch_id
        time.sleep(0.000_01)


def csv_cell(value: Any) -> Any:
    # None becomes an unquoted empty field, which Spark reads as null.
    return "" if value is None else value


def write_csv(path: Path, kind: str, triplets: Iterable[Triplet]) -> None:
    """RFC 4180: CRLF rows, fields quoted when they hold a comma, quote or line break, quotes doubled."""
    columns = FIELDS[kind]
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, **csv_format.WRITER)
        writer.writerow(columns)
        writer.writerows([csv_cell(t[kind].value[name]) for name in columns] for t in triplets)
        handle.flush()
        os.fsync(handle.fileno())


def _write_text(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class BatchWriteError(RuntimeError):
    """A batch could not be written (a full disk, a read-only folder): nothing of it was published or committed."""


def write_batch(batch_dir: Path, manifest: Manifest, triplets: list[Triplet], rejects: list[Reject]) -> Path:
    """Write one batch durably: temp directory, fsync every file, atomic rename, fsync the parent. A write that
    fails removes its temp directory (the space it took) and raises BatchWriteError."""
    root = batch_dir / BATCHES
    tmp = root / f"{TMP_PREFIX}{manifest.batch_id}"
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp.mkdir()
        for kind in KINDS:
            write_csv(tmp / CSV_FILES[kind], kind, triplets)
        _write_text(tmp / REJECTED, "".join(json.dumps(r.to_json(), ensure_ascii=False) + "\n" for r in rejects))
        _write_text(tmp / MANIFEST, json.dumps(manifest.to_json(), indent=2) + "\n")
        _fsync_dir(tmp)
        final = root / manifest.batch_id
        os.rename(tmp, final)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise BatchWriteError(
            f"cannot write batch {manifest.batch_id} ({len(triplets)} triplets) in {root}: "
            f"{exc.strerror or exc}. Nothing is lost: its records' offsets are not committed, so the next run reads "
            "them again") from exc
    _fsync_dir(root)
    return final


def publish(batch_dir: Path, batch_path: Path) -> None:
    """Point the top-level CSVs at a batch (hard links, atomic per file) and rebuild rejected.jsonl.

    Several extractors may share BATCH_DIR, so a lock keeps the three top-level files from one batch.
    """
    try:
        with open(batch_dir / ".publish.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            for name in CSV_FILES.values():
                tmp = _publish_tmp(batch_dir, name)
                tmp.unlink(missing_ok=True)
                try:
                    os.link(batch_path / name, tmp)
                except OSError:  # a file system without hard links
                    shutil.copyfile(batch_path / name, tmp)
                os.replace(tmp, batch_dir / name)
            rebuild_rejected(batch_dir)
            _fsync_dir(batch_dir)
    except OSError as exc:
        for name in CSV_FILES.values():
            _publish_tmp(batch_dir, name).unlink(missing_ok=True)
        raise BatchWriteError(
            f"batch {batch_path.name} is written, but the CSV files in {batch_dir} could not be pointed at it: "
            f"{exc.strerror or exc}. Nothing is lost: the next run does it (its records' offsets are not "
            "committed yet, and the batch's manifest keeps them from being written twice)") from exc


def _publish_tmp(batch_dir: Path, name: str) -> Path:
    """Where this process prepares the top-level file `name` before it replaces it."""
    return batch_dir / f".{name}.tmp-{os.getpid()}"


def rebuild_rejected(batch_dir: Path) -> None:
    """rejected.jsonl is derived from the batches, so a crash can neither lose nor repeat a line."""
    parts = [(path / REJECTED).read_text(encoding="utf-8") for path in batch_paths(batch_dir)
             if (path / REJECTED).exists()]
    text = "".join(parts)
    target = batch_dir / REJECTED
    if not text and not target.exists():
        return
    tmp = _publish_tmp(batch_dir, REJECTED)
    _write_text(tmp, text)
    os.replace(tmp, target)


def batch_paths(batch_dir: Path) -> list[Path]:
    """Finished batch directories, oldest first."""
    root = batch_dir / BATCHES
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(TMP_PREFIX)
                  and (p / MANIFEST).exists())


def read_manifests(batch_dir: Path) -> list[Manifest]:
    return [Manifest.from_json(json.loads((p / MANIFEST).read_text())) for p in batch_paths(batch_dir)]


def remove_abandoned_temp_dirs(batch_dir: Path) -> list[Path]:
    """Delete temp batch directories whose writer process is gone (a crash before the rename)."""
    root = batch_dir / BATCHES
    removed = []
    if not root.is_dir():
        return removed
    for path in root.glob(f"{TMP_PREFIX}*"):
        pid = path.name.rsplit("-", 1)[-1]
        if pid.isdigit() and int(pid) != os.getpid() and _alive(int(pid)) and _same_host(path.name):
            continue  # another extractor is writing it right now
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def _same_host(name: str) -> bool:
    return f"-{socket.gethostname()[:16]}-" in name


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class PartitionResume:
    """Where a partition resumes according to the newest manifest that owned it."""

    batch_id: str
    cursor: int  # first offset not accounted for by any batch
    carried: frozenset[int]  # offsets below `cursor` still pending: re-read, not re-counted
    carried_idx: Mapping[int, int] = field(default_factory=dict, hash=False)  # offset -> idx, where the batch says

    @property
    def commit_offset(self) -> int:
        return min(self.carried, default=self.cursor) if self.carried else self.cursor


def resume_points(manifests: list[Manifest], topic_ids: dict[str, str] | None = None,
                  ) -> dict[TopicPartitionKey, PartitionResume]:
    """For each partition, the resume point recorded by the newest manifest that owned it and read the same log:
    a manifest whose id for a topic differs from `topic_ids` (topic -> the id it has now) read another log."""
    points: dict[TopicPartitionKey, PartitionResume] = {}
    for manifest in manifests:  # oldest first: newer ones overwrite
        for topic, cursors in manifest.cursors.items():
            if not same_log(manifest.topic_ids.get(topic), (topic_ids or {}).get(topic)):
                continue
            for partition, cursor in cursors.items():
                carried = manifest.carried.get(topic, {}).get(partition, [])
                idx = {int(offset): i for offset, i in manifest.carried_idx.get(topic, {}).get(partition, {}).items()}
                points[(topic, int(partition))] = PartitionResume(manifest.batch_id, int(cursor), frozenset(carried),
                                                                  idx)
    return points


def same_log(recorded: str | None, current: str | None) -> bool:
    """Whether a manifest's topic id and the topic's id now name one log (unknown on either side: assumed)."""
    return not (recorded and current) or recorded == current


def verify(batch_dir: Path) -> list[str]:
    """Check the manifests: per partition, offset ranges never overlap and leave no gap between batches (of one
    log: a topic created again, or another cluster's, starts its offsets again)."""
    problems: list[str] = []
    ranges: dict[tuple[str, str, int], list[tuple[int, int, str]]] = {}
    for manifest in read_manifests(batch_dir):
        for topic, parts in manifest.offsets.items():
            for partition, (first, last) in parts.items():
                if first > last:
                    problems.append(f"{manifest.batch_id}: {topic}[{partition}] has an empty range {first}..{last}")
                log_id = manifest.topic_ids.get(topic, "")
                ranges.setdefault((topic, log_id, int(partition)), []).append((first, last, manifest.batch_id))
    for (topic, _, partition), spans in sorted(ranges.items()):
        spans.sort()
        for (_, last, before), (first, _, after) in zip(spans, spans[1:]):
            if first <= last:
                problems.append(f"{topic}[{partition}]: {before} and {after} overlap at offset {first}")
            elif first != last + 1:
                problems.append(f"{topic}[{partition}]: offsets {last + 1}..{first - 1} between {before} and {after} "
                                "are in no batch")
    return problems
