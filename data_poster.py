#!/usr/bin/env python3
"""Serve the produce API on POSTER_HOST:POSTER_PORT and emulate users posting random source rows to it.

    python data_poster.py                        serve on 127.0.0.1:8000 and emulate (20 triplets/s)
    python data_poster.py --count 500 --rate 0   post 500 triplets as fast as possible, then exit
    python data_poster.py --no-emulator          serve only
    python data_poster.py seed-db [--rows N] [--random-seed S] [--reset]
"""
from __future__ import annotations

import argparse
import logging
import sys

from pinpipe.common.config import cli_settings
from pinpipe.common.logs import setup_logging
from pinpipe.source import source_db
from pinpipe.source.datagen import DEFAULT_ROWS
from pinpipe.source.source_db import SourceDatabaseError

log = logging.getLogger("data_poster")


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def non_negative_float(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=non_negative_float, default=20.0,
                        help="triplets per second (default 20, the original project's 0.05 s pause; "
                             "0 = as fast as possible)")
    parser.add_argument("--count", type=positive_int, default=None,
                        help="stop after this many acknowledged triplets and exit 0")
    parser.add_argument("--random-seed", type=int, default=None, help="seed of the emulator's idx draws")
    parser.add_argument("--concurrency", type=positive_int, default=128,
                        help="most emulator requests in flight (default 128; at --rate 0 all of them)")
    parser.add_argument("--give-up-after", type=non_negative_float, default=0.0, metavar="S",
                        help="fail (exit 1) when no triplet has been acknowledged for S seconds while some wait, "
                             "as when Kafka is down (default 0: keep retrying until stopped)")
    parser.add_argument("--no-emulator", action="store_true", help="serve the API only")
    parser.add_argument("--host", default=None, help="bind address (default POSTER_HOST or 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="port (default POSTER_PORT or 8000)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="seed-db")
    seed = sub.add_parser("seed-db", help="create and fill the three source tables in the configured database")
    seed.add_argument("--rows", type=positive_int, default=DEFAULT_ROWS,
                      help=f"rows per table (default {DEFAULT_ROWS})")
    seed.add_argument("--random-seed", type=int, default=0, dest="seed_random_seed", help="generator seed (default 0)")
    seed.add_argument("--reset", action="store_true", help="replace tables that already hold data")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging(args.verbose)
    settings = cli_settings(poster_host=args.host, poster_port=args.port)
    try:
        url = source_db.database_url(settings)
        if args.command == "seed-db":
            report = source_db.seed(url, rows=args.rows, random_seed=args.seed_random_seed, reset=args.reset)
            print(f"seeded {report.rows} rows into each of the 3 source tables in {report.seconds:.1f} s "
                  f"({source_db.describe_url(url)})")
            return 0
        if settings.database_url:
            with source_db.connection(url) as conn:
                present = source_db.check_schema(conn)
            if not all(present.values()):
                raise SourceDatabaseError("the source tables are missing in DATABASE_URL's database; "
                                          "run `python data_poster.py seed-db` first")
        else:
            source_db.ensure_seeded(url)
    except SourceDatabaseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # a seed replaces the tables only once it is complete
        print("interrupted: the source tables are as they were", file=sys.stderr)
        return 130

    from pinpipe.poster.service import serve  # FastAPI and uvicorn are only needed to serve

    return serve(settings, url, emulate=not args.no_emulator, rate=args.rate, count=args.count,
                 random_seed=args.random_seed, concurrency=args.concurrency, give_up_after_s=args.give_up_after)


if __name__ == "__main__":
    sys.exit(main())
