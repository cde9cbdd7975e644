"""What a CSV file's first line says (its columns, its line ending, whether rows follow), checked by name
against the columns a batch file must have, before Spark reads it.

Any CSV is accepted: CRLF (what the extractor writes) or LF (pandas, Excel, Unix tools), with or without a
UTF-8 byte order mark, columns in any order. A file that cannot be read as a batch file gets one sentence
naming the file and what is wrong.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass

BOM = b"\xef\xbb\xbf"
HEAD_BYTES = 64 * 1024  # enough for any header row and the start of the first record


class InputFileError(ValueError):
    """An input file the notebook cannot use; the message names the file and says what is wrong."""


@dataclass(frozen=True)
class CsvHeader:
    columns: tuple[str, ...]
    line_sep: str  # "\r\n" or "\n", as the header row ends
    has_rows: bool


def parse_head(label: str, head: bytes) -> CsvHeader:
    """The header of a file whose first bytes (up to HEAD_BYTES, or all of a smaller file) are `head`."""
    if head.startswith(BOM):
        head = head[len(BOM):]
    if not head.strip():
        raise InputFileError(f"{label}: the file is empty (a batch file starts with a header row)")
    end = head.find(b"\n")
    line, rest = (head, b"") if end == -1 else (head[:end], head[end + 1:])
    line_sep = "\r\n" if line.endswith(b"\r") else "\n"
    try:
        text = line.rstrip(b"\r").decode("utf-8")
    except UnicodeDecodeError as error:
        raise InputFileError(
            f"{label}: the header row is not UTF-8 text ({error.reason} at byte {error.start})") from None
    columns = tuple(next(csv.reader([text])))
    return CsvHeader(columns, line_sep, has_rows=bool(rest.strip()))


def read_head(label: str, path: str) -> CsvHeader:
    """The header of a file Python can open."""
    try:
        with open(path, "rb") as handle:
            return parse_head(label, handle.read(HEAD_BYTES))
    except FileNotFoundError:
        raise InputFileError(f"{label}: no such file") from None
    except IsADirectoryError:
        raise InputFileError(f"{label}: is a directory, not a CSV file") from None
    except PermissionError:
        raise InputFileError(f"{label}: not readable (permission denied)") from None


def column_order(label: str, header: CsvHeader, expected: tuple[str, ...]) -> tuple[str, ...]:
    """The expected column names in the order the file has them; InputFileError if they are not the same set
    or the file has no rows."""
    found = tuple(name.strip() for name in header.columns)
    missing = [name for name in expected if name not in found]
    unknown = [name for name in found if name not in expected]
    repeated = sorted({name for name in found if found.count(name) > 1 and name in expected})
    problems = []
    if missing:
        problems.append(f"missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
    if unknown:
        problems.append(f"unknown column{'s' if len(unknown) > 1 else ''} {', '.join(repr(n) for n in unknown)}")
    if repeated:
        problems.append(f"repeated column{'s' if len(repeated) > 1 else ''} {', '.join(repeated)}")
    if problems:
        raise InputFileError(f"{label}: {'; '.join(problems)} (expected the columns {', '.join(expected)}, "
                             f"in any order)")
    if not header.has_rows:
        raise InputFileError(f"{label}: only a header row, no records")
    return found
