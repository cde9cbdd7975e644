"""Who an extractor is in its consumer group: a stable static-membership id, so a restart after a crash takes
its partitions back at once instead of waiting for the dead member's session to expire.

The id is `<group>-<host>-<slot>`: the slot is the lowest number whose lock file in the batch directory this
process can lock. A killed process's lock goes with it, so its successor gets the same slot and id; two
extractors running side by side get different slots, so neither fences the other.
"""
from __future__ import annotations

import fcntl
import os
import re
import socket
from pathlib import Path

MAX_SLOTS = 64


class Slot:
    """A claimed instance id; the lock is held until `release()` or the process ends."""

    def __init__(self, instance_id: str, handle):
        self.instance_id = instance_id
        self._handle = handle

    def release(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def claim(batch_dir: Path, group_id: str) -> Slot:
    """The lowest free slot of `group_id` in `batch_dir` (created if missing)."""
    directory = Path(batch_dir) / ".extractor-slots"
    directory.mkdir(parents=True, exist_ok=True)
    safe_group = re.sub(r"[^A-Za-z0-9._-]", "_", group_id)
    host = re.sub(r"[^A-Za-z0-9._-]", "_", socket.gethostname())
    for slot in range(MAX_SLOTS):
        handle = open(directory / f"{safe_group}.{slot}.lock", "a+")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        return Slot(f"{group_id}-{host}-{slot}", handle)
    raise RuntimeError(f"more than {MAX_SLOTS} extractors of group {group_id!r} share {batch_dir}; "
                       "give each its own --instance-id")
