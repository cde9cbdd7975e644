"""Cutting a large RFC 4180 file into part files at record boundaries, so Spark parses it in parallel.

Spark cannot split a multi-line CSV file: one task parses all of it, and every frame derived from it has one
partition. Record boundaries can be found without parsing: outside a quoted field the number of `"` seen so
far is even (a quote inside a field is doubled), so a line feed at an even count ends a record, whether the
file ends its rows in CRLF (as the extractor does) or LF. Each part gets a
copy of the header row, so it reads exactly like the whole file.
"""
from __future__ import annotations

import math
import mmap
import os
from pathlib import Path

QUOTE, ROW_END = b'"', b"\n"  # the last byte of CRLF and of LF
CHUNK = 16 * 1024 * 1024
# The size a large file is cut to. A session reading the parts gives each its own task (session.get_spark sets
# spark.sql.files.maxPartitionBytes to it): packed two to a task, as Spark's 128 MB default does, the pins of a
# 1M-row batch were three tasks on two cores, the last running alone.
PART_BYTES = 64 * 1024 * 1024


def _count_quotes(data: mmap.mmap, start: int, end: int) -> int:
    return sum(data[at:min(at + CHUNK, end)].count(QUOTE) for at in range(start, end, CHUNK))


def record_starts(path: Path, parts: int) -> tuple[int, list[int]]:
    """(end of the header row, offsets where parts 2..n begin): each a record start near an equal cut.

    Fewer starts come back when the file has fewer records than `parts`.
    """
    size = path.stat().st_size
    if size == 0:
        return 0, []
    with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
        position, quotes = 0, 0  # invariant: quotes == number of '"' in data[:position]

        def next_record_start(at: int) -> int | None:
            nonlocal position, quotes
            quotes += _count_quotes(data, position, at)
            position = at
            while (row_end := data.find(ROW_END, position)) != -1:
                quotes += _count_quotes(data, position, row_end)
                position = row_end + len(ROW_END)
                if quotes % 2 == 0:
                    return position if position < size else None
            return None

        header_end = next_record_start(0)
        if header_end is None:
            return size, []
        starts: list[int] = []
        for k in range(1, parts):
            start = next_record_start(max(size * k // parts, position))
            if start is None:
                break
            starts.append(start)
        return header_end, starts


def split(path: Path, out_dir: Path, parts: int) -> list[Path]:
    """Write `path` as up to `parts` files in `out_dir`, each with the header row; returns them in order."""
    header_end, starts = record_starts(path, parts)
    bounds = [0, *starts, path.stat().st_size]
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    with open(path, "rb") as source:
        header = source.read(header_end)
        for n, (start, end) in enumerate(zip(bounds, bounds[1:])):
            target = out_dir / f"{path.stem}.part-{n:04d}{path.suffix}"
            with open(target, "wb") as out:
                if n > 0:
                    out.write(header)
                out.flush()
                _copy_range(source, out, start, end - start)
            written.append(target)
    return written


def _copy_range(source, target, offset: int, count: int) -> None:
    """Append `count` bytes of `source` from `offset` to `target`: in the kernel where it can (Linux)."""
    if hasattr(os, "copy_file_range"):
        try:
            while count:
                copied = os.copy_file_range(source.fileno(), target.fileno(), count, offset)
                if copied == 0:
                    raise OSError("source ended early")
                offset, count = offset + copied, count - copied
            return
        except OSError:
            target.seek(0, os.SEEK_END)  # unsupported here: copy the rest through memory
    source.seek(offset)
    while count:
        block = source.read(min(CHUNK, count))
        target.write(block)
        count -= len(block)


def parts_for(size: int, parallelism: int, min_size: int = 16 * 1024 * 1024,
              part_size: int = PART_BYTES) -> int:
    """How many parts a file of `size` bytes is worth: one when small, else at least one per core."""
    if size < min_size:
        return 1
    return max(parallelism, math.ceil(size / part_size))

