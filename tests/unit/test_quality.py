"""The data quality table: what each cleaning rule changed, on small hand-built batches with hand-counted
expectations, counted during the save (QualityAudit) and by a pass of its own (quality_report)."""
from __future__ import annotations

import threading

import pytest
from pyspark.sql import DataFrame
from pyspark.testing import assertDataFrameEqual

from pinpipe.spark import cleaning, quality
from pinpipe.spark.spark_io import save_cleaned
from tests.unit.test_cleaning import pin_row, raw


def batch(spark, pins: list[dict], geo: dict, user: dict) -> dict:
    """Raw frames of a batch: the pin rows given, one geo row and one user row (idx 0)."""
    return {"pin": raw(spark, "pin", pins), "geo": raw(spark, "geo", [{"idx": "0", **geo}]),
            "user": raw(spark, "user", [{"idx": "0", **user}])}


def first_batch(spark):
    return batch(spark,
                 [pin_row(), pin_row(idx="1", title="Untitled", follower_count="2M"),
                  pin_row(idx="2", title="", follower_count="User Info Error", poster_name="User Info Error")],
                 {"timestamp": "bad", "latitude": "1", "longitude": "2", "country": "X"},
                 {"first_name": "A", "last_name": "B", "age": "20", "date_joined": "2016-01-01 00:00:00"})


FIRST_CHANGED = {
    ("pin", "title", "blank -> null"): 1,
    ("pin", "title", "placeholder -> null"): 1,
    ("pin", "follower_count", "placeholder -> null"): 1,
    ("pin", "follower_count", "k/M suffix -> integer"): 2,  # 13k and 2M
    ("pin", "save_location", "prefix removed / unparseable -> null"): 3,
    ("geo", "timestamp", "unparseable -> null"): 1,
    ("pin", "poster_name", "placeholder -> null"): 1,
}


def second_batch(spark):
    return batch(spark,
                 [pin_row(), pin_row(idx="1", title="  ", follower_count="1.2k", description="Untitled"),
                  pin_row(idx="2", follower_count="lots", save_location="/already/a/path"),
                  pin_row(idx="3", follower_count="99999999999k", save_location=" ")],
                 {"timestamp": "2020-13-01 00:00:00", "latitude": "x", "longitude": "2", "country": "\t"},
                 {"first_name": "A", "last_name": "", "age": "twenty", "date_joined": "2016-01-01 00:00:00"})


SECOND_CHANGED = {
    ("pin", "title", "blank -> null"): 1,
    ("pin", "save_location", "blank -> null"): 1,
    ("pin", "description", "placeholder -> null"): 1,
    ("pin", "follower_count", "k/M suffix -> integer"): 2,  # 13k and 1.2k; not the one too large for an int
    ("pin", "follower_count", "unparseable -> null"): 2,  # lots, and 99999999999k
    ("pin", "save_location", "prefix removed / unparseable -> null"): 2,  # a path already; a blank is not tried
    ("geo", "timestamp", "unparseable -> null"): 1,
    ("geo", "latitude", "unparseable -> null"): 1,
    ("geo", "country", "blank -> null"): 1,
    ("user", "last_name", "blank -> null"): 1,
    ("user", "age", "unparseable -> null"): 1,
}


def changed(report) -> dict:
    return {(r["table"], r["column"], r["rule"]): r["values_changed"]
            for r in report.to_dict("records") if r["values_changed"]}


@pytest.mark.parametrize("batch, expected", [(first_batch, FIRST_CHANGED), (second_batch, SECOND_CHANGED)])
def test_the_audit_counts_each_rule_during_the_save(spark, tmp_path, batch, expected):
    audit = quality.QualityAudit(batch(spark))
    save_cleaned(audit.cleaned, str(tmp_path / "cleaned"))
    assert changed(audit.report()) == expected
    assert audit.counted_during_save is True


def test_the_saved_rows_are_counted_during_the_save_without_a_count_job(spark, tmp_path, monkeypatch):
    audit = quality.QualityAudit(second_batch(spark))
    saved = save_cleaned(audit.cleaned, str(tmp_path / "cleaned"))
    monkeypatch.setattr(DataFrame, "count", lambda self: pytest.fail("a count job for rows the save counted"))
    assert audit.saved_rows(saved) == {"pin": 4, "geo": 1, "user": 1}  # the rows second_batch builds


def test_tables_saved_without_counts_are_counted_read_back(spark, tmp_path):
    """Only the pins saved through the audit: the others' rows come from a count of what was saved."""
    frames = second_batch(spark)
    audit = quality.QualityAudit(frames)
    saved = {**save_cleaned({"pin": audit.cleaned["pin"]}, str(tmp_path / "audited")),
             **save_cleaned({t: cleaning.CLEANERS[t](frames[t].union(frames[t])) for t in ("geo", "user")},
                            str(tmp_path / "plain"))}
    assert audit.saved_rows(saved) == {"pin": 4, "geo": 2, "user": 2}


@pytest.mark.parametrize("batch, expected", [(first_batch, FIRST_CHANGED), (second_batch, SECOND_CHANGED)])
def test_a_pass_of_its_own_gives_the_same_counts(spark, batch, expected):
    frames = batch(spark)
    assert changed(quality.quality_report(frames["pin"], frames["geo"], frames["user"])) == expected


def test_an_audit_never_saved_counts_by_a_pass_of_its_own_without_waiting_for_counts(spark, monkeypatch):
    """No save, no observed counts: report() sees at once that none are coming (Spark's listener bus has nothing
    left to deliver), so a wait of an hour would not be waited, and counts by a pass of its own."""
    monkeypatch.setattr(quality, "OBSERVED_WAIT_S", 3600.0)
    waited = []
    original = quality.Observation.get
    monkeypatch.setattr(quality.Observation, "get", property(lambda self: waited.append(1) or original.fget(self)))
    audit = quality.QualityAudit(second_batch(spark))
    reports = []
    reporter = threading.Thread(target=lambda: reports.append(audit.report()), daemon=True)
    reporter.start()
    reporter.join(600)  # not a time limit on the work: a guard, so that a report waiting for good fails here
    assert reports, "report() is still waiting for counts of tables never saved"
    assert changed(reports[0]) == SECOND_CHANGED
    assert audit.counted_during_save is False
    assert waited == []  # a classic Observation.get on a frame never run would block for good


def test_an_audit_saved_in_part_counts_every_table_by_a_pass_of_its_own(spark, tmp_path):
    """Only the pins saved: the pins' counts arrived, the others never will; the whole table is counted again
    (one source for every row of it), with the same values."""
    audit = quality.QualityAudit(second_batch(spark))
    save_cleaned({"pin": audit.cleaned["pin"]}, str(tmp_path / "cleaned"))
    assert changed(audit.report()) == SECOND_CHANGED
    assert audit.counted_during_save is False


@pytest.mark.parametrize("saved", [True, False])
def test_where_python_cannot_reach_the_listener_bus_the_report_waits_a_while_for_the_counts(spark, tmp_path,
                                                                                           monkeypatch, saved):
    """A JVM that keeps Spark's internals from Python (or a bus busy past the wait): report() falls back to waiting
    OBSERVED_WAIT_S in all for the counts, then counts what did not arrive by a pass of its own."""
    from py4j.protocol import Py4JError

    def unreachable(spark, seconds):
        raise Py4JError("not allowed here")

    monkeypatch.setattr(quality, "_drain_listener_bus", unreachable)
    monkeypatch.setattr(quality, "OBSERVED_WAIT_S", 2.0)
    audit = quality.QualityAudit(second_batch(spark))
    if saved:
        save_cleaned(audit.cleaned, str(tmp_path / "cleaned"))
    assert changed(audit.report()) == SECOND_CHANGED
    assert audit.counted_during_save is saved


def test_the_report_lists_every_rule_once_in_order(spark):
    report = quality.quality_report(*first_batch(spark).values())
    assert list(report.columns) == ["table", "column", "rule", "values_changed"]
    assert report["table"].tolist() == ["pin"] * 21 + ["geo"] * 8 + ["user"] * 7
    assert not report.duplicated(["table", "column", "rule"]).any()


def test_the_audited_tables_are_the_cleaned_tables(spark):
    """Observing adds no column and changes no value: each audited frame is clean_pin/geo/user of its raw frame."""
    frames = second_batch(spark)
    audit = quality.QualityAudit(frames)
    for table, frame in frames.items():
        assertDataFrameEqual(audit.cleaned[table], cleaning.CLEANERS[table](frame), checkRowOrder=False)
        assert audit.cleaned[table].columns == cleaning.CLEANERS[table](frame).columns
