"""A tiny built-in batch and the notebook's steps on it: what the class archive's build runs (train_archive) and
what an early Spark session runs while it waits for the real batch (warm_up), so the JVM has loaded and compiled
the code the notebook's queries go through before the notebook starts."""
from __future__ import annotations

import csv
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from pinpipe.common import csv_format
from pinpipe.common.schema import CSV_FILES, FIELDS
from pinpipe.spark.class_archive import BUILD_TIMEOUT_S

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

# A tiny batch in the extractor's format: the values the cleaning converts (follower counts with k and M,
# placeholders, blanks, save paths, coordinates, timestamps) so a run goes through the code a real batch needs.
SAMPLE = {
    "pin": [(1, "a5f1c2d3-0000-4000-8000-000000000001", "Cake", "A cake, \"iced\"", "Anna Bell", "13k",
             "cake,baking", "image", "https://img/1.jpg", 1, "Local save in /data/food", "food"),
            (2, "a5f1c2d3-0000-4000-8000-000000000002", "No Title Data Available", "  ", "User Info Error",
             "User Info Error", "N,o, ,T,a,g,s, ,A,v,a,i,l,a,b,l,e", "video", "Image src error.", 0,
             "Local save in /data/art", "art"),
            (3, "a5f1c2d3-0000-4000-8000-000000000003", "Hike", "Line one\nline two", "Ben Moss", "2M",
             "outdoors", "image", "https://img/3.jpg", 1, "Local save in /data/travel", "travel")],
    "geo": [(1, "2019-03-01 10:00:00", 51.5, -0.12, "United Kingdom"),
            (2, "2021-07-15 18:30:00", 40.7, -74.0, "United States"),
            (3, "2020-01-02 08:05:00", -33.9, 151.2, "Australia")],
    "user": [(1, "Anna", "Bell", 24, "2016-05-01 09:00:00"),
             (2, "Carl", "Dunn", 41, "2017-11-20 12:00:00"),
             (3, "Ben", "Moss", 33, "2015-02-14 16:45:00")],
}


def write_sample(directory: Path) -> None:
    """The three files of SAMPLE in `directory`, as the extractor writes a batch."""
    for kind, name in CSV_FILES.items():
        with open(directory / name, "w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle, **csv_format.WRITER)
            writer.writerow(FIELDS[kind])
            writer.writerows(SAMPLE[kind])


def run_steps(spark: SparkSession, directory: Path, small: bool, stop: Callable[[], bool] = lambda: False) -> bool:
    """The notebook's steps (read, clean and save, counts, quality table, questions, results) on the batch in
    `directory`, writing under it; `small` picks the plan as the notebook's parameter does, and code generation
    as get_spark sets it for a small or a large batch (off, on), the session's setting restored after. `stop` is
    asked before each step after the first: True ends the run there. Whether every step ran."""
    from pinpipe.spark import session

    with session.code_generation(spark, on=not small):
        return _steps(spark, directory, small, stop)


def _steps(spark: SparkSession, directory: Path, small: bool, stop: Callable[[], bool]) -> bool:
    from pinpipe.spark import analytics, quality, spark_io

    raw = spark_io.read_batch(spark, str(directory), small=small)
    audit = quality.QualityAudit(raw)
    saved = spark_io.save_cleaned(audit.cleaned, str(directory / f"cleaned-{small}"), small=small)
    if stop():
        return False
    rows = audit.saved_rows(saved)
    saved["pin"].limit(5).toPandas()
    if stop():
        return False
    audit.report()
    if stop():
        return False
    results = spark_io.collect_all(analytics.all_results(saved["pin"], saved["geo"], saved["user"],
                                                         cache_shared=not small, small=small))
    spark_io.write_results(results, str(directory / f"results-{small}"), input_rows=rows, spark=spark)
    return True


def warm_up(spark: SparkSession, small: bool = True, until: str | None = None, stop_file: str | None = None) -> str:
    """Run the notebook's steps on SAMPLE once in `spark` (a temporary folder, removed after), so a cold driver
    JVM has loaded, planned and compiled what the notebook's queries go through before they come. `until`: a
    file whose appearance ends the warm-up at the next step (the real batch is there); `stop_file` likewise (the
    runner is stopping). A `small` warm-up runs without generated code, as the notebook will run a small batch
    (run_steps). It caches nothing and leaves no setting changed: the session is as it was. Returns what it did,
    for a log line."""
    started = time.perf_counter()
    ends = [path for path in (until, stop_file) if path]
    with tempfile.TemporaryDirectory(prefix="pinpipe-warm-up-") as work:
        write_sample(Path(work))
        whole = run_steps(spark, Path(work), small, lambda: any(map(os.path.exists, ends)))
    what = "done" if whole else "cut short (the batch is there)" if until and os.path.exists(until) else "stopped"
    return f"Spark warm-up {what} in {time.perf_counter() - started:.1f} s"


def train_archive(directory: Path) -> None:
    """The class archive's build run (class_archive.build starts it with -XX:ArchiveClassesAtExit): the steps on
    SAMPLE in `directory`, in the small plan and the partitioned one, the driver's class path written beside them
    (what build() checks the archive against), then an exit that lets the driver JVM write its archive."""
    from pyspark import SparkContext

    from pinpipe.spark import session

    write_sample(directory)
    spark = session.get_spark("local[2]", app_name="pinpipe-class-archive", small=True)
    for small in (True, False):  # a small batch's expressions interpreted, a large one's generated (run_steps)
        run_steps(spark, directory, small)
    gateway = SparkContext._gateway
    class_path = spark.sparkContext._jvm.java.lang.System.getProperty("java.class.path")
    (directory / "class-path").write_text(class_path)
    spark.stop()
    gateway.proc.stdin.close()  # the JVM exits when its stdin closes, writing the archive on the way out
    if gateway.proc.wait(timeout=BUILD_TIMEOUT_S) != 0:
        raise SystemExit(f"the driver JVM exited with {gateway.proc.returncode}")


if __name__ == "__main__":  # class_archive.build's driver run: python -m pinpipe.spark.sample_batch DIR
    train_archive(Path(sys.argv[1]))
