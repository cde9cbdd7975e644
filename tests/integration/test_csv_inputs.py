"""Any CSV in: line ends, byte order marks and column orders read by real Spark exactly as Python's csv reads
them, and every unusable file stopped before anything is computed, with a message naming it."""
from __future__ import annotations

import csv
import io

import pytest

from pinpipe.common.schema import CSV_FILES, FIELDS, KINDS
from pinpipe.spark.csv_header import BOM, InputFileError
from pinpipe.spark.spark_io import read_batch, read_raw

TEXTS = ['comma, "quotes" and\na newline\u2026\u00a0', "crlf\r\ninside", " spaces ", "", "\u00a0nbsp", "plain"]


def rows_for(kind: str) -> list[dict[str, str]]:
    rows = []
    for idx, text in enumerate(TEXTS):
        row = {name: f"{name}-{idx}" for name in FIELDS[kind]}
        row["idx"] = str(idx)
        row[FIELDS[kind][2]] = text  # free text in the third column of each table
        rows.append(row)
    return rows


def write(path, kind, line_end="\r\n", bom=False, columns=None, rows=None):
    columns = list(columns or FIELDS[kind])
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator=line_end)
    writer.writerow(columns)
    writer.writerows([[row[c] for c in columns] for row in (rows_for(kind) if rows is None else rows)])
    path.write_bytes((BOM if bom else b"") + buffer.getvalue().encode("utf-8"))


def write_batch_files(directory, **options):
    for kind in KINDS:
        write(directory / CSV_FILES[kind], kind, **options)


def expected(kind):
    """What Python's csv module reads, with Spark's one convention: an empty field is null."""
    return [tuple(row[name] or None for name in FIELDS[kind]) for row in rows_for(kind)]


def read_back(spark, directory, kind):
    df = read_raw(spark, str(directory), kind)
    assert tuple(df.columns) == FIELDS[kind]
    return sorted((tuple(r) for r in df.collect()), key=lambda r: int(r[0]))


@pytest.mark.parametrize("line_end", ["\r\n", "\n"], ids=["crlf", "lf"])
@pytest.mark.parametrize("bom", [False, True], ids=["plain", "bom"])
def test_line_ends_and_byte_order_marks_read_every_field_exactly(spark, tmp_path, line_end, bom):
    write_batch_files(tmp_path, line_end=line_end, bom=bom)
    for kind in KINDS:
        assert read_back(spark, tmp_path, kind) == expected(kind), kind


def test_columns_in_another_order_are_read_by_name(spark, tmp_path):
    for kind in KINDS:
        write(tmp_path / CSV_FILES[kind], kind, line_end="\n", columns=list(reversed(FIELDS[kind])))
    for kind in KINDS:
        assert read_back(spark, tmp_path, kind) == expected(kind), kind


def test_a_large_lf_file_cut_into_parts_reads_the_same_rows(spark, tmp_path, monkeypatch):
    from pinpipe.spark import csv_parts

    many = [dict(row, idx=str(n * 10 + int(row["idx"]))) for n in range(20) for row in rows_for("pin")]
    write(tmp_path / "pin_data.csv", "pin", line_end="\n", rows=many)
    whole = sorted(tuple(r) for r in read_raw(spark, str(tmp_path), "pin").collect())
    monkeypatch.setattr(csv_parts, "parts_for", lambda size, parallelism: 4)
    cut = read_raw(spark, str(tmp_path), "pin")
    assert len(cut.inputFiles()) == 4
    assert sorted(tuple(r) for r in cut.collect()) == whole and len(whole) == len(many)


def many_pins(directory):
    """A pin file of 120 rows (the hand-built texts twenty times over), LF-ended; its rows as Python reads them."""
    many = [dict(row, idx=str(n * 10 + int(row["idx"]))) for n in range(20) for row in rows_for("pin")]
    write(directory / "pin_data.csv", "pin", line_end="\n", rows=many)
    return sorted(tuple(row[name] or None for name in FIELDS["pin"]) for row in many)


def test_a_file_is_read_whole_where_the_temp_directory_has_no_room_for_its_parts(spark, tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    from pinpipe.spark import csv_parts

    rows = many_pins(tmp_path)
    size = (tmp_path / "pin_data.csv").stat().st_size
    monkeypatch.setattr(csv_parts, "parts_for", lambda size, parallelism: 4)
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10 * size, 10 * size - (2 * size - 1), 2 * size - 1))
    with pytest.warns(UserWarning, match=r"pin_data\.csv: read whole, by one task, instead of cut into 4 parts .* "
                                         r"MB free there, .* MB wanted .* Set TMPDIR"):
        whole = read_raw(spark, str(tmp_path), "pin")
    assert whole.inputFiles() == [(tmp_path / "pin_data.csv").as_uri()]
    assert sorted(tuple(r) for r in whole.collect()) == rows
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10 * size, 8 * size, 2 * size))  # just enough
    assert len(read_raw(spark, str(tmp_path), "pin").inputFiles()) == 4


def test_a_copy_that_fails_part_way_is_removed_and_the_file_read_whole(spark, tmp_path, monkeypatch):
    import errno

    from pinpipe.spark import csv_parts, spark_io

    rows = many_pins(tmp_path)
    monkeypatch.setattr(csv_parts, "parts_for", lambda size, parallelism: 4)
    copy, calls = csv_parts._copy_range, []

    def fill_the_disk(source, target, offset, count):
        calls.append(offset)
        if len(calls) == 3:  # two parts written, the third runs out of space
            raise OSError(errno.ENOSPC, "No space left on device")
        copy(source, target, offset, count)

    monkeypatch.setattr(csv_parts, "_copy_range", fill_the_disk)
    before = set(spark_io._parts_root().iterdir())  # parts of other tests' files
    with pytest.warns(UserWarning, match=r"pin_data\.csv: read whole.*copying it there failed: No space left"):
        whole = read_raw(spark, str(tmp_path), "pin")
    assert len(calls) == 3 and len(whole.inputFiles()) == 1
    assert sorted(tuple(r) for r in whole.collect()) == rows
    assert set(spark_io._parts_root().iterdir()) == before  # the two parts written are gone


@pytest.mark.parametrize("damage, message", [
    (lambda d: (d / "geo_data.csv").unlink(), "geo_data.csv: no such file"),
    (lambda d: (d / "geo_data.csv").write_bytes(b""), "geo_data.csv: the file is empty"),
    (lambda d: (d / "geo_data.csv").write_bytes(b"idx,timestamp,latitude,longitude,country\r\n"),
     "geo_data.csv: only a header row, no records"),
    (lambda d: write(d / "geo_data.csv", "geo", columns=["idx", "timestamp", "latitude", "longitude"],
                     rows=[{"idx": "1", "timestamp": "t", "latitude": "1", "longitude": "2"}]),
     "geo_data.csv: missing column country"),
    (lambda d: write(d / "geo_data.csv", "geo", columns=[*FIELDS["geo"], "altitude"],
                     rows=[{**{n: "1" for n in FIELDS["geo"]}, "altitude": "9"}]),
     "geo_data.csv: unknown column 'altitude'"),
])
def test_an_unusable_file_stops_the_read_with_its_name_and_problem(spark, tmp_path, damage, message):
    write_batch_files(tmp_path)
    damage(tmp_path)
    with pytest.raises(InputFileError) as caught:
        read_batch(spark, str(tmp_path))
    text = str(caught.value)
    assert f"{tmp_path}/{message}" in text
    assert "pin_data.csv" not in text and "user_data.csv" not in text  # only the bad file is named


def test_every_bad_file_is_named_in_one_message(spark, tmp_path):
    with pytest.raises(InputFileError) as caught:
        read_batch(spark, str(tmp_path / "nowhere"))
    assert [line.strip() for line in str(caught.value).splitlines()[1:]] == [
        f"{tmp_path}/nowhere/{CSV_FILES[kind]}: no such file" for kind in KINDS]


def test_a_file_spark_must_read_itself_is_checked_through_spark(spark, tmp_path):
    """A location Python cannot open (an object store) has its header read by Spark: here a file:// URI
    that is resolved as remote, so the Spark branch runs against real files."""
    from pinpipe.spark import locations, spark_io

    write(tmp_path / "geo_data.csv", "geo", line_end="\n", bom=True, columns=list(reversed(FIELDS["geo"])))
    (tmp_path / "user_data.csv").write_bytes(b"idx,first_name,last_name,age,date_joined\r\n")
    remote = locations.Location(f"file://{tmp_path}/geo_data.csv", None)
    header = spark_io._head(spark, "geo_data.csv", remote)
    assert header.columns == tuple(reversed(FIELDS["geo"])) and header.line_sep == "\n" and header.has_rows
    header_only = spark_io._head(spark, "user_data.csv", locations.Location(f"file://{tmp_path}/user_data.csv", None))
    assert header_only.line_sep == "\r\n" and not header_only.has_rows
    with pytest.raises(InputFileError, match="missing.csv: no such file"):
        spark_io._head(spark, "missing.csv", locations.Location(f"file://{tmp_path}/missing.csv", None))


def test_results_where_only_spark_can_write_are_one_part_file_each(spark, tmp_path, monkeypatch):
    from pinpipe.spark import locations, spark_io

    df = spark.createDataFrame([("a, \"b\"", 1), ("c", None)], "name string, n int")
    result = spark_io.collect_all({"q": df})
    monkeypatch.setattr(locations, "resolve", lambda location, databricks: locations.Location(location, None))
    spark_io.write_results(result, f"file://{tmp_path}/out", {"pin": 2}, spark=spark)
    parts = list((tmp_path / "out" / "q.csv").glob("part-*.csv"))
    assert len(parts) == 1
    with open(parts[0], newline="", encoding="utf-8") as handle:
        assert list(csv.reader(handle)) == [["name", "n"], ['a, "b"', "1"], ["c", ""]]
    summary = list((tmp_path / "out" / "summary.json").glob("part-*"))
    assert len(summary) == 1 and '"q": 2' in summary[0].read_text()


def test_a_cleaned_table_that_cannot_be_written_names_itself_where_and_why(spark, tmp_path):
    from pinpipe.spark.spark_io import SaveError, save_cleaned

    (tmp_path / "results").write_text("a file where the cleaned folder's parent should be")
    frames = {"geo": spark.createDataFrame([(1, "X")], "ind int, country string")}
    with pytest.raises(SaveError, match=r"^cannot write the cleaned geo table to .*results/cleaned/geo: "
                                        r"\S*ParentNotDirectoryException: Parent path is not a directory: "
                                        r"\S*results$") as raised:
        save_cleaned(frames, str(tmp_path / "results" / "cleaned"))
    assert "\n" not in str(raised.value) and raised.value.__cause__ is not None  # Spark's own error chained


def test_a_result_only_spark_can_write_that_cannot_be_written_says_so_in_one_line(spark, tmp_path, monkeypatch):
    from pinpipe.spark import locations, spark_io

    result = spark_io.collect_all({"q1": spark.createDataFrame([("a", 1)], "name string, n int")})
    monkeypatch.setattr(locations, "resolve", lambda location, databricks: locations.Location(location, None))
    (tmp_path / "out").write_text("a file where the results folder should be")
    with pytest.raises(spark_io.SaveError, match=r"^cannot write the result q1 to file://.*/out/q1\.csv: "
                                                 r"\S*ParentNotDirectoryException: Parent path is not a directory"):
        spark_io.write_results(result, f"file://{tmp_path}/out", {"pin": 1}, spark=spark)
