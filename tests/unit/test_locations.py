"""Locations stay strings: URIs reach Spark as given, and Python gets the driver's path where there is one."""
from __future__ import annotations

import os

import pytest

from pinpipe.spark.locations import Location, LocationError, join, resolve, sibling


@pytest.mark.parametrize("uri", ["s3a://bucket/out", "abfss://c@acct.dfs.core.windows.net/out", "gs://b/out",
                                 "hdfs://namenode:8020/data/out", "s3://bucket/deep/out/"])
@pytest.mark.parametrize("databricks", [False, True])
def test_object_store_uris_reach_spark_unchanged_and_python_cannot_write_them(uri, databricks):
    assert resolve(uri, databricks) == Location(uri, None)


def test_joining_a_uri_keeps_its_double_slash():
    assert join("s3a://bucket/out", "q1.csv") == "s3a://bucket/out/q1.csv"
    assert join("s3a://bucket/out/", "q1.csv") == "s3a://bucket/out/q1.csv"
    assert resolve("s3a://bucket/out", False).child("pin").spark == "s3a://bucket/out/pin"


@pytest.mark.parametrize("location, expected", [
    ("s3a://bucket/out/results", "s3a://bucket/out/cleaned"),
    ("s3a://bucket", "s3a://bucket/cleaned"),
    ("dbfs:/FileStore/results", "dbfs:/FileStore/cleaned"),
    ("/Volumes/workspace/default/pinterest/results/", "/Volumes/workspace/default/pinterest/cleaned"),
    ("batch_data/results", "batch_data/cleaned"),
    ("results", "cleaned"),
    ("/results", "/cleaned"),
])
def test_sibling_is_beside_the_location(location, expected):
    assert sibling(location, "cleaned") == expected


def test_dbfs_uri_and_fuse_path_are_the_same_place_on_databricks():
    assert resolve("dbfs:/FileStore/results", True) == Location("dbfs:/FileStore/results", "/dbfs/FileStore/results")
    assert resolve("/dbfs/FileStore/results", True) == Location("dbfs:/FileStore/results", "/dbfs/FileStore/results")
    # the DBFS root without a scheme, as the original project's /FileStore/tables/
    assert resolve("/FileStore/tables/", True) == Location("dbfs:/FileStore/tables/", "/dbfs/FileStore/tables/")


def test_volumes_are_one_path_for_spark_and_python():
    path = "/Volumes/workspace/default/pinterest"
    assert resolve(path, True) == Location(path, path)
    assert resolve(path, False) == Location(path, path)


def test_off_databricks_dbfs_is_not_writable_by_python_and_dbfs_paths_are_plain_paths():
    assert resolve("dbfs:/FileStore/x", False) == Location("dbfs:/FileStore/x", None)
    assert resolve("/dbfs/FileStore/x", False) == Location("/dbfs/FileStore/x", "/dbfs/FileStore/x")


def test_relative_paths_are_made_absolute_off_databricks(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    expected = os.path.join(str(tmp_path), "batch_data", "results")
    assert resolve("batch_data/results", False) == Location(expected, expected)


def test_relative_paths_are_refused_on_databricks_with_an_example():
    with pytest.raises(LocationError, match=r"/Volumes/<catalog>/<schema>/<volume>/batch_data"):
        resolve("batch_data", True)


def test_file_uris_are_local_for_python():
    assert resolve("file:///tmp/out", False) == Location("file:///tmp/out", "/tmp/out")
    assert resolve("file:/tmp/out", True) == Location("file:/tmp/out", "/tmp/out")
