"""What replication costs on one machine: the emulator's triplets/s and the extractor's records/s against one
broker and against a three-broker cluster (replication factor 3, min.insync.replicas 2), in the same run.

The emulator runs twice per setup: as fast as it can (`--rate 0`, `--concurrency` requests in flight) and at a
set rate (`--rate R` for about 20 s: what it reached of R). With --before REV the emulator and poster of git
revision REV (a temporary worktree) run too, on the same Kafka, after the working tree's; the extractor is the
working tree's. Each setup gets its own private Kafka (start_kafka.sh in a temporary state directory, stopped
afterwards) and the working tree's embedded PostgreSQL; the setups run one after the other so they do not share
the cores.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import platform
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from common import fresh_topics, revision_tree

from pinpipe.common.config import PROJECT_ROOT, get_settings
from pinpipe.extraction.extractor import Extractor


def kafka_env(state: Path, port: int, brokers: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("KAFKA_DATA_DIR", "KAFKA_LOG_DIR")}
    return env | {"KAFKA_STATE_DIR": str(state), "KAFKA_PORT": str(port), "KAFKA_CONTROLLER_PORT": str(port + 1),
                  "KAFKA_BROKERS": str(brokers)}


def emulate(root: Path, env: dict[str, str], count: int, rate: float) -> float:
    """Triplets/s the emulator of the tree at `root` reached posting `count` at `rate` (0: as fast as it can)."""
    run = subprocess.run([sys.executable, str(root / "data_poster.py"), "--count", str(count), "--rate", str(rate)],
                         env=env | {"PYTHONPATH": str(root)}, cwd=root, capture_output=True, text=True, check=True)
    match = re.search(r"acknowledged in ([\d.]+) s", run.stderr)
    return count / float(match.group(1)) if match else float("nan")


def measure(brokers: int, port: int, args, sides: list[tuple[str, Path]]) -> dict[str, float]:
    """Each side's emulator at rate 0 and at args.rate, then the extractor's records/s, against `brokers` brokers."""
    figures = {}
    with tempfile.TemporaryDirectory(prefix=f"bench-kafka{brokers}-") as tmp:
        env = kafka_env(Path(tmp) / "kafka", port, brokers)
        subprocess.run([str(PROJECT_ROOT / "start_kafka.sh")], env=env, check=True, capture_output=True)
        try:
            bootstrap = ",".join(f"localhost:{port + 10 * n}" for n in range(brokers))
            topics = fresh_topics(bootstrap, "benchc", replicas=min(brokers, 3))
            suffix = topics["pin"].split(".")[0]
            run_env = env | {"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "PIN_TOPIC": topics["pin"],
                             "GEO_TOPIC": topics["geo"], "USER_TOPIC": topics["user"],
                             "POSTER_PORT": str(port + 500), "TRANSACTIONAL_ID": f"bench-{suffix}",
                             "PGDATA_DIR": str(get_settings().pgdata_dir)}
            for label, root in sides if brokers == 1 else sides[::-1]:  # neither side always first
                print(f"  {label}: emulator --rate 0, then --rate {args.rate:g}", flush=True)
                figures[f"{label} rate 0"] = emulate(root, run_env, args.triplets, 0)
                figures[f"{label} rate"] = emulate(root, run_env, max(1, int(args.rate * 20)), args.rate)
            with tempfile.TemporaryDirectory() as out:
                settings = get_settings(kafka_bootstrap_servers=bootstrap, pin_topic=topics["pin"],
                                        geo_topic=topics["geo"], user_topic=topics["user"], batch_dir=out)
                # Batches of `batch` distinct idx: the emulator re-draws idx, so stop well before the data ends.
                result = Extractor(settings, count=args.batch, batches=max(1, int(args.triplets * 0.6) // args.batch),
                                   timeout_s=10, group_id=f"bench-{suffix}").run()
            figures["extractor"], figures["records"] = result.records / result.seconds, result.records
            return figures
        finally:
            subprocess.run([str(PROJECT_ROOT / "stop_kafka.sh")], env=env, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--triplets", type=int, default=10_000, help="triplets the emulator posts (default 10,000)")
    parser.add_argument("--rate", type=float, default=100, help="the set rate of the second emulator run (default "
                                                                  "100 triplets/s, for about 20 s)")
    parser.add_argument("--batch", type=int, default=1_000, help="extractor batch size (default 1,000)")
    parser.add_argument("--port", type=int, default=39092, help="first broker port of the private Kafkas")
    parser.add_argument("--before", metavar="REV", help="also run the emulator and poster of git revision REV")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}; "
          f"broker(s), poster, emulator and extractor share the cores", flush=True)
    with contextlib.ExitStack() as stack:
        sides = [("after" if args.before else "working tree", PROJECT_ROOT)]
        if args.before:
            tree = revision_tree(stack, args.before)
            sides.append((f"before ({args.before})", tree))
        figures = {}
        for brokers in (1, 3):
            print(f"measuring {brokers} broker{'s' if brokers > 1 else ''} ...", flush=True)
            figures[brokers] = measure(brokers, args.port, args, sides)
    one, three = figures[1], figures[3]
    print(f"{'':50}{'1 broker':>10}{'3 brokers (RF 3, min ISR 2)':>30}{'3 / 1':>8}")
    for label, _ in sides:
        for key, what in ((f"{label} rate 0", "emulator --rate 0, triplets/s"),
                          (f"{label} rate", f"emulator --rate {args.rate:g}, triplets/s")):
            name = f"{what} ({label})" if args.before else what
            print(f"{name:50}{one[key]:>10,.0f}{three[key]:>30,.0f}{three[key] / one[key]:>8.2f}")
    print(f"{'extractor, records/s':50}{one['extractor']:>10,.0f}{three['extractor']:>30,.0f}"
          f"{three['extractor'] / one['extractor']:>8.2f}   ({three['records']:,} records, batches of {args.batch:,})")


if __name__ == "__main__":
    main()
