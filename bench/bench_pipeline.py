"""`./run_pipeline.sh` end to end, warm: the first run fills what a fresh clone lacks (venv, Kafka's jars, the
embedded database), the next ones are timed. Prints each run's stage times as the pipeline reports them, and
the Spark stage split into the notebook's own cells (from the executed notebook papermill writes):
the session cell (Spark's start) and the rest.

--compare prestart: each timed run is a pair, the notebook's kernel and Spark session started at the beginning
(the default) and only once the batch is written (PIPELINE_PRESTART_SPARK=0), in alternating order.
--compare warm-up: the same with the early session's warm-up on a tiny batch (the default) and without
(PIPELINE_WARM_UP=0).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import time

from pinpipe.common.config import PROJECT_ROOT


def notebook_split(executed: str) -> tuple[float, float]:
    """(seconds in the cell that starts the Spark session, seconds in every other cell) of an executed notebook."""
    session = rest = 0.0
    for cell in json.load(open(executed))["cells"]:
        seconds = cell.get("metadata", {}).get("papermill", {}).get("duration") or 0.0
        if "get_spark(" in "".join(cell.get("source", "")):
            session += seconds
        else:
            rest += seconds
    return session, rest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=2, help="timed runs after the warm-up run (default 2)")
    parser.add_argument("--count", type=int, default=500, help="triplets per run (the pipeline's default, 500)")
    parser.add_argument("--compare", choices=sorted(SWITCHES),
                        help="time each run with and without the early kernel and Spark session (prestart) or the "
                             "early session's warm-up (warm-up)")
    args = parser.parse_args()
    batch_dir = os.environ.get("BATCH_DIR", "batch_data")
    print(f"machine: {os.cpu_count()} cores, {platform.machine()}; ./run_pipeline.sh --count {args.count}, "
          f"1 warm-up run, then {args.runs} timed", flush=True)
    for run in range(args.runs + 1):
        sides = ["1", "0"] if args.compare and run > 0 else ["1"]
        for side in sides if run % 2 else sides[::-1]:
            label = "warm-up" if run == 0 else f"run {run}"
            env = {}
            if args.compare and run > 0:
                variable, (on, off) = SWITCHES[args.compare]
                label += f" {on if side == '1' else off}"
                env[variable] = side
            timed(label, args.count, batch_dir, env)


# --compare NAME: the variable run_pipeline.sh reads, and the labels of its two sides (1 and 0)
SWITCHES = {"prestart": ("PIPELINE_PRESTART_SPARK", ("early", "late")),
            "warm-up": ("PIPELINE_WARM_UP", ("warm", "cold"))}


def timed(label: str, count: int, batch_dir: str, env: dict[str, str]) -> None:
    started = time.perf_counter()
    result = subprocess.run(["./run_pipeline.sh", "--count", str(count)], cwd=PROJECT_ROOT, capture_output=True,
                            text=True, env={**os.environ, **env})
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"run_pipeline.sh failed (exit {result.returncode}):\n{result.stdout[-3000:]}"
                         f"{result.stderr[-3000:]}")
    stages = re.search(r"^\s*time\s+(.*)$", result.stdout, re.M)
    session, cells = notebook_split(str(PROJECT_ROOT / batch_dir / "report.ipynb"))
    print(f"{label:>13}: wall {wall:5.1f} s; stages: {stages.group(1) if stages else '?'}; "
          f"notebook: session cell {session:.1f} s, other cells {cells:.1f} s   goal (warm): total <= 30 s",
          flush=True)


if __name__ == "__main__":
    main()
