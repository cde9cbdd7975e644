from __future__ import annotations

from pinpipe.extraction.alignment import Aligner, Record


def rec(kind: str, idx: int, offset: int = 0, partition: int = 0) -> Record:
    return Record(kind, f"t.{kind}", partition, offset, idx, {"idx": idx, "kind": kind})


def test_out_of_order_records_complete_when_the_last_sibling_arrives():
    aligner = Aligner()
    assert aligner.add(rec("user", 5)) == "pending"
    assert aligner.add(rec("pin", 5)) == "pending"
    assert aligner.add(rec("geo", 5)) == "complete"
    complete, duplicates = aligner.close_batch()
    assert [t["pin"].idx for t in complete] == [5] and duplicates == 0


def test_idx_zero_is_aligned_like_any_other():
    aligner = Aligner()
    for kind in ("pin", "geo", "user"):
        aligner.add(rec(kind, 0))
    assert [t["geo"].idx for t in aligner.close_batch()[0]] == [0]


def test_second_copy_of_a_complete_idx_in_the_same_batch_is_a_duplicate():
    aligner = Aligner()
    for offset, kind in enumerate(["pin", "geo", "user", "pin", "geo", "user"]):
        aligner.add(rec(kind, 9, offset))
    complete, duplicates = aligner.close_batch()
    assert len(complete) == 1 and duplicates == 3
    assert complete[0]["pin"].offset == 0  # the first copy is the one written


def test_duplicate_kind_while_pending_keeps_the_first_copy():
    aligner = Aligner()
    aligner.add(rec("pin", 4, offset=10))
    assert aligner.add(rec("pin", 4, offset=11)) == "duplicate"
    assert [r.offset for r in aligner.pending_records()] == [10]


def test_missing_kinds_stay_pending_across_batches_and_complete_later():
    aligner = Aligner()
    aligner.add(rec("pin", 1))
    aligner.add(rec("geo", 1))
    assert aligner.close_batch() == ([], 0)
    assert {r.kind for r in aligner.pending_records()} == {"pin", "geo"}
    assert aligner.add(rec("user", 1)) == "complete"
    assert len(aligner.close_batch()[0]) == 1 and aligner.pending == {}


def test_same_idx_may_be_written_again_in_a_later_batch():
    aligner = Aligner()
    for kind in ("pin", "geo", "user"):
        aligner.add(rec(kind, 2))
    aligner.close_batch()
    for kind in ("pin", "geo", "user"):
        aligner.add(rec(kind, 2, offset=1))
    assert len(aligner.close_batch()[0]) == 1


def test_completion_order_is_kept():
    aligner = Aligner()
    for idx in (3, 1, 2):
        aligner.add(rec("pin", idx))
        aligner.add(rec("geo", idx))
    for idx in (2, 3, 1):
        aligner.add(rec("user", idx))
    assert [t["pin"].idx for t in aligner.close_batch()[0]] == [2, 3, 1]
