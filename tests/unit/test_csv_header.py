"""Reading a CSV's header row: line ending, byte order mark, columns checked by name, clear errors."""
from __future__ import annotations

import pytest

from pinpipe.spark.csv_header import BOM, CsvHeader, InputFileError, column_order, parse_head, read_head

EXPECTED = ("idx", "country", "latitude")


def test_crlf_and_lf_line_ends_are_told_apart():
    assert parse_head("f", b"idx,country,latitude\r\n1,X,2\r\n") == CsvHeader(EXPECTED, "\r\n", True)
    assert parse_head("f", b"idx,country,latitude\n1,X,2\n") == CsvHeader(EXPECTED, "\n", True)


def test_a_byte_order_mark_is_not_part_of_the_first_column():
    assert parse_head("f", BOM + b"idx,country,latitude\n1,X,2\n").columns == EXPECTED


def test_quoted_header_names_are_unquoted():
    assert parse_head("f", b'"idx","country","latitude"\r\n1,X,2').columns == EXPECTED


def test_columns_in_another_order_come_back_in_the_file_order():
    header = parse_head("f", b"latitude,idx,country\n1,2,X\n")
    assert column_order("f", header, EXPECTED) == ("latitude", "idx", "country")


@pytest.mark.parametrize("head, message", [
    (b"", "f: the file is empty"),
    (BOM + b"\r\n  \r\n", "f: the file is empty"),
    (b"idx,country,latitude\r\n", "f: only a header row, no records"),
    (b"idx,country,latitude", "f: only a header row, no records"),
    (b"idx,country,latitude\n\n", "f: only a header row, no records"),
    (b"idx,country\n1,X\n", "f: missing column latitude (expected the columns idx, country, latitude"),
    (b"idx,country,latitude,extra\n1,X,2,3\n", "f: unknown column 'extra'"),
    (b"idx,idx,country,latitude\n1,1,X,2\n", "f: repeated column idx"),
    (b"idx,lat,long\n1,2,3\n", "f: missing columns country, latitude; unknown columns 'lat', 'long'"),
])
def test_unusable_headers_name_the_file_and_the_problem(head, message):
    with pytest.raises(InputFileError) as caught:
        column_order("f", parse_head("f", head), EXPECTED)
    assert str(caught.value).startswith(message)


def test_a_header_that_is_not_utf8_is_refused():
    with pytest.raises(InputFileError, match="f: the header row is not UTF-8"):
        parse_head("f", b"idx,c\xe9,latitude\n1,2,3\n")


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(InputFileError, match=r"^in/pin_data.csv: no such file$"):
        read_head("in/pin_data.csv", str(tmp_path / "pin_data.csv"))
