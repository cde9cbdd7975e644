"""./run_pipeline.sh end to end with a small N, on private ports and directories."""
from __future__ import annotations

import csv
import json
import os
import subprocess

import pytest

from pinpipe.common.config import PROJECT_ROOT
from tests.conftest import TEST_KAFKA_PORT, free_port


@pytest.mark.slow
def test_run_pipeline_end_to_end(tmp_path):
    count = 300  # 300 draws from 11,154 idx: repeats are likely, and must be accounted for
    batch_dir = tmp_path / "batch_data"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS")}
    env.update(KAFKA_PORT=str(TEST_KAFKA_PORT + 300), KAFKA_CONTROLLER_PORT=str(TEST_KAFKA_PORT + 301),
               KAFKA_STATE_DIR=str(tmp_path / "kafka"), BATCH_DIR=str(batch_dir), PGDATA_DIR=str(tmp_path / "pg"),
               POSTER_PORT=str(free_port()), PIPELINE_COUNT=str(count), STREAM_DIR=str(tmp_path / "stream_data"))
    result = subprocess.run([str(PROJECT_ROOT / "run_pipeline.sh"), "--stream"], env=env, capture_output=True, text=True,
                            timeout=900, cwd=PROJECT_ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "row counts agree across stages" in result.stdout
    assert f"triplets acknowledged by Kafka: {count}" in result.stdout

    [manifest] = [json.loads(p.read_text()) for p in (batch_dir / "batches").glob("*/manifest.json")]
    # The emulator samples with replacement: posted = distinct idx written + repeated idx.
    assert manifest["rows"] + manifest["duplicates"] // 3 == count and manifest["duplicates"] % 3 == 0
    idx = {}
    for kind in ("pin", "geo", "user"):
        with open(batch_dir / f"{kind}_data.csv", encoding="utf-8", newline="") as handle:
            idx[kind] = [row["idx"] for row in csv.DictReader(handle)]
    assert idx["pin"] == idx["geo"] == idx["user"] and len(set(idx["pin"])) == manifest["rows"]
    summary = json.loads((batch_dir / "results" / "summary.json").read_text())
    assert summary["input_rows"] == {"pin": manifest["rows"], "geo": manifest["rows"], "user": manifest["rows"]}
    assert len(list((batch_dir / "results").glob("q*.csv"))) == 9
    assert (batch_dir / "report.html").stat().st_size > 10_000
    # --stream: the streaming notebook read the same topics; on fresh topics it found the batch's idx.
    stream = json.loads((tmp_path / "stream_data" / "tables" / "summary.json").read_text())
    assert stream["complete_idx"] == manifest["rows"] and stream["rejected"] == 0
    assert stream["cleaned_pin"] == count  # every post, repeats included (the batch counts those as duplicates)
    assert f"{manifest['rows']} distinct complete idx (batch: {manifest['rows']}" in result.stdout
    # What it started, it stopped.
    assert not (tmp_path / "kafka" / "kafka.pid").exists()
    assert not (tmp_path / "pg" / "postmaster.pid").exists()
