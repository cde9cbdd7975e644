"""Where the notebook reads and writes: a location is a string, kept as the user gave it.

Spark is handed the string itself (`/Volumes/…`, `dbfs:/…`, `s3a://…`, `abfss://…`, `gs://…`, `hdfs://…`),
never a `pathlib.Path`, which folds `s3a://b/x` into `s3a:/b/x`. Python (reading a header, writing the small
result files) gets the path the driver can open, when there is one: `dbfs:/x` is `/dbfs/x` on a Databricks
driver, an object-store URI has none.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass

# "s3a://bucket/x", "dbfs:/x", "file:/x": a scheme of two or more characters, so "C:/x" is not one.
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):")


class LocationError(ValueError):
    """A location that cannot be used where the notebook runs."""


@dataclass(frozen=True)
class Location:
    """One place, as Spark names it and as Python on the driver can open it (None: Python cannot)."""

    spark: str
    local: str | None

    def child(self, name: str) -> Location:
        return Location(join(self.spark, name), None if self.local is None else join(self.local, name))


def scheme(location: str) -> str | None:
    match = _SCHEME.match(location)
    return match.group(1).lower() if match else None


def join(location: str, name: str) -> str:
    """`location/name`, for paths and URIs alike."""
    return f"{location.rstrip('/')}/{name}" if location.rstrip("/") else f"/{name}"


def sibling(location: str, name: str) -> str:
    """The location `name` beside `location` (`s3a://b/out/results` -> `s3a://b/out/cleaned`).

    A bucket or container root has no parent inside its store, so there it is the child instead."""
    trimmed = location.rstrip("/") or "/"
    head, slash, _ = trimmed.rpartition("/")
    if not slash:  # a relative name with no directory
        return name
    if re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]+:/?", head) or (scheme(trimmed) and head.endswith(":")):
        return join(trimmed, name)
    return join(head, name) if head else f"/{name}"


def resolve(location: str, databricks: bool) -> Location:
    """Where `location` is for Spark and for the driver's Python, on Databricks or elsewhere.

    Off Databricks a relative path is made absolute (a Spark Connect server or a cluster's executors do not
    share the notebook's working directory). On Databricks a relative path has no fixed meaning (serverless
    gives no working directory guarantee), so it is refused.
    """
    text = str(location).strip()
    if not text:
        raise LocationError(
            "empty location: give a directory such as batch_data or /Volumes/<catalog>/<schema>/<volume>")
    kind = scheme(text)
    if kind == "dbfs":
        path = "/" + text[len("dbfs:"):].lstrip("/")
        return Location(text, "/dbfs" + path if databricks else None)
    if kind == "file":
        path = re.sub(r"^file:(//)?", "", text)
        return Location(text, path if path.startswith("/") else "/" + path)
    if kind is not None:  # s3a, s3, abfss, wasbs, gs, hdfs, …: only Spark can reach it
        return Location(text, None)
    if not databricks:
        absolute = os.path.abspath(text)
        return Location(absolute, absolute)
    if not text.startswith("/"):
        raise LocationError(f"relative location {text!r} on Databricks: give an absolute one, such as "
                            f"/Volumes/<catalog>/<schema>/<volume>/{text}")
    if text.startswith("/dbfs/"):
        return Location("dbfs:" + text[len("/dbfs"):], text)
    if text.startswith("/Volumes/"):  # Unity Catalog volumes: the same path for Spark and Python
        return Location(text, text)
    if text.startswith("/Workspace/"):  # workspace files: Spark reads them through the driver's file system
        return Location("file:" + text, text)
    # Any other absolute path (/FileStore/tables/…) is in DBFS, the default file system of Databricks' Spark.
    return Location("dbfs:" + text, "/dbfs" + text)
