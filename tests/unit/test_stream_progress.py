"""What the streaming job reports while it runs: records read per query, from Spark's progress reports."""
from __future__ import annotations

import pytest

from pinpipe.spark.streaming import Progress, stop_when_idle


def report(batch: int, rows: int) -> dict:
    return {"batchId": batch, "numInputRows": rows}  # the two fields used, as Spark's progress dicts carry them


def test_records_are_summed_over_batches_seen_in_any_call_and_idle_reports_change_nothing():
    progress = Progress(["cleaned_pin", "rejected"])
    progress.update("cleaned_pin", [report(0, 300), report(1, 200)])
    progress.update("cleaned_pin", [report(1, 200), report(2, 1)])  # a report seen again is not counted again
    progress.update("cleaned_pin", [report(2, 0), report(3, 0)])  # idle: the last batch again, the next one empty
    # pyspark 4's progress objects may leave the total to the sources
    progress.update("rejected", [{"batchId": 0, "numInputRows": None,
                                  "sources": [{"numInputRows": 4}, {"numInputRows": 3}]}])
    assert progress.line() == "cleaned_pin read 501 records in 3 batches, rejected read 7 records in 1 batch"


def test_thousands_are_grouped_and_one_batch_is_singular():
    progress = Progress(["cleaned_geo"])
    progress.update("cleaned_geo", [report(7, 12_345)])
    assert progress.line() == "cleaned_geo read 12,345 records in 1 batch"


class BusyFor:
    """A StreamingQuery's surface as stop_when_idle sees it: in a micro-batch for its first `polls` looks."""

    def __init__(self, polls: int) -> None:
        self.polls, self.isActive, self.stopped_busy = polls, True, False

    @property
    def status(self) -> dict:
        self.polls -= 1
        return {"isTriggerActive": self.polls >= 0, "isDataAvailable": True, "message": ""}

    def stop(self) -> None:
        self.stopped_busy = self.polls >= 0
        self.isActive = False


def test_ctrl_c_stops_each_query_between_micro_batches_saying_which_are_still_in_one():
    queries = {"cleaned_pin": BusyFor(0), "rejected": BusyFor(3), "posts_per_minute": BusyFor(1)}
    said = []
    stop_when_idle(queries, report=said.append, every_s=0.0, poll_s=0.0)
    assert all(not q.isActive and not q.stopped_busy for q in queries.values())
    assert said[0] == "still in a micro-batch: rejected, posts_per_minute (interrupt again to stop at once)"
    assert said[-1] == "still in a micro-batch: rejected (interrupt again to stop at once)"


def test_interrupted_while_waiting_it_stops_the_rest_at_once_and_says_so():
    class Interrupting(BusyFor):
        @property
        def status(self) -> dict:
            raise KeyboardInterrupt

    queries = {"cleaned_pin": BusyFor(5), "rejected": Interrupting(5)}
    with pytest.raises(KeyboardInterrupt):
        stop_when_idle(queries, report=lambda line: None, poll_s=0.0)
    assert not any(query.isActive for query in queries.values())
