"""What the extractor says when its consumer group will not assign it partitions."""
from __future__ import annotations

from pinpipe.extraction.group import GroupJoinTimeout


def test_the_join_timeout_says_the_broker_answers_and_names_the_group():
    text = GroupJoinTimeout("pin-batch-extractor", None, 60, True, "localhost:9092").text
    assert "the broker at localhost:9092 answers" in text
    assert "consumer group 'pin-batch-extractor'" in text and "--describe --group pin-batch-extractor" in text
    assert "is the broker running" not in text
    down = GroupJoinTimeout("g", "g-vm-0", 60, False, "localhost:9092").text
    assert down.startswith("cannot reach Kafka at localhost:9092") and "./start_kafka.sh" in down


def test_a_cluster_with_a_minority_answering_is_named_as_such():
    servers = "localhost:9092,localhost:9102,localhost:9112"
    text = GroupJoinTimeout("g", None, 60, True, servers, ["localhost:9112"]).text
    assert text.startswith("only 1 of the 3 Kafka servers listed answer (localhost:9112)"), text
    assert "no controller quorum" in text and "./start_kafka.sh --brokers 3" in text
    # a majority answering, or a single server: the group's own wait, as before
    for bootstrap, up in ((servers, ["localhost:9092", "localhost:9112"]), ("localhost:9092", ["localhost:9092"])):
        assert GroupJoinTimeout("g", None, 60, True, bootstrap, up).text.startswith(f"the broker at {bootstrap}")
