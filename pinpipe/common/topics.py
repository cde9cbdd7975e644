"""Creating the pipeline's three topics from Python (tests, benchmarks, a broker you run yourself):
co-partitioned (one partition count), replicated min(brokers, 3) ways with min.insync.replicas 2 at three."""
from __future__ import annotations

import time
import uuid

from pinpipe.common.schema import KINDS


def create_topics(bootstrap: str, names: dict[str, str], partitions: int = 3, replicas: int = 1,
                  timeout_s: float = 30.0) -> dict[str, str]:
    """Create `names` (kind -> topic) with equal partition counts, and return them once every partition has a
    leader: a consumer group that joins before then is assigned nothing (its leader sees no partitions)."""
    from kafka.admin import KafkaAdminClient, NewTopic

    configs = {"min.insync.replicas": "2"} if replicas >= 3 else {}
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(name, partitions, replicas, topic_configs=configs) for name in names.values()])
        deadline = time.monotonic() + timeout_s
        while not _all_led(admin, list(names.values()), partitions):
            if time.monotonic() > deadline:
                raise TimeoutError(f"topics {', '.join(names.values())} have no leaders after {timeout_s:g} s")
            time.sleep(0.2)
    finally:
        admin.close()
    return names


def _all_led(admin, topics: list[str], partitions: int) -> bool:
    described = admin.describe_topics(topics)
    return len(described) == len(topics) and all(
        len(t["partitions"]) == partitions and all(p["leader_id"] >= 0 for p in t["partitions"]) for t in described)


def fresh_topics(bootstrap: str, prefix: str, partitions: int = 3, replicas: int = 1) -> dict[str, str]:
    """Three new topics named `<prefix>_<random>.<kind>`, so a run starts from empty logs."""
    suffix = uuid.uuid4().hex[:8]
    return create_topics(bootstrap, {kind: f"{prefix}_{suffix}.{kind}" for kind in KINDS}, partitions, replicas)
