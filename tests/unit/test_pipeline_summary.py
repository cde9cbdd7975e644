"""The pipeline's closing check: where the stages' row counts part, and why."""
from __future__ import annotations

from pinpipe.extraction.batch_store import Manifest
from pinpipe.pipeline_summary import disagreements

ROWS = {"pin": 481, "geo": 481, "user": 481}


def manifest(rows: int, duplicates: int, pending: int) -> Manifest:
    return Manifest(batch_id="b", created="2026-12-06T00:00:00Z", rows=rows, duplicates=duplicates, rejected=0,
                    pending=pending, offsets={}, cursors={}, carried={})


def test_a_run_whose_posts_are_all_in_the_batch_agrees():
    # 500 posts, 19 of them an idx posted before: 481 distinct triplets, 57 duplicate records
    assert disagreements(manifest(481, 57, 0), 500, ROWS, ROWS, 9) == []


def test_records_from_before_the_run_are_named_as_the_cause_and_nothing_as_lost():
    problems = disagreements(manifest(500, 57, 178), 500, {k: 500 for k in ROWS}, {k: 500 for k in ROWS}, 9)
    assert len(problems) == 1
    assert "topics held records from before this run" in problems[0] and "178 idx stay pending" in problems[0]


def test_fewer_triplets_than_posted_are_reported_as_missing():
    rows = {k: 400 for k in ROWS}
    problems = disagreements(manifest(400, 0, 0), 500, rows, rows, 9)
    assert problems == ["the batch holds 400 distinct triplets (+ 0 repeated idx) of the 500 this run posted: "
                        "some never reached it (see the extractor's log)"]


def test_each_later_stage_that_parts_is_named():
    problems = disagreements(manifest(481, 57, 0), 500, {"pin": 481, "geo": 480, "user": 481}, {}, 8)
    assert problems == ["the CSV files hold pin 481, geo 480, user 481 rows, the batch's manifest 481",
                        "Spark read no rows, the batch holds 481 per file",
                        "8 of the 9 result files were written"]
    assert disagreements(None, 500, ROWS, ROWS, 9) == ["the extractor wrote no batch"]
