"""Time `seed-db` for 1,000,000 rows per table, next to generation alone and a row-by-row INSERT baseline."""
from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

from pinpipe.common.schema import FIELDS, TABLES
from pinpipe.source import datagen, source_db
from pinpipe.source.embedded_pg import embedded_url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--insert-sample", type=int, default=20_000, help="rows for the INSERT baseline")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = embedded_url(Path(tmp) / "pgdata")
        started = time.perf_counter()
        for _ in datagen.iter_rows(args.rows, seed=0):
            pass
        generate = time.perf_counter() - started

        report = source_db.seed(url, rows=args.rows, random_seed=0, reset=True)

        # Baseline: what the original project's approach (one INSERT per row) costs, on a sample, extrapolated.
        with source_db.connection(url) as conn:
            conn.execute(f'TRUNCATE "{TABLES["user"]}"')
            rows = [t[2] for t in datagen.iter_rows(args.insert_sample, seed=0)]
            placeholders = ", ".join(["%s"] * len(FIELDS["user"]))
            started = time.perf_counter()
            with conn.cursor() as cur:
                for row in rows:
                    cur.execute(f'INSERT INTO "{TABLES["user"]}" VALUES ({placeholders})', row)
            insert_per_row = (time.perf_counter() - started) / len(rows)

    print(f"machine: {platform.processor() or platform.machine()}, {__import__('os').cpu_count()} cores, Python {platform.python_version()}")
    print(f"{'rows per table':<44}{args.rows:>12,}")
    print(f"{'generation only (Python)':<44}{generate:>10.1f} s")
    print(f"{'seed-db: generate + COPY x3 + keys (ours)':<44}{report.seconds:>10.1f} s   goal <= 60 s")
    print(f"{'baseline: INSERT per row, 1 table, extrap.':<44}{insert_per_row * args.rows:>10.1f} s   (x3 tables: {3 * insert_per_row * args.rows:.0f} s)")


if __name__ == "__main__":
    main()
