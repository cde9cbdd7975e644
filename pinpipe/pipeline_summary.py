"""The summary `run_pipeline.sh` prints: rows at every stage, where the outputs are, time per stage."""
from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

from pinpipe.common.schema import CSV_FILES
from pinpipe.extraction import batch_store


def count_csv_rows(path: Path) -> int:
    with open(path, encoding="utf-8", newline="") as handle:
        return max(0, sum(1 for _ in csv.reader(handle)) - 1)


def summarise(batch_dir: Path, posted: int, timings: dict[str, float],
              stream_dir: Path | None = None) -> tuple[str, bool]:
    """The summary text, and whether the row counts of the stages agree."""
    manifests = batch_store.read_manifests(batch_dir)
    newest = manifests[-1] if manifests else None
    csv_rows = {kind: count_csv_rows(batch_dir / name) for kind, name in CSV_FILES.items()}
    results_dir = batch_dir / "results"
    results = sorted(results_dir.glob("*.csv")) if results_dir.exists() else []
    quality = json.loads((results_dir / "summary.json").read_text()) if (results_dir / "summary.json").exists() else {}
    read_rows = quality.get("input_rows", {})
    written = newest.rows if newest else 0
    problems = disagreements(newest, posted, csv_rows, read_rows, len(results))
    agree = not problems
    lines = [
        "Pipeline summary",
        f"  poster     triplets acknowledged by Kafka: {posted}",
        f"  extractor  batch {newest.batch_id if newest else '-'}: {written} distinct triplets "
        f"(+ {newest.duplicates // 3 if newest else 0} repeated idx, {newest.pending if newest else 0} idx pending)",
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


def disagreements(newest: batch_store.Manifest | None, posted: int, csv_rows: dict[str, int],
                  read_rows: dict[str, int], result_files: int) -> list[str]:
    """Where the stages' row counts part, each said with its likely cause; none when they agree."""
    if newest is None:
        return ["the extractor wrote no batch"]
    problems = []
    written, repeats = newest.rows, newest.duplicates // 3
    # Posted triplets = distinct idx written + repeats of an idx (the emulator samples with replacement).
    if written + repeats != posted:
        if newest.pending or written + repeats > posted:
            problems.append(
                f"the batch holds {written} distinct triplets (+ {repeats} repeated idx) where this run posted "
                f"{posted}: the topics held records from before this run (posted by hand, or left pending by an "
                f"earlier run), which the extractor takes first; {newest.pending} idx stay pending for the next "
                f"batch (nothing is lost)")
        else:
            problems.append(f"the batch holds {written} distinct triplets (+ {repeats} repeated idx) of the "
                            f"{posted} this run posted: some never reached it (see the extractor's log)")
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
    args = parser.parse_args(argv)
    timings = {stage: float(seconds) for stage, seconds in (t.split("=", 1) for t in args.timing)}
    text, agree = summarise(args.batch_dir, args.posted, timings, args.stream_dir)
    print(text)
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
