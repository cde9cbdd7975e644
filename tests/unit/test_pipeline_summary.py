"""The pipeline's closing check: where the stages' row counts part, and why."""
from __future__ import annotations

from pinpipe.extraction.batch_store import Manifest
from pinpipe.pipeline_summary import HeldBefore, disagreements

ROWS = {"pin": 481, "geo": 481, "user": 481}


def manifest(rows: int, duplicates: int, pending: int) -> Manifest:
    return Manifest(batch_id="b", created="2026-12-06T00:00:00Z", rows=rows, duplicates=duplicates, rejected=0,
                    pending=pending, offsets={}, cursors={}, carried={})


def test_a_run_whose_posts_are_all_in_the_batch_agrees():
    # 500 posts, 19 of them an idx posted before: 481 distinct triplets, 57 duplicate records
    assert disagreements(manifest(481, 57, 0), 500, ROWS, ROWS, 9) == []


def test_records_from_before_the_run_are_named_as_the_cause_and_nothing_as_lost():
    # Backlog not measured: the extractor took 500 triplets, older ones first, and left 178 idx pending.
    problems = disagreements(manifest(500, 57, 178), 500, {k: 500 for k in ROWS}, {k: 500 for k in ROWS}, 9)
    assert len(problems) == 1
    assert "topics held records from before this run" in problems[0] and "178 idx stay pending" in problems[0]


def with_backlog(rows: int, duplicates: int, pending: int, triplets: int, limit: int) -> list[str]:
    """The check on a run that posted 500, whose batch, CSVs and Spark all hold `rows` rows."""
    counts = {k: rows for k in ROWS}
    return disagreements(manifest(rows, duplicates, pending), 500, counts, counts, 9, HeldBefore(triplets, limit))


def test_a_batch_with_the_backlog_measured_before_the_run_agrees():
    # 500 posts (481 distinct + 19 repeats) and 20 triplets left in the topics: 501 distinct + 19 repeats;
    # one idx of the backlog is incomplete (pending).
    assert with_backlog(501, 57, 1, triplets=20, limit=100) == []


def test_more_left_over_than_the_topics_held_before_the_run_is_reported():
    assert with_backlog(531, 0, 0, triplets=20, limit=100) == [
        "the batch holds 531 distinct triplets (+ 0 repeated idx) where this run posted 500: 31 more, but the "
        "topics held at most 20 triplets from before the run: were records posted to them while it ran (another "
        "poster)?"]


def test_a_backlog_beyond_the_limit_leaves_posts_pending_and_says_why():
    # 1000 triplets from before, 200 taken besides the 500 posted: the batch is the oldest 700, all from before.
    problems = with_backlog(700, 0, 800, triplets=1000, limit=200)
    assert len(problems) == 1
    assert "held more from before this run than the 200 triplets a batch takes" in problems[0]
    assert "800 idx stay pending" in problems[0]


def test_a_loose_backlog_bound_beyond_the_limit_is_no_problem_when_the_batch_ended_short_of_it():
    # The bound is the fewest records of one topic: 300 pins, but only 90 of them with both siblings; limit 200,
    # so the extractor reached the end of the topics.
    assert with_backlog(590, 0, 0, triplets=300, limit=200) == []


def test_posts_missing_while_the_backlog_was_within_the_limit_are_reported_as_lost():
    assert with_backlog(490, 0, 3, triplets=20, limit=100) == [
        "the batch holds 490 distinct triplets (+ 0 repeated idx) of the 500 this run posted: some never reached "
        "it (see the extractor's log)"]


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
