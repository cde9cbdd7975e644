"""What each cleaning rule changed, counted while the cleaned tables are saved: the data quality table.

Each rule is a condition on one row of a table: the raw row (a blank, a placeholder) or the cleaned row (a value
present before and null once parsed, a follower count with a k/M suffix that became an integer, a save location
that lost its prefix). Both are counted over the cleaned row, which carries, ahead of its cleaned values, each
raw rule's verdict and the raw values the other rules compare (blank-nulled): so the counts are sums over the one
frame the save writes, and no rule parses anything again.

QualityAudit attaches the counts to the frames the save writes (DataFrame.observe): they are taken during the
save's one pass over each raw file. A Spark that reports no observed metrics for a write (Spark Connect 3.5)
counts the same sums with a pass of their own instead.
"""
from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pyspark.sql import Column, DataFrame, Observation, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from pinpipe.spark.cleaning import CLEANERS, PLACEHOLDERS, follower_count_suffix, is_blank, placeholder_to_null
from pinpipe.spark.session import is_connect

if TYPE_CHECKING:
    import pandas as pd

REPORT_COLUMNS = ["table", "column", "rule", "values_changed"]
# The raw columns the cleaned row of a table carries, for the rules that compare a raw value with its cleaned one.
CARRIED = {"pin": ("follower_count", "save_location"), "geo": ("timestamp", "latitude", "longitude"),
           "user": ("age", "date_joined")}
# How long report() waits at most for the saved tables' counts once the save has returned (a classic session
# delivers them on its listener bus, within milliseconds of the save; report() waits until the bus has handled every
# event posted so far, so a table never saved is known at once); past that they are counted by a pass of their own.
OBSERVED_WAIT_S = 30.0
# The observed row count's name, beside the rules' r0, r1, ... (tallies).
ROWS = "rows"


def carried(column: str) -> str:
    """The name a raw column is carried under in the cleaned row."""
    return f"_raw_{column}"


def verdict(index: int) -> str:
    """The name the cleaned row carries a raw rule's condition under (the rule's place in its table's list)."""
    return f"_rule_{index}"


@dataclass(frozen=True)
class Rule:
    """A cleaning rule of one column, counted where `condition` holds on the raw row or (`on_cleaned`) the
    cleaned row."""

    column: str
    rule: str
    condition: Column
    on_cleaned: bool = False


def rules_of(table: str, raw: DataFrame) -> list[Rule]:
    """The cleaning rules of one raw table, in report order."""
    rules = [Rule(f.name, "blank -> null", is_blank(F.col(f.name))) for f in raw.schema.fields
             if isinstance(f.dataType, T.StringType)]
    if table == "pin":
        follower, location = F.col(carried("follower_count")), F.col(carried("save_location"))
        # No placeholder is blank, so the raw value can be compared as it is.
        rules += [Rule(c, "placeholder -> null", F.col(c).isin(*v)) for c, v in PLACEHOLDERS.items()]
        rules += [
            # parsed, so the raw value is a count FOLLOWER_PATTERN accepts
            Rule("follower_count", "k/M suffix -> integer",
                 F.col("follower_count").isNotNull() & follower_count_suffix(follower), on_cleaned=True),
            Rule("follower_count", "unparseable -> null",
                 placeholder_to_null(follower, PLACEHOLDERS["follower_count"]).isNotNull()
                 & F.col("follower_count").isNull(), on_cleaned=True),
            Rule("save_location", "prefix removed / unparseable -> null",
                 location.isNotNull() & ~F.col("save_location").eqNullSafe(location), on_cleaned=True),
        ]
    parsed = {"geo": {"timestamp": F.col("timestamp"), "latitude": F.col("coordinates")[0],
                      "longitude": F.col("coordinates")[1]},
              "user": {"age": F.col("age"), "date_joined": F.col("date_joined")}}.get(table, {})
    rules += [Rule(c, "unparseable -> null", F.col(carried(c)).isNotNull() & value.isNull(), on_cleaned=True)
              for c, value in parsed.items()]
    return rules


def tallies(rules: list[Rule]) -> list[Column]:
    """One count per rule over the cleaned row (cleaned_with_raw), named by the rule's place in the list.
    sum(when(condition, 1)): Spark compiles it into the scan, where count_if costs twice as much."""
    return [F.sum(F.when(F.col(verdict(i)) if not r.on_cleaned else r.condition, 1).otherwise(0)).alias(f"r{i}")
            for i, r in enumerate(rules)]


def cleaned_with_raw(table: str, raw: DataFrame, rules: list[Rule]) -> DataFrame:
    """The table cleaned (clean_pin, clean_geo, clean_user) with, ahead of it, each raw rule's verdict and the
    CARRIED raw values, blank-nulled. carried_columns(table, rules) are the extra columns."""
    verdicts = {verdict(i): r.condition for i, r in enumerate(rules) if not r.on_cleaned}
    copies = raw.withColumns({**verdicts, **{carried(c): F.col(c) for c in CARRIED[table]}})
    return CLEANERS[table](copies, keep=carried_columns(table, rules))


def carried_columns(table: str, rules: list[Rule]) -> tuple[str, ...]:
    return (*(verdict(i) for i, r in enumerate(rules) if not r.on_cleaned), *(carried(c) for c in CARRIED[table]))


class QualityAudit:
    """The cleaned tables of a raw batch, counting the quality table's rules as they are computed.

    `cleaned`: clean_pin, clean_geo and clean_user of the raw frames (the same columns and values), each
    observed; save them once (spark_io.save_cleaned), then report() has every count without reading anything
    again."""

    def __init__(self, raw: dict[str, DataFrame]) -> None:
        self.raw = raw
        self.rules = {table: rules_of(table, frame) for table, frame in raw.items()}
        self._observed: dict[str, Observation] = {}
        self.cleaned: dict[str, DataFrame] = {}
        for table, frame in raw.items():
            rules = self.rules[table]
            # a name unique in the session: a notebook cell may run again
            observation = Observation(f"quality-{table}-{uuid.uuid4().hex[:12]}")
            watched = cleaned_with_raw(table, frame, rules).observe(observation, *tallies(rules),
                                                                    F.count(F.lit(1)).alias(ROWS))
            self.cleaned[table] = watched.drop(*carried_columns(table, rules))
            self._observed[table] = observation
        self.counted_during_save: bool | None = None  # known once report() has run

    def _counts(self) -> dict[str, dict[str, int] | None]:
        """Each table's observed counts, None where there are none."""
        return _observed_counts(self._observed, next(iter(self.raw.values())).sparkSession)

    def saved_rows(self, saved: dict[str, DataFrame]) -> dict[str, int]:
        """The rows of each table saved (spark_io.save_cleaned's frames read back): counted during the save, or by a
        count of the table read back where this Spark reports no observed metrics for a write (three more jobs)."""
        counts = self._counts()
        return {table: counts[table][ROWS] if counts.get(table) else frame.count() for table, frame in saved.items()}

    def report(self) -> pd.DataFrame:
        """For each rule, how many values it changed or nulled, as a pandas frame (small, on the driver already).
        After the save: the counts it took. Without them (not saved, or a Spark that reports no metrics for a
        write) every table is counted by a pass of its own."""
        counts = self._counts()
        self.counted_during_save = all(c is not None for c in counts.values())
        if not self.counted_during_save:
            counts = _counted(self.raw, self.rules)
        return _report(self.rules, counts)


def quality_report(raw_pin: DataFrame, raw_geo: DataFrame, raw_user: DataFrame) -> pd.DataFrame:
    """The quality table of a raw batch by a pass of its own over each table (QualityAudit counts it while
    saving)."""
    raw = {"pin": raw_pin, "geo": raw_geo, "user": raw_user}
    rules = {table: rules_of(table, frame) for table, frame in raw.items()}
    return _report(rules, _counted(raw, rules))


def _observed_counts(observed: dict[str, Observation],
                     spark: SparkSession) -> dict[str, dict[str, int] | None]:
    """Each table's observed counts, or None where there are none: not saved, or a Spark that reports none for a
    write (a Spark Connect 3.5 client has an empty dict)."""
    if is_connect(spark):  # delivered with the write's response, or never: Observation.get does not wait
        return {table: _delivered(observation) for table, observation in observed.items()}
    # A classic session: its listener bus sets each observation when the action that ran its frame ends, and
    # Observation.get would wait for one that never runs. Once the bus has handled every event posted before this
    # call (or the wait runs out), an observation not set has nothing coming.
    from py4j.protocol import Py4JError  # classic sessions only: a Spark Connect client may have no py4j

    try:
        _drain_listener_bus(spark, OBSERVED_WAIT_S)
        arrived = {table: bool(observation._jo.future().isCompleted()) for table, observation in observed.items()}
    except Py4JError:  # the bus stayed busy (a TimeoutException), or a JVM that keeps these from Python
        return _delivered_within(observed, OBSERVED_WAIT_S)
    return {table: _delivered(observation) if arrived[table] else None for table, observation in observed.items()}


def _drain_listener_bus(spark: SparkSession, seconds: float) -> None:
    """Wait until Spark's listener bus has handled every event posted so far (a py4j error past `seconds`)."""
    spark.sparkContext._jsc.sc().listenerBus().waitUntilEmpty(int(seconds * 1000))


def _delivered_within(observed: dict[str, Observation], seconds: float) -> dict[str, dict[str, int] | None]:
    """_delivered of each, waiting at most `seconds` in all for them (a classic Observation.get waits for good)."""
    found: dict[str, dict[str, int] | None] = {}
    waiters = [threading.Thread(target=lambda t=table, o=observation: found.update({t: _delivered(o)}), daemon=True)
               for table, observation in observed.items()]
    for waiter in waiters:
        waiter.start()
    deadline = time.monotonic() + seconds
    for waiter in waiters:
        waiter.join(max(0.0, deadline - time.monotonic()))
    return {table: found.get(table) for table in observed}


def _delivered(observation: Observation) -> dict[str, int] | None:
    try:
        return observation.get or None
    except Exception:  # an Observation this Spark does not deliver (Spark Connect 3.5), or its save failed
        return None


def _counted(raw: dict[str, DataFrame], rules: dict[str, list[Rule]]) -> dict[str, dict[str, int]]:
    """Every table's counts by a pass of its own, the tables at once (from threads), so the small ones fill the
    cores while the large one finishes."""
    def count(table: str) -> dict[str, int]:
        return cleaned_with_raw(table, raw[table], rules[table]).select(*tallies(rules[table])).first().asDict()

    with ThreadPoolExecutor(max_workers=len(raw)) as pool:
        return dict(zip(raw, pool.map(count, raw)))


def _report(rules: dict[str, list[Rule]], counts: dict[str, dict[str, int]]) -> pd.DataFrame:
    import pandas as pd

    rows = [(table, r.column, r.rule, counts[table][f"r{i}"] or 0)
            for table, table_rules in rules.items() for i, r in enumerate(table_rules)]
    return pd.DataFrame(rows, columns=REPORT_COLUMNS)
