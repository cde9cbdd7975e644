"""Cutting an RFC 4180 file into parts: every part reads as a valid CSV and together they are the file."""
from __future__ import annotations

import csv
import io

import pytest

from pinpipe.spark import csv_parts

HEADER = ["idx", "title", "description"]
# Hand-built rows aimed at the cut rules: CRLFs and lone quotes inside quoted fields, doubled quotes,
# commas, a field that is only a line break, a quoted field ending right before the row end.
ROWS = [
    ["0", "plain", "no quotes at all"],
    ["1", 'says "hi"', "line one\r\nline two"],
    ["2", "a, b", '"\r\n"'],
    ["3", "\r\n", "ends with a quote\""],
    ["4", "…\u00a0nbsp", "x" * 50],
    ["5", '"', "\r\n\r\n,\"\r\n"],
    ["6", "last", "row"],
]


def write(path, rows=ROWS, line_end="\r\n"):
    buffer = io.StringIO(newline="")
    csv.writer(buffer, lineterminator=line_end).writerows([HEADER, *rows])
    path.write_bytes(buffer.getvalue().encode("utf-8"))


def read(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


@pytest.mark.parametrize("line_end", ["\r\n", "\n"])
@pytest.mark.parametrize("parts", [1, 2, 3, 5, 7, 20])
def test_parts_have_the_header_and_together_hold_every_row_in_order(tmp_path, parts, line_end):
    source = tmp_path / "pin_data.csv"
    write(source, line_end=line_end)
    files = csv_parts.split(source, tmp_path / "parts", parts)
    assert 1 <= len(files) <= min(parts, len(ROWS))
    assert [f.name for f in files] == [f"pin_data.part-{n:04d}.csv" for n in range(len(files))]
    contents = [read(f) for f in files]
    assert all(rows[0] == HEADER and len(rows) > 1 for rows in contents)
    assert [row for rows in contents for row in rows[1:]] == ROWS


@pytest.mark.parametrize("line_end", ["\r\n", "\n"])
def test_every_cut_is_at_a_record_start(tmp_path, line_end):
    source = tmp_path / "pin_data.csv"
    write(source, line_end=line_end)
    data = source.read_bytes()
    # Independently: the byte offsets where records begin, from writing the rows one by one.
    starts, at = set(), 0
    for row in [HEADER, *ROWS]:
        buffer = io.StringIO(newline="")
        csv.writer(buffer, lineterminator=line_end).writerow(row)
        at += len(buffer.getvalue().encode("utf-8"))
        starts.add(at)
    header_end, cuts = csv_parts.record_starts(source, 50)
    assert header_end == len(("idx,title,description" + line_end).encode())
    assert cuts and set(cuts) <= starts - {len(data)}
    assert cuts == sorted(set(cuts))


def test_header_only_and_empty_files_stay_whole(tmp_path):
    header_only = tmp_path / "geo_data.csv"
    write(header_only, rows=[])
    assert [read(f) for f in csv_parts.split(header_only, tmp_path / "a", 4)] == [[HEADER]]
    empty = tmp_path / "user_data.csv"
    empty.write_bytes(b"")
    assert [f.read_bytes() for f in csv_parts.split(empty, tmp_path / "b", 4)] == [b""]


def test_small_files_are_not_worth_cutting():
    mib = 1024 * 1024
    assert csv_parts.parts_for(1 * mib, parallelism=8) == 1
    assert csv_parts.parts_for(20 * mib, parallelism=2) == 2
    assert csv_parts.parts_for(355 * mib, parallelism=2) == 6  # 64 MiB parts
