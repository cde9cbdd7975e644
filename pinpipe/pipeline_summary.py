"""The summary `run_pipeline.sh` prints: rows at every stage, where the outputs are, time per stage."""
from __future__ import annotations

import argparse
import csv
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from pinpipe.common.schema import CSV_FILES
from pinpipe.extraction import batch_store


def count_csv_rows(path: Path) -> int:
    with open(path, encoding="utf-8", newline="") as handle:
        return max(0, sum(1 for _ in csv.reader(handle)) - 1)


def summarise(batch_dir: Path, posted: int, timings: dict[str, float], stream_dir: Path | None = None,
              backlog: HeldBefore | None = None) -> tuple[str, bool]:
    """The summary text, and whether the row counts of the stages agree."""
    manifests = batch_store.read_manifests(batch_dir)
    newest = manifests[-1] if manifests else None
    csv_rows = {kind: count_csv_rows(batch_dir / name) for kind, name in CSV_FILES.items()}
    results_dir = batch_dir / "results"
    results = sorted(results_dir.glob("*.csv")) if results_dir.exists() else []
    quality = json.loads((results_dir / "summary.json").read_text()) if (results_dir / "summary.json").exists() else {}
    read_rows = quality.get("input_rows", {})
    written = newest.rows if newest else 0
    problems = disagreements(newest, posted, csv_rows, read_rows, len(results), backlog)
    earlier = from_before(newest, posted) if newest else 0
    agree = not problems
    lines = [
        "Pipeline summary",
        f"  poster     triplets acknowledged by Kafka: {posted}",
        f"  extractor  batch {newest.batch_id if newest else '-'}: {written} distinct triplets "
        f"(+ {newest.duplicates // 3 if newest else 0} repeated idx, {newest.pending if newest else 0} idx pending)"
        + (f"; {earlier} of them left in the topics before this run"
           if backlog and earlier > 0 and not capped(newest, posted, backlog) else ""),
        "             CSV rows: " + ", ".join(f"{kind} {n}" for kind, n in csv_rows.items()),
        "  spark      rows read: " + ", ".join(f"{kind} {n}" for kind, n in read_rows.items())
        + f"; {len(results)} result files in {results_dir}",
        f"  report     {batch_dir / 'report.html'}",
        *_stream_lines(stream_dir, written),
        "  time       " + ", ".join(f"{stage} {seconds:.1f} s" for stage, seconds in timings.items()),
        "  row counts agree across stages" if agree else "  WARNING: row counts differ between stages:",
        *[f"    - {problem}" for problem in problems],
    ]
    return "\n".join(lines), agree


@dataclass(frozen=True)
class HeldBefore:
    """What the topics held before the run that no batch had taken (`pinpipe.extraction.backlog`, measured
    before posting): at most `triplets`, of which the batch takes up to `limit`."""

    triplets: int
    limit: int


def from_before(newest: batch_store.Manifest, posted: int) -> int:
    """Triplets in the batch that this run did not post (negative: posts missing from it). Posted triplets =
    distinct idx written + repeats of an idx (the emulator samples with replacement)."""
    return newest.rows + newest.duplicates // 3 - posted


def capped(newest: batch_store.Manifest, posted: int, backlog: HeldBefore | None) -> bool:
    """The extractor stopped at `posted + limit` triplets, oldest first, short of the end of the topics."""
    return backlog is not None and backlog.triplets > backlog.limit and newest.rows >= posted + backlog.limit


def disagreements(newest: batch_store.Manifest | None, posted: int, csv_rows: dict[str, int],
                  read_rows: dict[str, int], result_files: int, backlog: HeldBefore | None = None) -> list[str]:
    """Where the stages' row counts part, each said with its likely cause; none when they agree.

    Without `backlog` (not measured) the batch should hold this run's posts alone."""
    if newest is None:
        return ["the extractor wrote no batch"]
    problems = []
    written, repeats = newest.rows, newest.duplicates // 3
    earlier = from_before(newest, posted)
    held = (f"the batch holds {written} distinct triplets (+ {repeats} repeated idx) where this run posted "
            f"{posted}")
    if capped(newest, posted, backlog):
        problems.append(f"{held}: the topics held more from before this run than the {backlog.limit} triplets a "
                        "batch takes besides its own posts (PIPELINE_BACKLOG_MAX); it took the oldest, and "
                        f"{newest.pending} idx stay pending for the next runs (nothing is lost)")
    elif earlier < 0 and newest.pending and backlog is None:
        problems.append(f"{held}: the topics held records from before this run, which the extractor takes first; "
                        f"{newest.pending} idx stay pending for the next batch (nothing is lost)")
    elif earlier < 0:
        problems.append(f"the batch holds {written} distinct triplets (+ {repeats} repeated idx) of the "
                        f"{posted} this run posted: some never reached it (see the extractor's log)")
    elif earlier > 0 and backlog is None:
        problems.append(f"{held}: the topics held records from before this run, which the extractor takes first "
                        f"(how many was not measured); {newest.pending} idx stay pending for the next batch")
    elif backlog is not None and earlier > backlog.triplets:
        problems.append(f"{held}: {earlier} more, but the topics held at most {backlog.triplets} triplets from "
                        "before the run: were records posted to them while it ran (another poster)?")
    if set(csv_rows.values()) != {written}:
        problems.append(f"the CSV files hold {', '.join(f'{k} {n}' for k, n in csv_rows.items())} rows, the "
                        f"batch's manifest {written}")
    if read_rows != {kind: written for kind in CSV_FILES}:
        problems.append(f"Spark read {', '.join(f'{k} {n}' for k, n in read_rows.items()) or 'no rows'}, the "
                        f"batch holds {written} per file")
    if result_files != 9:
        problems.append(f"{result_files} of the 9 result files were written")
    return problems


def _stream_lines(stream_dir: Path | None, batch_rows: int) -> list[str]:
    """The streaming notebook's row counts beside the batch path's (its tables keep every run's records)."""
    if stream_dir is None:
        return []
    path = stream_dir / "tables" / "summary.json"
    if not path.exists():
        return [f"  stream     no summary at {path}"]
    counts = json.loads(path.read_text())
    return [f"  stream     cleaned rows: pin {counts['cleaned_pin']}, geo {counts['cleaned_geo']}, user "
            f"{counts['cleaned_user']}; {counts['rejected']} rejected",
            f"             {counts['complete_idx']} distinct complete idx (batch: {batch_rows}; the stream's tables "
            f"hold every run's records, the batch this run's)"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch-dir", type=Path, required=True)
    parser.add_argument("--posted", type=int, required=True)
    parser.add_argument("--timing", action="append", default=[], help="stage=seconds")
    parser.add_argument("--stream-dir", type=Path, default=None, help="the streaming notebook's folder")
    parser.add_argument("--backlog", type=int, default=None,
                        help="triplets the topics held at most before the run (pinpipe.extraction.backlog)")
    parser.add_argument("--backlog-max", type=int, default=None, help="how many of them the batch could take")
    args = parser.parse_args(argv)
    timings = {stage: float(seconds) for stage, seconds in (t.split("=", 1) for t in args.timing)}
    limit = args.backlog if args.backlog_max is None else args.backlog_max
    backlog = None if args.backlog is None else HeldBefore(args.backlog, limit)
    text, agree = summarise(args.batch_dir, args.posted, timings, args.stream_dir, backlog)
    print(text)
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
