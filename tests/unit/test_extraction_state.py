"""What a closing batch lists as carried (pure logic: partition state and pending records, no broker)."""
from __future__ import annotations

from kafka.structs import TopicPartition

from pinpipe.extraction.alignment import Record
from pinpipe.extraction.extractor import _PartitionState, carried_offsets


def pending(topic: str, partition: int, offset: int) -> Record:
    return Record("pin", topic, partition, offset, offset, {"idx": offset})


def test_pending_records_are_carried_in_order():
    partitions = {TopicPartition("t.pin", 0): _PartitionState(cursor=10, seen=12)}
    assert carried_offsets(partitions, [pending("t.pin", 0, 12), pending("t.pin", 0, 3)]) == {"t.pin": {"0": [3, 12]}}


def test_carried_records_not_read_back_yet_stay_carried():
    """A restarted extractor replays the carried records of the last batch; if its next batch fills up
    before the replay of a partition reaches them, they must be carried again, not forgotten."""
    tp = TopicPartition("t.pin", 1)
    state = _PartitionState(cursor=964, skip_below=964, carried=frozenset({87, 938, 947, 963}), seen=940)
    # 87 and 938 were read back and are pending again; 947 and 963 lie beyond what was read so far.
    assert carried_offsets({tp: state}, [pending("t.pin", 1, 87), pending("t.pin", 1, 938)]) == {
        "t.pin": {"1": [87, 938, 947, 963]}}


def test_carried_records_read_back_and_completed_are_not_carried():
    tp = TopicPartition("t.geo", 2)
    state = _PartitionState(cursor=50, skip_below=50, carried=frozenset({40, 45}), seen=49)
    assert carried_offsets({tp: state}, [pending("t.geo", 2, 45)]) == {"t.geo": {"2": [45]}}  # 40 was written
    untouched = _PartitionState(cursor=50, skip_below=50, carried=frozenset({40, 45}))  # nothing read yet
    assert carried_offsets({tp: untouched}, []) == {"t.geo": {"2": [40, 45]}}
