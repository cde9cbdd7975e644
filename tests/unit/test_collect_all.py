"""collect_all: the small results collected at once, one job each, each under its own name."""
from __future__ import annotations

import threading

from pinpipe.spark.spark_io import collect_all


class Frame:
    """Stands in for a DataFrame whose collect() returns only once `gate` has let every frame's collect in."""

    def __init__(self, name: str, gate: threading.Barrier) -> None:
        self.columns, self.schema, self.name, self.gate = ["name"], None, name, gate

    def collect(self):
        self.gate.wait(timeout=10)  # BrokenBarrierError unless all are collected at once
        return [(self.name,)]


def test_every_result_is_collected_at_the_same_time_by_default():
    names = [f"q{n}" for n in range(9)]  # the notebook's nine questions
    gate = threading.Barrier(len(names))
    results = collect_all({name: Frame(name, gate) for name in names})
    assert {name: result.rows for name, result in results.items()} == {name: [(name,)] for name in names}
    assert list(results) == names


def test_a_thread_count_given_bounds_it():
    gate = threading.Barrier(1)  # one at a time: each collect passes the gate alone
    results = collect_all({name: Frame(name, gate) for name in ("a", "b", "c")}, threads=1)
    assert [result.rows for result in results.values()] == [[("a",)], [("b",)], [("c",)]]
