"""The extractor's ledger (pure bookkeeping, no broker): resuming from a manifest, what is taken, what a closing
batch lists as carried and commits."""
from __future__ import annotations

import errno

import pytest
from kafka.structs import TopicPartition

from pinpipe.extraction import batch_store
from pinpipe.extraction.alignment import Record
from pinpipe.extraction.batch_store import PartitionResume
from pinpipe.extraction.ledger import Ledger, PartitionLedger, carried_offsets


def pending(topic: str, partition: int, offset: int) -> Record:
    return Record("pin", topic, partition, offset, offset, {"idx": offset})


def test_pending_records_are_carried_in_order():
    partitions = {TopicPartition("t.pin", 0): PartitionLedger(cursor=10, seen=12)}
    assert carried_offsets(partitions, [pending("t.pin", 0, 12), pending("t.pin", 0, 3)]) == {"t.pin": {"0": [3, 12]}}


def test_carried_records_not_read_back_yet_stay_carried():
    """A restarted extractor replays the carried records of the last batch; if its next batch fills up
    before the replay of a partition reaches them, they must be carried again, not forgotten."""
    tp = TopicPartition("t.pin", 1)
    state = PartitionLedger(cursor=964, skip_below=964, carried=frozenset({87, 938, 947, 963}), seen=940)
    # 87 and 938 were read back and are pending again; 947 and 963 lie beyond what was read so far.
    assert carried_offsets({tp: state}, [pending("t.pin", 1, 87), pending("t.pin", 1, 938)]) == {
        "t.pin": {"1": [87, 938, 947, 963]}}


def test_carried_records_read_back_and_completed_are_not_carried():
    tp = TopicPartition("t.geo", 2)
    state = PartitionLedger(cursor=50, skip_below=50, carried=frozenset({40, 45}), seen=49)
    assert carried_offsets({tp: state}, [pending("t.geo", 2, 45)]) == {"t.geo": {"2": [45]}}  # 40 was written
    untouched = PartitionLedger(cursor=50, skip_below=50, carried=frozenset({40, 45}))  # nothing read yet
    assert carried_offsets({tp: untouched}, []) == {"t.geo": {"2": [40, 45]}}


def test_a_partition_resumes_from_its_manifest_reading_carried_records_again_and_skipping_the_rest():
    ledger, tp = Ledger(), TopicPartition("t.pin", 0)
    point = PartitionResume(batch_id="b1", cursor=100, carried=frozenset({90, 95}))
    assert ledger.resume(tp, point, start=0) == 90  # read from the oldest carried record
    assert [offset for offset in range(90, 103) if ledger.take(tp, offset)] == [90, 95, 100, 101, 102]
    closing = ledger.closing([pending("t.pin", 0, 101)])
    assert closing.offsets == {"t.pin": {"0": [100, 102]}}  # what this batch accounts for
    assert closing.cursors == {"t.pin": {"0": 103}}
    assert closing.carried == {"t.pin": {"0": [101]}}
    assert closing.commits == {tp: 101}  # the oldest record still pending
    ledger.closed()
    assert ledger.partitions[tp].cursor == 103 and ledger.partitions[tp].last is None


def test_a_partition_without_a_manifest_starts_where_the_group_left_it_and_commits_past_its_batch():
    ledger, tp = Ledger(), TopicPartition("t.geo", 1)
    assert ledger.resume(tp, None, start=7) == 7
    assert all(ledger.take(tp, offset) for offset in (7, 8, 9))
    closing = ledger.closing([])
    assert closing.offsets == {"t.geo": {"1": [7, 9]}} and closing.carried == {} and closing.commits == {tp: 10}
    quiet = TopicPartition("t.geo", 2)
    ledger.resume(quiet, None, start=4)  # nothing read: the batch accounts for nothing there
    closing = ledger.closing([])
    assert "2" not in closing.offsets["t.geo"] and closing.cursors["t.geo"]["2"] == 4 and closing.commits[quiet] == 4
    ledger.forget()
    assert not ledger.owns(tp)


def _manifest(batch_id: str, cursor: int, topic_id: str | None):
    from pinpipe.extraction.batch_store import Manifest

    return Manifest(batch_id=batch_id, created="", rows=0, duplicates=0, rejected=0, pending=0,
                    offsets={"t": {"0": [0, cursor - 1]}}, cursors={"t": {"0": cursor}}, carried={},
                    topic_ids={"t": topic_id} if topic_id else {})


def test_a_partition_resumes_from_the_newest_batch_of_its_own_log():
    from pinpipe.extraction.batch_store import resume_points

    # Single broker (no ids recorded yet), then the cluster (id C), then back on the single broker (id S).
    manifests = [_manifest("1", 500, None), _manifest("2", 40, "C")]
    assert resume_points(manifests, {"t": "S"})[("t", 0)].cursor == 500
    assert resume_points(manifests, {"t": "C"})[("t", 0)].cursor == 40
    assert resume_points(manifests)[("t", 0)].cursor == 40  # ids unknown: the newest, as before
    assert resume_points([_manifest("2", 40, "C")], {"t": "S"}) == {}


def test_verify_checks_each_log_of_a_name_apart(tmp_path):

    for manifest in (_manifest("1", 500, "S"), _manifest("2", 40, "C")):  # each from offset 0
        batch_store.write_batch(tmp_path, manifest, [], [])
    assert batch_store.verify(tmp_path) == []
    batch_store.write_batch(tmp_path, _manifest("3", 30, "C"), [], [])  # C's offsets 0..29 again
    assert batch_store.verify(tmp_path) == ["t[0]: 3 and 2 overlap at offset 0"]


def test_carried_records_deleted_from_kafka_are_no_longer_pending(caplog):
    """Retention (or delete-records) can remove a carried record before its idx completes: kept, it would stay
    pending in every batch and hold the committed offset below the log's start for ever."""
    from pinpipe.extraction.group import past_deleted, without_deleted

    pin, geo = TopicPartition("t.pin", 0), TopicPartition("t.geo", 0)
    points = {("t.pin", 0): PartitionResume("b1", cursor=100, carried=frozenset({20, 30, 95})),
              ("t.geo", 0): PartitionResume("b1", cursor=80, carried=frozenset({70}))}
    kept = without_deleted(dict(points), {pin: 31, geo: 0})
    assert kept[("t.pin", 0)].carried == {95} and kept[("t.pin", 0)].cursor == 100
    assert kept[("t.geo", 0)] == points[("t.geo", 0)]  # nothing deleted there
    assert "t.pin[0] 2 (offsets 20..30, log starts at 31); no longer pending\n" in caplog.text  # no sibling known
    assert "t.geo" not in caplog.text
    ledger = Ledger()
    assert past_deleted({pin: ledger.resume(pin, kept[("t.pin", 0)], start=0)}, {pin: 31}) == {pin: 95}  # no warning
    assert "before this group read them" not in caplog.text

    # Everything carried is gone, and the log now starts past the cursor: 100..119 were never read.
    gone = without_deleted(dict(points), {pin: 120})[("t.pin", 0)]
    assert gone.carried == frozenset() and gone.commit_offset == 100
    geo_read_from = ledger.resume(geo, PartitionResume("b1", cursor=5, carried=frozenset()), start=0)
    assert past_deleted({pin: ledger.resume(pin, gone, start=0), geo: geo_read_from}, {pin: 120, geo: 9}) == {
        pin: 120, geo: 9}
    assert "before this group read them: t.geo[0] offsets 5..8; t.pin[0] offsets 100..119" in caplog.text
    closing = ledger.closing([])
    assert closing.carried == {} and closing.commits[pin] == 100  # the ghosts are not carried again


def test_a_closing_batch_records_the_idx_of_what_it_carries():
    """Pending records give their idx; carried records not read back yet keep the idx their batch recorded."""
    tp = TopicPartition("t.geo", 1)
    state = PartitionLedger(cursor=60, skip_below=60, carried=frozenset({40, 45, 50}), seen=41,
                            carried_idx={45: 7, 50: 9})  # 40: from a manifest written before idx were kept
    ledger = Ledger({tp: state})
    record = Record("geo", "t.geo", 1, 40, 3, {"idx": 3})  # read back: pending again
    closing = ledger.closing([record])
    assert closing.carried == {"t.geo": {"1": [40, 45, 50]}}
    assert closing.carried_idx == {"t.geo": {"1": {"40": 3, "45": 7, "50": 9}}}


def test_the_manifest_keeps_the_carried_idx_and_resume_points_read_them(tmp_path):
    from pinpipe.extraction.batch_store import Manifest, resume_points

    manifest = Manifest(batch_id="1", created="", rows=0, duplicates=0, rejected=0, pending=1,
                        offsets={"t.pin": {"0": [0, 9]}}, cursors={"t.pin": {"0": 10}}, carried={"t.pin": {"0": [4]}},
                        carried_idx={"t.pin": {"0": {"4": 77}}})
    assert Manifest.from_json(manifest.to_json()) == manifest
    batch_store.write_batch(tmp_path, manifest, [], [])
    [read] = batch_store.read_manifests(tmp_path)
    assert resume_points([read])[("t.pin", 0)].carried_idx == {4: 77}
    older = {k: v for k, v in manifest.to_json().items() if k != "carried_idx"}  # written before idx were kept
    assert resume_points([Manifest.from_json(older)])[("t.pin", 0)].carried_idx == {}


def test_the_carried_siblings_of_a_deleted_record_are_no_longer_pending_unless_another_copy_is_carried(caplog):
    from pinpipe.extraction.group import without_deleted

    # idx 7: pin deleted (offset 3), geo and user carried. idx 8: pin deleted (offset 4) but posted again (offset 30,
    # carried), so its geo may still complete. idx 9: geo carried, its pin's offset unknown (an older manifest).
    points = {("t.pin", 0): PartitionResume("b", 40, frozenset({3, 4, 30}), {3: 7, 4: 8, 30: 8}),
              ("t.geo", 0): PartitionResume("b", 40, frozenset({11, 12, 13}), {11: 7, 12: 8, 13: 9}),
              ("t.user", 0): PartitionResume("b", 40, frozenset({21}), {21: 7}),
              ("t.geo", 1): PartitionResume("b", 40, frozenset({14}), {14: 7})}  # idx 7 of another partition
    kept = without_deleted(dict(points), {TopicPartition("t.pin", 0): 10, TopicPartition("t.geo", 0): 0,
                                          TopicPartition("t.user", 0): 0, TopicPartition("t.geo", 1): 0})
    assert kept[("t.pin", 0)].carried == {30}
    assert kept[("t.geo", 0)].carried == {12, 13}
    assert kept[("t.user", 0)].carried == frozenset()
    assert kept[("t.geo", 1)].carried == {14}
    assert "t.pin[0] 2 (offsets 3..4, log starts at 10); no longer pending, nor 2 records of the other topics" \
        in caplog.text


def test_a_batch_that_cannot_be_written_says_so_and_leaves_nothing_behind(tmp_path, monkeypatch):
    """A full disk while a batch is written: BatchWriteError names the batch, the folder and the reason, and its
    temp folder (the space it took) is gone; the batches written before stay as they were."""
    batch_store.write_batch(tmp_path, _manifest("1", 10, None), [], [])
    written = batch_store.write_csv

    def fills_the_disk(path, kind, triplets):
        written(path, kind, triplets)
        if kind == "geo":
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(batch_store, "write_csv", fills_the_disk)
    with pytest.raises(batch_store.BatchWriteError) as raised:
        batch_store.write_batch(tmp_path, _manifest("2", 20, None), [], [])
    assert str(raised.value).startswith(f"cannot write batch 2 (0 triplets) in {tmp_path / 'batches'}: No space "
                                        "left on device. Nothing is lost")
    assert sorted(p.name for p in (tmp_path / "batches").iterdir()) == ["1"]


def test_csv_files_that_cannot_be_pointed_at_a_written_batch_say_so(tmp_path, monkeypatch):
    path = batch_store.write_batch(tmp_path, _manifest("1", 10, None), [], [])

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(batch_store, "rebuild_rejected", no_space)
    with pytest.raises(batch_store.BatchWriteError, match=f"batch 1 is written, but the CSV files in {tmp_path} "
                                                          "could not be pointed at it: No space left on device"):
        batch_store.publish(tmp_path, path)
    assert not list(tmp_path.glob(".*.tmp-*"))
