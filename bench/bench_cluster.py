"""What replication costs on one machine: the emulator's triplets/s and the extractor's records/s against one
broker and against a three-broker cluster (replication factor 3, min.insync.replicas 2), in the same run.

Each setup gets its own private Kafka (start_kafka.sh in a temporary state directory, stopped afterwards) and
the embedded PostgreSQL; the setups run one after the other so they do not share the cores.
"""
from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from pinpipe.common.config import PROJECT_ROOT, get_settings
from pinpipe.common.topics import fresh_topics
from pinpipe.extraction.extractor import Extractor


def kafka_env(state: Path, port: int, brokers: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("KAFKA_DATA_DIR", "KAFKA_LOG_DIR")}
    return env | {"KAFKA_STATE_DIR": str(state), "KAFKA_PORT": str(port), "KAFKA_CONTROLLER_PORT": str(port + 1),
                  "KAFKA_BROKERS": str(brokers)}


def measure(brokers: int, port: int, triplets: int, batch: int) -> tuple[float, float, int]:
    """(emulator triplets/s, extractor records/s, records the extractor read) against `brokers` brokers."""
    with tempfile.TemporaryDirectory(prefix=f"bench-kafka{brokers}-") as tmp:
        env = kafka_env(Path(tmp) / "kafka", port, brokers)
        subprocess.run([str(PROJECT_ROOT / "start_kafka.sh")], env=env, check=True, capture_output=True)
        try:
            bootstrap = ",".join(f"localhost:{port + 10 * n}" for n in range(brokers))
            topics = fresh_topics(bootstrap, "benchc", replicas=min(brokers, 3))
            suffix = topics["pin"].split(".")[0]
            run_env = env | {"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "PIN_TOPIC": topics["pin"],
                             "GEO_TOPIC": topics["geo"], "USER_TOPIC": topics["user"],
                             "POSTER_PORT": str(port + 500), "TRANSACTIONAL_ID": f"bench-{suffix}"}
            emulator = subprocess.run([sys.executable, str(PROJECT_ROOT / "data_poster.py"), "--count", str(triplets),
                                       "--rate", "0"], env=run_env, capture_output=True, text=True, check=True)
            match = re.search(r"acknowledged in [\d.]+ s \((\d+)/s\)", emulator.stderr)
            emulator_rate = float(match.group(1)) if match else float("nan")
            with tempfile.TemporaryDirectory() as out:
                settings = get_settings(kafka_bootstrap_servers=bootstrap, pin_topic=topics["pin"],
                                        geo_topic=topics["geo"], user_topic=topics["user"], batch_dir=out)
                # Batches of `batch` distinct idx: the emulator re-draws idx, so stop well before the data ends.
                result = Extractor(settings, count=batch, batches=max(1, int(triplets * 0.6) // batch), timeout_s=10,
                                   group_id=f"bench-{suffix}").run()
            return emulator_rate, result.records / result.seconds, result.records
        finally:
            subprocess.run([str(PROJECT_ROOT / "stop_kafka.sh")], env=env, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--triplets", type=int, default=10_000, help="triplets the emulator posts (default 10,000)")
    parser.add_argument("--batch", type=int, default=1_000, help="extractor batch size (default 1,000)")
    parser.add_argument("--port", type=int, default=39092, help="first broker port of the private Kafkas")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}; "
          f"broker(s), poster, emulator and extractor share the cores", flush=True)
    figures = {}
    for brokers in (1, 3):
        print(f"measuring {brokers} broker{'s' if brokers > 1 else ''} ...", flush=True)
        figures[brokers] = measure(brokers, args.port, args.triplets, args.batch)
    (e1, x1, _), (e3, x3, n3) = figures[1], figures[3]
    print(f"{'':32}{'1 broker':>12}{'3 brokers (RF 3, min ISR 2)':>30}{'3 / 1':>8}")
    print(f"{'emulator --rate 0, triplets/s':32}{e1:>12,.0f}{e3:>30,.0f}{e3 / e1:>8.2f}")
    print(f"{'extractor, records/s':32}{x1:>12,.0f}{x3:>30,.0f}{x3 / x1:>8.2f}   ({n3:,} records, batches of {args.batch:,})")


if __name__ == "__main__":
    main()
