"""Shared by the benchmark scripts."""
from __future__ import annotations

from pinpipe.common.topics import fresh_topics  # noqa: F401  (three new co-partitioned topics per run)
