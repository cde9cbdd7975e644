"""Where the notebook writes, locally and on Databricks."""
from __future__ import annotations


def test_output_paths_follow_dbfs_on_databricks_only(monkeypatch):
    from pathlib import Path

    from pinpipe.spark_io import output_path, spark_path

    monkeypatch.delenv("DATABRICKS_RUNTIME_VERSION", raising=False)
    assert output_path("batch_data/results") == Path("batch_data/results")
    monkeypatch.setenv("DATABRICKS_RUNTIME_VERSION", "15.4")
    assert output_path("batch_data/results") == Path("/dbfs/FileStore/batch_data/results")
    assert output_path("/tmp/x") == Path("/tmp/x")
    assert spark_path(Path("/dbfs/FileStore/batch_data/cleaned/pin")) == "dbfs:/FileStore/batch_data/cleaned/pin"
    assert spark_path(Path("/tmp/cleaned/pin")) == "/tmp/cleaned/pin"
