"""The streaming half: Spark Structured Streaming reads the three topics (committed records only), cleans them
with the batch notebook's own `cleaning` functions, and keeps exactly-once tables and live analytics.

Queries, each with its own checkpoint under `checkpoint_dir`:
  cleaned_pin, cleaned_geo, cleaned_user  Parquet file sinks: the cleaned columns plus each record's topic,
                                          partition, offset and Kafka timestamp
  rejected                                Parquet file sink: the records that are not a valid value of their
                                          topic (topic, partition, offset, raw value, reason)
  posts_per_minute                        posts per category per minute of Kafka record time, watermarked;
                                          every micro-batch's updated windows, kept per batch id

A file sink lists the files of each committed micro-batch in its `_spark_metadata` log, and the checkpoint
records which offsets each batch covered: read through Spark, a table holds every record exactly once, however
often the query was killed and restarted. (A killed batch may leave Parquet files that the log never lists;
readers that bypass Spark's log would see them.)

A new local JVM for the stream compiles with C1 only (`small`, the default; session.jit_options): the
emulator's topics hold thousands of records, and at that size the optimising compiler (C2) costs more start-up
than it saves; on 300,000 records C2 was faster (README, "Portability, the Kafka cluster and the streaming
half"). For topics of more than ~100,000 records pass --no-small (the notebook: small = False).
"""
from __future__ import annotations

import argparse
import json
import logging
import re
import shlex
import signal
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyspark
from pyspark.errors import AnalysisException
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQuery

from pinpipe.common.schema import FIELDS, KINDS
from pinpipe.spark import cleaning, locations
from pinpipe.spark.spark_io import RAW_SCHEMAS, root_cause

log = logging.getLogger(__name__)

KAFKA_COLUMNS = ("topic", "partition", "offset", "kafka_timestamp")
POLL_S = 0.5  # how often await_all looks at the queries
TABLES = ("cleaned_pin", "cleaned_geo", "cleaned_user", "rejected", "posts_per_minute")
WINDOW = "1 minute"
WATERMARK = "2 minutes"  # how late (in Kafka record time) a post may arrive and still be counted
INTEGER_TYPES = ("TINYINT", "SMALLINT", "INT", "BIGINT")
# schema_of_variant's names -> the Python type names the extractor's reasons use (records.decode_value)
PYTHON_TYPE = {"ARRAY": "list", "STRING": "str", "BOOLEAN": "bool", "VOID": "NoneType", "DOUBLE": "float",
               "FLOAT": "float", "DECIMAL": "float", **{name: "int" for name in INTEGER_TYPES}}


@dataclass(frozen=True)
class StreamConfig:
    bootstrap_servers: str
    topics: dict[str, str]  # kind -> topic
    output_dir: str  # one folder per table
    checkpoint_dir: str  # one folder per query
    trigger: str = "availableNow"  # or a processing-time interval such as "10 seconds"
    max_offsets_per_trigger: int | None = None  # None: a micro-batch takes all there is
    # Records Kafka deleted before the queries read them (retention, delete-records) stop the queries
    # (RecordsDeleted) unless allowed: then Spark logs each gap and reads on (its failOnDataLoss option, off).
    allow_data_loss: bool = False

    def table(self, name: str) -> str:
        return locations.join(self.output_dir, name)

    def checkpoint(self, name: str) -> str:
        return locations.join(self.checkpoint_dir, name)


def read_topics(spark: SparkSession, config: StreamConfig, kinds: tuple[str, ...]) -> DataFrame:
    """The Kafka records of `kinds`' topics, from the earliest offset; records of aborted transactions and of
    open ones are never read (read_committed)."""
    reader = (spark.readStream.format("kafka")
              .option("kafka.bootstrap.servers", config.bootstrap_servers)
              .option("subscribe", ",".join(config.topics[kind] for kind in kinds))
              .option("startingOffsets", "earliest")
              .option("kafka.isolation.level", "read_committed")
              .option("failOnDataLoss", "false" if config.allow_data_loss else "true"))
    if config.max_offsets_per_trigger:
        reader = reader.option("maxOffsetsPerTrigger", str(config.max_offsets_per_trigger))
    return reader.load().withColumnRenamed("timestamp", "kafka_timestamp")


def _field(value: Column, name: str) -> Column:
    """A top-level field of a parsed value: SQL null when absent, a variant null when JSON null."""
    return F.variant_get(value, f"$.{name}", "variant")


def rejection_reason(kind: str) -> Column:
    """Why a Kafka value is not a record of `kind` (null when it is): the extractor's rules
    (records.decode_value) as Spark expressions over the columns `value` (binary) and `_v` (the parsed
    variant; see with_parsed). The reasons read the same, except that a JSON syntax error is not located."""
    text = F.col("value").cast("string")
    kind_of = F.schema_of_variant(F.col("_v"))
    idx = _field(F.col("_v"), "idx")
    idx_type = F.schema_of_variant(idx)
    missing = F.concat_ws(", ", *[F.when(_field(F.col("_v"), name).isNull(), F.lit(name)) for name in FIELDS[kind]])
    nested = F.coalesce(*[F.when(F.schema_of_variant(_field(F.col("_v"), name)).rlike("^(OBJECT|ARRAY)"),
                                 F.lit(f"field {name} is not a scalar value")) for name in FIELDS[kind]])
    top_type = F.regexp_extract(kind_of, r"^([A-Z]+)", 1)
    python_type = F.coalesce(F.create_map(*[F.lit(x) for pair in PYTHON_TYPE.items() for x in pair])[top_type],
                             F.lower(top_type))
    return (F.when(F.col("value").isNull(), F.lit("empty value (tombstone)"))
            .when(~F.is_valid_utf8(text), F.lit("value is not UTF-8"))
            .when(F.col("_v").isNull(), F.lit("value is not JSON"))
            .when(~kind_of.startswith("OBJECT"), F.concat(F.lit("value is a JSON "), python_type,
                                                          F.lit(", not an object")))
            .when(idx.isNull(), F.lit("no idx field"))
            .when(~F.regexp_extract(idx_type, r"^([A-Z]+)", 1).isin(*INTEGER_TYPES),
                  F.concat(F.lit("idx is not an integer: "), F.to_json(idx)))
            .when(missing != "", F.concat(F.lit(f"fields missing for {kind}: "), missing))
            .otherwise(nested))


def with_parsed(records: DataFrame) -> DataFrame:
    """Adds `_v`: the value parsed as JSON into a variant, null when it is not valid UTF-8 JSON."""
    text = F.col("value").cast("string")
    return records.withColumn("_v", F.when(F.is_valid_utf8(text), F.try_parse_json(text)))


def cleaned(records: DataFrame, kind: str) -> DataFrame:
    """The valid records of one topic, parsed against the raw schema (every field as text) and cleaned by the
    batch notebook's function, each row keeping its topic, partition, offset and Kafka timestamp."""
    valid = with_parsed(records).where(rejection_reason(kind).isNull())
    raw = valid.select(*KAFKA_COLUMNS, F.from_json(F.col("value").cast("string"), RAW_SCHEMAS[kind]).alias("r"))
    raw = raw.select(*KAFKA_COLUMNS, *[F.col("r")[name].alias(name) for name in FIELDS[kind]])
    return cleaning.CLEANERS[kind](raw, keep=KAFKA_COLUMNS)


def rejected(records: DataFrame, topics: dict[str, str]) -> DataFrame:
    """The records of the three topics that are not valid values, with the reason."""
    parsed = with_parsed(records)
    reason = F.lit(None).cast("string")
    for kind in reversed(KINDS):
        reason = F.when(F.col("topic") == topics[kind], rejection_reason(kind)).otherwise(reason)
    return (parsed.withColumn("reason", reason).where(F.col("reason").isNotNull())
            .select(*KAFKA_COLUMNS, F.col("value").alias("raw_value"), "reason"))


def posts_per_minute(records: DataFrame) -> DataFrame:
    """Posts per category per minute of Kafka record time (pins only); a window is final once the watermark
    (the latest record time seen, less WATERMARK) has passed its end, and its state is then dropped."""
    pins = cleaned(records, "pin").withWatermark("kafka_timestamp", WATERMARK)
    return (pins.groupBy(F.window("kafka_timestamp", WINDOW).alias("window"), "category")
            .agg(F.count(F.lit(1)).alias("posts")))


def _trigger(writer, trigger: str):
    if trigger == "availableNow":
        return writer.trigger(availableNow=True)
    return writer.trigger(processingTime=trigger)


def _updates_writer(path: str):
    """foreachBatch: each micro-batch's updated windows go to <path>/batch_id=N, overwritten if the batch is
    run again after a restart (so every batch is in the table once); live_counts keeps the newest."""
    def write(batch: DataFrame, batch_id: int) -> None:
        batch.write.mode("overwrite").parquet(f"{path}/batch_id={batch_id}")
    return write


class SparkTooOld(RuntimeError):
    """This pyspark lacks the functions the stream's record checks use."""


def check_spark_supports_streaming() -> None:
    """The stream parses each value into a VARIANT (try_parse_json, variant_get, schema_of_variant) to check it
    as the extractor does: Spark 4.0+, or a Databricks runtime that has them. pyspark 3.5 has none of them and
    would stop with an AttributeError part-way through starting the queries."""
    missing = [name for name in ("try_parse_json", "variant_get", "schema_of_variant", "is_valid_utf8")
               if not hasattr(F, name)]
    if missing:
        raise SparkTooOld(
            f"the streaming half needs Spark 4.0 or later (or a Databricks runtime with VARIANT, 15.3+): this "
            f"pyspark {pyspark.__version__} has no {', '.join(missing)}. Run it from the "
            f"project's venv (pyspark 4.2.0); the batch notebook runs on Spark 3.5 too")


class KafkaSourceMissing(RuntimeError):
    """The Spark that runs the queries has no Kafka source (spark-sql-kafka-0-10) on its class path."""


NO_KAFKA_SOURCE_HINT = (
    "this Spark has no Kafka source (spark-sql-kafka-0-10). get_spark adds it to a session it starts itself (local or "
    "spark://); a Spark Connect server needs it on its own class path: start the server with "
    '--jars "$(python -m pinpipe.spark.connector)" (README, "On a Spark Connect server of your own"); Databricks has '
    "it built in")


class CheckpointMismatch(ValueError):
    """A table holds batches its query's checkpoint does not know: running would lose or mix records."""


class OffsetsOfAnotherLog(CheckpointMismatch):
    """A query's checkpoint reached further into a partition than its log now holds: the checkpoints were written
    against other logs by these names."""


# Spark's Kafka source, finding a checkpointed offset beyond the end of a partition (its failOnDataLoss check)
OTHER_LOG = re.compile(r"Partition (\S+?)(?:'s)? offset was changed from (\d+) to (\d+)")


def _another_log(name: str, error: object) -> OffsetsOfAnotherLog | None:
    """The failure of query `name` said as what it means here, when it is a checkpoint of another log."""
    if not (found := OTHER_LOG.search(str(error))):
        return None
    partition, checkpointed, end = found.groups()
    return OffsetsOfAnotherLog(
        f"query {name}'s checkpoint read {partition} up to offset {checkpointed}, but that log ends at {end} now: "
        "the checkpoints were written against other logs by these topic names (the topics were created again, or "
        "this is another Kafka: a single broker and the three-broker cluster keep separate logs). Give this Kafka "
        "checkpoint and output folders of its own (checkpoint_dir and output_dir; --checkpoint-dir and "
        "--output-dir), or move both folders aside to start afresh")


class RecordsDeleted(RuntimeError):
    """Kafka deleted records (retention, delete-records) before a query read them: they are lost to the stream."""


class QueryFailed(RuntimeError):
    """A query stopped with an error of its own (a sink's disk full, a table's folder unusable); the others are
    stopped too, and each goes on from its checkpoint next run."""


# Spark's Kafka source, finding a checkpointed offset below the start of a partition's log (failOnDataLoss)
DELETED = re.compile(r"Some data may have been lost because they are not available in Kafka any more")
DELETED_RANGE = re.compile(r"Could not read records in offset \[(\d+), (\d+)\) for topic partition (\S+)")


def _records_deleted(name: str, error: object, config: StreamConfig | None) -> RecordsDeleted | None:
    """The failure of query `name` said as what it means here, when Kafka deleted records it had not read."""
    text = str(error)
    if not DELETED.search(text):
        return None
    found = DELETED_RANGE.search(text)  # the micro-batch's range: it starts with what was deleted
    what = f"{found[3]} from offset {found[1]}" if found else "its topics"
    rerun = f"{_this_python()} -m pinpipe.spark.streaming --allow-data-loss"
    if config is not None:
        rerun += f" --output-dir {shlex.quote(config.output_dir)} --checkpoint-dir {shlex.quote(config.checkpoint_dir)}"
    return RecordsDeleted(
        f"query {name} could not read {what}: Kafka deleted records there before the stream read them (retention, "
        "7 days by default, or delete-records), so they are lost to the stream (the batch extractor reads on from "
        f"each log's start by itself). To go on from what Kafka still holds, run once `{rerun}` (the notebook: "
        "allow_data_loss = True): Spark then logs each gap and reads on, and later runs go on as usual from there")


def _this_python() -> str:
    """The Python running this (the project's venv), as a user in the current folder would type it."""
    python = Path(sys.executable)
    return shlex.quote(str(python.relative_to(Path.cwd()) if python.is_relative_to(Path.cwd()) else python))


def _latest_batch(log_dir: Path) -> int | None:
    """The highest batch id in a streaming log directory (entries named N or N.compact), None when it has none."""
    if not log_dir.is_dir():
        return None
    ids = [int(entry.name.split(".")[0]) for entry in log_dir.iterdir()
           if re.fullmatch(r"\d+(\.compact)?", entry.name)]
    return max(ids, default=None)


def check_tables_match_checkpoints(config: StreamConfig, databricks: bool = False) -> None:
    """Refuse to start when a table holds more batches than its query's checkpoint has begun (a checkpoint
    deleted or replaced while its table was kept). Spark's file sink skips every batch id its log already lists,
    so the new checkpoint's first batches would be dropped without a word (here: 500 new posts, none written);
    posts_per_minute would overwrite its old batch_id=N folders with unrelated counts. Checked where the driver's
    Python can see the folders (local paths, Volumes, dbfs on Databricks); an object store is not checked."""
    for name in TABLES:
        table = locations.resolve(config.table(name), databricks).local
        checkpoint = locations.resolve(config.checkpoint(name), databricks).local
        if table is None or checkpoint is None:
            continue
        if name == "posts_per_minute":
            written = [int(p.name.split("=", 1)[1]) for p in Path(table).glob("batch_id=*")
                       if p.name.split("=", 1)[1].isdigit()]
            in_table = max(written, default=None)
        else:
            in_table = _latest_batch(Path(table) / "_spark_metadata")
        if in_table is None:
            continue
        begun = _latest_batch(Path(checkpoint) / "offsets")
        if begun is None or begun < in_table:
            raise CheckpointMismatch(
                f"{config.table(name)} holds batches up to {in_table}, but its checkpoint {config.checkpoint(name)} "
                f"{'has none' if begun is None else f'only began up to {begun}'}: Spark would skip the new batches "
                f"up to {in_table} and lose their records. Use the checkpoint folder that wrote the table, or start "
                f"afresh with both folders removed (or a new output folder).")


def start(spark: SparkSession, config: StreamConfig, databricks: bool = False) -> dict[str, StreamingQuery]:
    """Start the five queries (see the module's doc); they run until stopped, or with availableNow until what
    the topics held at start is processed. Refused first: a pyspark without the VARIANT functions (SparkTooOld),
    tables whose checkpoints do not match them (check_tables_match_checkpoints). A Spark without the Kafka source
    raises KafkaSourceMissing, which says how to give it one. If a query fails to start, those started before
    it are stopped and QueryFailed says which and why."""
    check_spark_supports_streaming()
    check_tables_match_checkpoints(config, databricks)
    queries: dict[str, StreamingQuery] = {}
    try:
        _start_queries(spark, config, queries)
    except BaseException as error:
        stop_all(queries)  # those started before one failed to
        # Spark's own message points at its deployment guide; say what to do here
        if isinstance(error, AnalysisException) and "Failed to find data source: kafka" in str(error):
            raise KafkaSourceMissing(NO_KAFKA_SOURCE_HINT) from error
        if isinstance(error, Exception):  # Spark's (a sink's folder unusable): in one line, Java frames chained
            name = next(name for name in TABLES if name not in queries)
            raise QueryFailed(f"query {name} could not start: {root_cause(error)}; no query is running") from error
        raise
    log.info("started %d streaming queries (trigger %s) writing under %s", len(queries), config.trigger,
             config.output_dir)
    return queries


def _start_queries(spark: SparkSession, config: StreamConfig, queries: dict[str, StreamingQuery]) -> None:
    for kind in KINDS:
        name = f"cleaned_{kind}"
        writer = (cleaned(read_topics(spark, config, (kind,)), kind).writeStream.queryName(name)
                  .format("parquet").option("path", config.table(name))
                  .option("checkpointLocation", config.checkpoint(name)).outputMode("append"))
        queries[name] = _trigger(writer, config.trigger).start()
    writer = (rejected(read_topics(spark, config, KINDS), config.topics).writeStream.queryName("rejected")
              .format("parquet").option("path", config.table("rejected"))
              .option("checkpointLocation", config.checkpoint("rejected")).outputMode("append"))
    queries["rejected"] = _trigger(writer, config.trigger).start()
    writer = (posts_per_minute(read_topics(spark, config, ("pin",))).writeStream.queryName("posts_per_minute")
              .foreachBatch(_updates_writer(config.table("posts_per_minute")))
              .option("checkpointLocation", config.checkpoint("posts_per_minute")).outputMode("update"))
    queries["posts_per_minute"] = _trigger(writer, config.trigger).start()


class Progress:
    """The records each query has read in this run, from its progress reports (one per micro-batch)."""

    def __init__(self, names: Iterable[str]) -> None:
        self.rows: dict[str, dict[int, int]] = {name: {} for name in names}  # query -> batch id -> input rows

    def update(self, name: str, reports: Iterable[Mapping[str, Any]]) -> None:
        batches = self.rows[name]
        for report in reports:  # an idle query reports a batch id again, with no rows: keep the batch's count
            rows = report["numInputRows"]
            if rows is None:  # pyspark 4 leaves it to its sources (StreamingQueryProgress.numInputRows)
                rows = sum(source["numInputRows"] for source in report["sources"])
            batches[report["batchId"]] = max(batches.get(report["batchId"], 0), rows)

    def any_records(self) -> bool:
        return any(any(batches.values()) for batches in self.rows.values())

    def line(self) -> str:
        parts = []
        for name, batches in self.rows.items():
            done = [rows for rows in batches.values() if rows]
            # "read": the rejected query reads all three topics, and its count is of records read, not rejected
            parts.append(f"{name} read {sum(done):,} records in {len(done)} batch{'' if len(done) == 1 else 'es'}")
        return ", ".join(parts)


def await_all(queries: dict[str, StreamingQuery], report: Callable[[str], None] = log.info,
              every_s: float = 10.0, config: StreamConfig | None = None) -> None:
    """Wait for the queries to finish (availableNow: once what the topics held is processed; an interval trigger:
    until stopped), reporting every `every_s` seconds, once records have come and when it changed, the records
    each has read so far, and at the end. A failed query stops the others and raises here, at once: QueryFailed
    with the innermost cause (Spark's error chained), OffsetsOfAnotherLog when its checkpoint belongs to another
    log, RecordsDeleted when Kafka deleted records it had not read (with the queries' `config` it names the command
    that reads on).

    It polls rather than blocking in awaitTermination: pyspark's Ctrl-C handler calls the JVM itself, which
    inside another blocked py4j call fails with "reentrant call" tracebacks."""
    progress = Progress(queries)
    said, next_report = None, time.monotonic() + every_s
    running = dict(queries)
    while running:
        for name, query in list(running.items()):  # one isActive call each (a round trip on Spark Connect)
            if not query.isActive:
                del running[name]
                if (error := query.exception()) is not None:
                    stop_all(queries)
                    if explained := _another_log(name, error) or _records_deleted(name, error, config):
                        raise explained from None
                    raise QueryFailed(f"query {name} failed: {root_cause(error)}; the other queries are stopped, "
                                      "and each goes on from its checkpoint next run") from error
        if running and time.monotonic() >= next_report:
            next_report += every_s
            for name, query in queries.items():
                progress.update(name, query.recentProgress)
            if (line := progress.line()) != said and progress.any_records():
                report(f"stream progress: {line}")
                said = line
        if running:
            time.sleep(POLL_S)
    for name, query in queries.items():
        progress.update(name, query.recentProgress)
    report(f"stream done: {progress.line()}")


def stop_all(queries: dict[str, StreamingQuery]) -> None:
    """Stop every query: a running micro-batch is interrupted, and redone from its checkpoint next time."""
    for query in queries.values():
        if query.isActive:
            query.stop()


def stop_when_idle(queries: dict[str, StreamingQuery], report: Callable[[str], None] = log.info,
                   every_s: float = 10.0, poll_s: float = POLL_S) -> None:
    """Stop each query between micro-batches, saying every `every_s` seconds which are still in one: a query
    stopped in the middle of a batch is interrupted, which is correct (the batch is done again from its
    checkpoint) but fills the log with the interrupted tasks' errors. Interrupted itself (Ctrl-C, a kernel
    interrupt), it stops the rest at once and raises KeyboardInterrupt."""
    running = {name: query for name, query in queries.items() if query.isActive}
    next_report = time.monotonic() + every_s
    try:
        while running:
            for name, query in list(running.items()):
                if not query.isActive or not query.status["isTriggerActive"]:
                    query.stop()
                    del running[name]
            if running and time.monotonic() >= next_report:
                next_report += every_s
                report(f"still in a micro-batch: {', '.join(running)} (interrupt again to stop at once)")
            if running:
                time.sleep(poll_s)
    except KeyboardInterrupt:
        stop_all(queries)
        raise


def read_table(spark: SparkSession, config: StreamConfig, name: str) -> DataFrame:
    """A cleaned or rejected table as its sink committed it (Spark reads the file sink's log)."""
    return spark.read.parquet(config.table(name))


def live_counts(spark: SparkSession, config: StreamConfig) -> DataFrame:
    """posts_per_minute as it stands: for each window and category, the count of the newest batch that
    updated it."""
    updates = spark.read.parquet(config.table("posts_per_minute"))
    newest = updates.groupBy("window", "category").agg(F.max_by("posts", "batch_id").alias("posts"))
    return newest.select(F.col("window.start").alias("minute"), "category", "posts").orderBy("minute", "category")


def row_counts(spark: SparkSession, config: StreamConfig) -> dict[str, int]:
    """Rows of the cleaned and rejected tables, and the distinct idx complete in all three (what the batch
    path would analyse)."""
    counts = {name: read_table(spark, config, name).count() for name in TABLES[:4]}
    counts["complete_idx"] = cleaned_frames(spark, config)["pin"].count()
    return counts


def write_summary(counts: dict[str, int], config: StreamConfig) -> str | None:
    """`summary.json` (the row counts) in the output folder, where Python can write; its path or None."""
    local = locations.resolve(config.output_dir, databricks=False).local
    if local is None:
        return None
    path = Path(local) / "summary.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(counts, indent=2) + "\n")
    return str(path)


def cleaned_frames(spark: SparkSession, config: StreamConfig) -> dict[str, DataFrame]:
    """The cleaned tables as the batch analytics take them: the cleaned columns only, one row per idx (the
    emulator may post an idx more than once), and only idx present in all three tables."""
    frames = {kind: read_table(spark, config, f"cleaned_{kind}").drop(*KAFKA_COLUMNS).dropDuplicates(["ind"])
              for kind in KINDS}
    complete = (frames["pin"].select("ind").join(frames["geo"].select("ind"), "ind")
                .join(frames["user"].select("ind"), "ind"))
    return {kind: frame.join(complete, "ind", "left_semi") for kind, frame in frames.items()}


def main(argv: list[str] | None = None) -> int:
    """Run the streaming queries from a shell (the notebook does the same): python -m pinpipe.spark.streaming"""
    from pinpipe.spark.notebook_params import check_trigger

    parser = argparse.ArgumentParser(prog="python -m pinpipe.spark.streaming", description=main.__doc__)
    parser.add_argument("--output-dir", default="stream_data/tables", help="tables (default stream_data/tables)")
    parser.add_argument("--checkpoint-dir", default="stream_data/checkpoints",
                        help="checkpoints (default stream_data/checkpoints)")
    parser.add_argument("--trigger", default="availableNow",
                        help="availableNow (default: process what is there, then stop) or an interval, "
                             "e.g. '5 seconds' (run until Ctrl-C)")
    parser.add_argument("--max-offsets-per-trigger", type=int, default=None)
    parser.add_argument("--master", default="local[*]", help="Spark master (default local[*])")
    parser.add_argument("--allow-data-loss", action="store_true",
                        help="read on past records Kafka deleted before the stream read them (retention), Spark "
                             "logging each gap; without it the queries stop there and say so (exit 2)")
    parser.add_argument("--small", action=argparse.BooleanOptionalAction, default=True,
                        help="a new JVM compiles with C1 only and starts sooner (default); --no-small for topics of "
                             "more than ~100,000 records")
    args = parser.parse_args(argv)
    try:
        check_trigger(args.trigger)
    except ValueError as exc:
        parser.error(str(exc))
    try:
        check_spark_supports_streaming()  # before a session starts and a connector is fetched for this Spark
    except SparkTooOld as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    from pinpipe.common.config import cli_settings
    from pinpipe.common.logs import setup_logging
    from pinpipe.spark.session import get_spark

    setup_logging()
    settings = cli_settings()
    config = StreamConfig(settings.kafka_bootstrap_servers, dict(settings.topics),
                          locations.resolve(args.output_dir, False).spark,
                          locations.resolve(args.checkpoint_dir, False).spark,
                          args.trigger, args.max_offsets_per_trigger, allow_data_loss=args.allow_data_loss)
    spark = get_spark(args.master, app_name="pinterest-stream", kafka=True, small=args.small)
    # pyspark's own Ctrl-C handler cancels every Spark job first: the queries then died in pages of cancelled-job
    # errors instead of being stopped. While they start, Ctrl-C is held until they all have; then it raises
    # KeyboardInterrupt and nothing else.
    held: list[int] = []
    signal.signal(signal.SIGINT, lambda signum, frame: held.append(signum))
    try:
        queries = start(spark, config)
    except CheckpointMismatch as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (KafkaSourceMissing, QueryFailed) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        if held:
            raise KeyboardInterrupt
        await_all(queries, config=config)
    except KeyboardInterrupt:
        log.info("Ctrl-C: stopping each query once its micro-batch in progress is committed (Ctrl-C again: at once; "
                 "a micro-batch cut short is done again from its checkpoint next run)")
        try:
            stop_when_idle(queries)
        except KeyboardInterrupt:  # a second Ctrl-C: stopped at once
            pass
        log.info("stopped")
        return 130
    except (OffsetsOfAnotherLog, RecordsDeleted) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except QueryFailed as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    counts = row_counts(spark, config)
    write_summary(counts, config)
    print(" ".join(f"{name}={count}" for name, count in counts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
