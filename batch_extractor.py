#!/usr/bin/env python3
"""Consume the pin, geo and user topics, align records by idx and write batches of complete triplets."""
from __future__ import annotations

import argparse
import logging
import sys
import threading
from pathlib import Path

from kafka.errors import KafkaError

from pinpipe.common.config import cli_settings
from pinpipe.common.logs import setup_logging
from pinpipe.extraction import batch_store
from pinpipe.extraction.extractor import Extractor, ExtractResult, install_stop_signals
from pinpipe.extraction.group import GroupJoinTimeout

log = logging.getLogger("batch_extractor")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__,
        epilog="Topics, broker and output directory come from PIN_TOPIC, GEO_TOPIC, USER_TOPIC, "
               "KAFKA_BOOTSTRAP_SERVERS and BATCH_DIR (see README). Exit codes: 0 done, 2 not enough data "
               "before --timeout, 130 interrupted.",
    )
    parser.add_argument("--count", type=int, default=500, help="complete triplets per batch (default 500)")
    parser.add_argument("--batches", type=int, default=1,
                        help="batches to write before exiting (default 1; 0 = keep going until stopped or idle)")
    parser.add_argument("--timeout", type=float, default=60.0,
                        help="give up after this many seconds without new records (default 60)")
    parser.add_argument("--allow-partial", action="store_true",
                        help="on timeout, write the complete triplets there are instead of failing")
    parser.add_argument("--until-end", action="store_true",
                        help="stop at the end of the topics (what they held when the partitions were assigned) "
                             "instead of waiting --timeout for more; with --allow-partial, write what is complete")
    parser.add_argument("--group-id", default=None,
                        help="consumer group (default EXTRACTOR_GROUP_ID or pin-batch-extractor)")
    parser.add_argument("--instance-id", default=None,
                        help="static group membership id (EXTRACTOR_INSTANCE_ID): a restart with the same id takes "
                             "its partitions back at once. Default: one derived from the host, the batch directory "
                             "and a free slot, stable across restarts; 'dynamic' for a dynamic member (a restart "
                             "after a crash then waits up to 45 s)")
    parser.add_argument("--batch-dir", type=Path, default=None,
                        help="output directory (default BATCH_DIR or batch_data)")
    parser.add_argument("--verify", action="store_true",
                        help="check the manifests under the batch directory (no gaps, no overlaps) and exit")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar even on a terminal")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    args = parser.parse_args(argv)
    if args.count < 1:
        parser.error("--count must be a positive integer")
    if args.batches < 0:
        parser.error("--batches must be 0 or more")
    if args.timeout <= 0:
        parser.error("--timeout must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging(args.verbose)
    settings = cli_settings(batch_dir=args.batch_dir)
    if settings.batch_dir.exists() and not settings.batch_dir.is_dir():
        print(f"error: the batch directory {settings.batch_dir} is a file; give a folder (--batch-dir or BATCH_DIR)",
              file=sys.stderr)
        return 1
    if args.verify:
        problems = batch_store.verify(settings.batch_dir)
        for problem in problems:
            print(problem)
        print(f"{len(batch_store.batch_paths(settings.batch_dir))} batches checked, {len(problems)} problems")
        return 1 if problems else 0

    stop = threading.Event()
    install_stop_signals(stop)
    bar = progress_bar(args.count) if not args.no_progress and sys.stderr.isatty() else None
    extractor = Extractor(settings, count=args.count, batches=args.batches, timeout_s=args.timeout,
                          allow_partial=args.allow_partial, group_id=args.group_id, stop_event=stop,
                          instance_id=args.instance_id, progress=bar, until_end=args.until_end)
    try:
        result = extractor.run()
    except GroupJoinTimeout as exc:
        log.debug("extractor failed", exc_info=True)
        print(f"error: {exc.text}", file=sys.stderr)
        return 1
    except batch_store.BatchWriteError as exc:
        log.debug("extractor failed", exc_info=True)
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KafkaError as exc:
        log.debug("extractor failed", exc_info=True)
        print(f"error: cannot read from Kafka at {settings.kafka_bootstrap_servers} ({exc}); is the broker "
              "running (./start_kafka.sh) and KAFKA_BOOTSTRAP_SERVERS right?", file=sys.stderr)
        return 1
    except Exception as exc:  # one clear line for the person at the terminal; details with -v
        log.debug("extractor failed", exc_info=True)
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        if bar is not None:
            bar.close()
    rate = result.records / result.seconds if result.seconds else 0.0
    print(f"batches written: {len(result.batches)} -> {settings.batch_dir}")
    print(f"triplets written: {result.rows}  duplicates: {sum(m.duplicates for m in result.batches)}  "
          f"pending: {result.pending}  rejected: {sum(m.rejected for m in result.batches)}  "
          f"records read: {result.records} ({rate:,.0f}/s)")
    if message := stop_message(result, args):
        print(message, file=sys.stderr)
    return result.exit_code


def stop_message(result: ExtractResult, args: argparse.Namespace) -> str:
    """Why it stopped, when that is not 'done', in the words of this command's options."""
    if result.stop == "interrupted":
        return (f"interrupted: {result.complete_unwritten} complete triplets were not written; their offsets are "
                "not committed, so the next run re-reads them")
    why = "at the end of the topics" if result.at_end else f"no new records for {args.timeout:g} s"
    if result.stop == "not_enough":
        return (f"{why}: only {result.complete_unwritten} of {args.count} triplets are complete, so no batch was "
                "written (offsets not committed; use --allow-partial to write what there is)")
    if result.stop == "idle":
        return f"{why}; nothing more to write"
    return ""


class progress_bar:  # noqa: N801  (used as a function: a callable bar)
    """A tqdm bar of complete triplets in the batch being collected; Extractor's `progress` callback."""

    def __init__(self, count: int):
        from tqdm import tqdm

        self.bar = tqdm(total=count, unit="triplet", desc="collecting", leave=False)

    def __call__(self, complete: int, count: int) -> None:
        self.bar.n = complete
        self.bar.refresh()

    def close(self) -> None:
        self.bar.close()


if __name__ == "__main__":
    sys.exit(main())
