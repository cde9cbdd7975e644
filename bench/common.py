"""Shared by the benchmark scripts."""
from __future__ import annotations

import uuid

from kafka.admin import KafkaAdminClient, NewTopic

from pinpipe.schema import KINDS


def fresh_topics(bootstrap: str, prefix: str, partitions: int = 3) -> dict[str, str]:
    """Three new co-partitioned topics (kind -> name), so every run starts from empty logs."""
    suffix = uuid.uuid4().hex[:6]
    topics = {kind: f"{prefix}_{suffix}.{kind}" for kind in KINDS}
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(name, partitions, 1) for name in topics.values()])
    finally:
        admin.close()
    return topics
