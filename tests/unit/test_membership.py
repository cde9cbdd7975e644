"""Static-membership slots: a restarted extractor gets its dead predecessor's id, a concurrent one another."""
from __future__ import annotations

import signal
import subprocess
import sys
import time

from pinpipe.extraction import membership
from pinpipe.extraction.group import GroupJoinTimeout


def test_concurrent_extractors_get_different_slots_and_a_released_slot_is_reused(tmp_path):
    first = membership.claim(tmp_path, "grp")
    second = membership.claim(tmp_path, "grp")
    assert first.instance_id.endswith("-0") and second.instance_id.endswith("-1")
    assert first.instance_id.startswith("grp-") and first.instance_id[:-2] == second.instance_id[:-2]
    first.release()
    again = membership.claim(tmp_path, "grp")
    assert again.instance_id == first.instance_id
    other_group = membership.claim(tmp_path, "other")
    assert other_group.instance_id.startswith("other-") and other_group.instance_id.endswith("-0")
    for slot in (second, again, other_group):
        slot.release()


def test_a_killed_holder_leaves_its_slot_to_the_next_start(tmp_path):
    code = ("import sys, time; from pinpipe.extraction import membership; "
            f"s = membership.claim({str(tmp_path)!r}, 'grp'); print(s.instance_id, flush=True); time.sleep(60)")
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    held = child.stdout.readline().strip()
    assert membership.claim(tmp_path, "grp").instance_id.endswith("-1")  # taken while the child lives
    child.send_signal(signal.SIGKILL)
    child.wait()
    time.sleep(0.1)
    assert membership.claim(tmp_path, "grp").instance_id == held


def test_the_join_timeout_says_the_broker_answers_and_names_the_group():
    text = GroupJoinTimeout("pin-batch-extractor", "pin-batch-extractor-vm-0", 60, True, "localhost:9092").text
    assert "the broker at localhost:9092 answers" in text
    assert "consumer group 'pin-batch-extractor'" in text and "--describe --group pin-batch-extractor" in text
    assert "is the broker running" not in text
    down = GroupJoinTimeout("g", "g-vm-0", 60, False, "localhost:9092").text
    assert down.startswith("cannot reach Kafka at localhost:9092") and "./start_kafka.sh" in down
