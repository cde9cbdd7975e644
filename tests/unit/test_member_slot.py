"""The extractor's default static member id: one slot per running extractor, the same one after a crash."""
from __future__ import annotations

import subprocess
import sys
import time

from pinpipe.extraction.group import DYNAMIC, MemberSlot, member_id_for


def test_extractors_side_by_side_get_different_ids_and_a_released_slot_is_reused(tmp_path):
    first, second = MemberSlot("g", tmp_path), MemberSlot("g", tmp_path)
    assert (first.number, second.number) == (0, 1)
    assert first.instance_id != second.instance_id
    first.release()
    again = MemberSlot("g", tmp_path)  # a restart of the first: its place, so its membership
    assert again.number == 0 and again.instance_id == first.instance_id
    again.release()
    second.release()


def test_ids_differ_between_batch_directories_and_do_not_depend_on_the_group(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a, b, other_group = MemberSlot("g", tmp_path / "a"), MemberSlot("g", tmp_path / "b"), MemberSlot("h", tmp_path / "a")
    assert a.instance_id != b.instance_id  # two extractors of one group, each with its own directory
    assert other_group.number == 0 and other_group.instance_id == a.instance_id  # ids are unique per group
    for slot in (a, b, other_group):
        slot.release()


def test_a_slot_held_by_a_process_killed_with_sigkill_is_free_again(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; "
         "from pinpipe.extraction.group import MemberSlot; s = MemberSlot('g', Path(sys.argv[1])); "
         "print(s.instance_id, flush=True); time.sleep(60)", str(tmp_path)],
        stdout=subprocess.PIPE, text=True)
    held = holder.stdout.readline().strip()
    try:
        assert MemberSlot("g", tmp_path).number == 1  # slot 0 is the live process's (released right away)
    finally:
        holder.kill()
        holder.wait()
    deadline = time.monotonic() + 5
    slot = MemberSlot("g", tmp_path)
    while slot.number != 0 and time.monotonic() < deadline:
        slot.release()
        time.sleep(0.1)
        slot = MemberSlot("g", tmp_path)
    assert slot.number == 0 and slot.instance_id == held
    slot.release()


def test_an_explicit_id_is_used_as_given_and_dynamic_means_none(tmp_path):
    assert member_id_for("crash-test", "g", tmp_path) == ("crash-test", None)
    assert member_id_for(DYNAMIC, "g", tmp_path) == (None, None)
    instance_id, slot = member_id_for(None, "g", tmp_path)
    assert slot is not None and instance_id == slot.instance_id and instance_id.startswith("extractor-")
    slot.release()
