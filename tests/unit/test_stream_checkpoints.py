"""The streaming tables against their checkpoints: a table that holds batches its checkpoint never began is
refused before any query starts (Spark's file sink would skip those batch ids and drop their records)."""
from __future__ import annotations

from pathlib import Path

import pytest

from pinpipe.spark.streaming import TABLES, CheckpointMismatch, StreamConfig, check_tables_match_checkpoints


def config(root: Path, output: str | None = None) -> StreamConfig:
    topics = {"pin": "p", "geo": "g", "user": "u"}
    return StreamConfig("localhost:9092", topics, output or str(root / "tables"), str(root / "checkpoints"))


def entries(directory: Path, *names: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name in names:
        (directory / name).write_text("v1\n")


def test_fresh_folders_and_matching_logs_start(tmp_path):
    check_tables_match_checkpoints(config(tmp_path))  # nothing there yet
    for name in TABLES[:4]:
        entries(tmp_path / "tables" / name / "_spark_metadata", "0", ".0.crc", "1")
        entries(tmp_path / "checkpoints" / name / "offsets", "0", "1", "2")  # batch 2 begun, not yet in the sink
    (tmp_path / "tables" / "posts_per_minute" / "batch_id=1").mkdir(parents=True)
    entries(tmp_path / "checkpoints" / "posts_per_minute" / "offsets", "0", "1")
    check_tables_match_checkpoints(config(tmp_path))


def test_a_table_whose_checkpoint_was_removed_is_refused_by_name(tmp_path):
    entries(tmp_path / "tables" / "cleaned_geo" / "_spark_metadata", "0")
    with pytest.raises(CheckpointMismatch) as caught:
        check_tables_match_checkpoints(config(tmp_path))
    message = str(caught.value)
    assert f"{tmp_path}/tables/cleaned_geo holds batches up to 0" in message
    assert f"{tmp_path}/checkpoints/cleaned_geo has none" in message


def test_a_checkpoint_behind_its_compacted_sink_log_is_refused(tmp_path):
    entries(tmp_path / "tables" / "rejected" / "_spark_metadata", "9.compact", "10")
    entries(tmp_path / "checkpoints" / "rejected" / "offsets", "0")
    with pytest.raises(CheckpointMismatch, match="holds batches up to 10.*only began up to 0"):
        check_tables_match_checkpoints(config(tmp_path))


def test_live_counts_of_another_checkpoint_are_refused(tmp_path):
    (tmp_path / "tables" / "posts_per_minute" / "batch_id=3").mkdir(parents=True)
    with pytest.raises(CheckpointMismatch, match="posts_per_minute holds batches up to 3"):
        check_tables_match_checkpoints(config(tmp_path))


def test_an_object_store_table_is_not_checked(tmp_path):
    check_tables_match_checkpoints(config(tmp_path, output="s3a://bucket/tables"))
