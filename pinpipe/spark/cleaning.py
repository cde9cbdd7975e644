"""Cleaning the three raw frames: pure DataFrame -> DataFrame functions, each ending in its schema contract."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from pinpipe.common import schema

if TYPE_CHECKING:
    import pandas as pd

PLACEHOLDERS = schema.PLACEHOLDERS  # per column, the values the source uses instead of null

WHITESPACE = " \t\n\x0b\f\r"  # spaces, tabs and line breaks (the characters of regex \s)
FOLLOWER_PATTERN = r"^\s*(\d+(?:\.\d+)?)([kKmM])\s*$|^\s*(\d+)\s*$"
SUFFIX_MULTIPLIER = {"k": 1_000, "m": 1_000_000}
TIMESTAMP_PATTERN = "yyyy-MM-dd HH:mm:ss"
SAVE_LOCATION_PATTERN = r"^(?:Local save in )?(/.*)$"



INT_MAX = 2**31 - 1
INTEGER_TEXT = r"^\s*[+-]?\d+\s*$"


def try_cast(column: Column, to: T.DataType) -> Column:
    """`column` as `to`, null where it does not convert, on Spark 4 (Column.try_cast, ANSI on) and 3.5.

    Spark 3.5 has no Column.try_cast; there a plain cast with ANSI off (get_spark sees to it) gives null on
    failure too, except that it would truncate '12.5' to the integer 12 where try_cast gives null."""
    if hasattr(type(column), "try_cast"):  # on the class: a 3.5 Column answers any attribute as a field
        return column.try_cast(to)
    if isinstance(to, T.IntegralType) and not isinstance(to, T.LongType):
        return F.when(column.cast(T.StringType()).rlike(INTEGER_TEXT), column.cast(to))
    return column.cast(to)


def is_blank(column: Column) -> Column:
    """Empty, or whitespace only. The regex runs only on values that start with whitespace: most values
    start with something else, and a regex first copies the whole text into a Java string."""
    return (column == F.lit("")) | (F.left(column, F.lit(1)).isin(*WHITESPACE) & ~column.rlike(r"\S"))


def blank_to_null(column: Column) -> Column:
    """Empty and whitespace-only strings become null; other values keep their surrounding spaces."""
    return F.when(~is_blank(column), column)


def placeholder_to_null(column: Column, placeholders: tuple[str, ...]) -> Column:
    return F.when(~column.isin(*placeholders), column)


def parse_follower_count(column: Column) -> Column:
    """'13k' -> 13000, '2M' -> 2000000, '1.2k' -> 1200, '850' -> 850; anything else null."""
    decimal = T.DecimalType(24, 6)  # exact: 1.2 * 1000 in binary floating point is 1199.9999...
    number = try_cast(F.regexp_extract(column, FOLLOWER_PATTERN, 1), decimal)
    # Both cases compared as written: F.lower would set up ICU case mapping tables, a second of a cold start.
    suffix = F.regexp_extract(column, FOLLOWER_PATTERN, 2)
    plain = try_cast(F.regexp_extract(column, FOLLOWER_PATTERN, 3), decimal)
    value = (F.when(suffix.isin("k", "K"), number * F.lit(SUFFIX_MULTIPLIER["k"]))
             .when(suffix.isin("m", "M"), number * F.lit(SUFFIX_MULTIPLIER["m"]))
             .when(suffix == "", plain))
    # Guarded, as Spark 3.5 without ANSI wraps a decimal too large for an int around instead of giving null.
    return F.when(column.rlike(FOLLOWER_PATTERN) & (value <= F.lit(INT_MAX)),
                  try_cast(F.floor(value), T.IntegerType()))


def parse_timestamp(column: Column) -> Column:
    return F.try_to_timestamp(column, F.lit(TIMESTAMP_PATTERN))


def save_path(column: Column) -> Column:
    """'Local save in /data/art' -> '/data/art'."""
    return F.nullif(F.regexp_extract(column, SAVE_LOCATION_PATTERN, 1), F.lit(""))


def with_blanks_nulled(df: DataFrame) -> DataFrame:
    """Apply blank_to_null to every string column.

    The clean_* functions below take `keep`: columns passed through ahead of the cleaned ones (the
    streaming tables keep each record's topic, partition and offset)."""
    return df.select(*[blank_to_null(F.col(f.name)).alias(f.name) if isinstance(f.dataType, T.StringType)
                       else F.col(f.name) for f in df.schema.fields])


def clean_pin(raw: DataFrame, keep: tuple[str, ...] = ()) -> DataFrame:
    df = raw.transform(with_blanks_nulled)
    text = {name: placeholder_to_null(F.col(name), values) for name, values in PLACEHOLDERS.items()}
    return df.select(
        *keep,
        try_cast(F.col("idx"), T.IntegerType()).alias("ind"),
        F.col("unique_id"),
        text["title"].alias("title"),
        text["description"].alias("description"),
        parse_follower_count(text["follower_count"]).alias("follower_count"),
        text["poster_name"].alias("poster_name"),
        text["tag_list"].alias("tag_list"),
        F.col("is_image_or_video"),
        text["image_src"].alias("image_src"),
        save_path(F.col("save_location")).alias("save_location"),
        F.col("category"),
    )


def clean_geo(raw: DataFrame, keep: tuple[str, ...] = ()) -> DataFrame:
    df = raw.transform(with_blanks_nulled)
    return df.select(
        *keep,
        try_cast(F.col("idx"), T.IntegerType()).alias("ind"),
        F.col("country"),
        F.array(try_cast(F.col("latitude"), T.DoubleType()), try_cast(F.col("longitude"), T.DoubleType()))
        .alias("coordinates"),
        parse_timestamp(F.col("timestamp")).alias("timestamp"),
    )


def clean_user(raw: DataFrame, keep: tuple[str, ...] = ()) -> DataFrame:
    df = raw.transform(with_blanks_nulled)
    return df.select(
        *keep,
        try_cast(F.col("idx"), T.IntegerType()).alias("ind"),
        F.concat(F.col("first_name"), F.lit(" "), F.col("last_name")).alias("user_name"),  # null if either is
        try_cast(F.col("age"), T.IntegerType()).alias("age"),
        parse_timestamp(F.col("date_joined")).alias("date_joined"),
    )


QualityRule = tuple[str, str, Column, Column | None]
"""(column, rule, condition on the raw row, value in the cleaned row). Without a cleaned value, the rule changed
the values meeting the condition. With one, the condition marks the values the rule tried (present, not blank)
and it nulled those whose cleaned value is null: counted from the saved table, so the raw pass parses nothing."""


def quality_rules(table: str, raw: DataFrame) -> list[QualityRule]:
    """The cleaning rules of one raw table, each with how to count the values it changed or nulled."""
    text_columns = [f.name for f in raw.schema.fields if isinstance(f.dataType, T.StringType)]
    rules: list[QualityRule] = [(c, "blank -> null", is_blank(F.col(c)), None) for c in text_columns]
    if table == "pin":
        follower = placeholder_to_null(blank_to_null(F.col("follower_count")), PLACEHOLDERS["follower_count"])
        location = blank_to_null(F.col("save_location"))
        # No placeholder is blank, so the raw value can be compared as it is.
        rules += [(c, "placeholder -> null", F.col(c).isin(*v), None) for c, v in PLACEHOLDERS.items()]
        rules += [
            ("follower_count", "k/M suffix -> integer",
             F.col("follower_count").rlike(r"[kKmM]\s*$") & parse_follower_count(follower).isNotNull(), None),
            ("follower_count", "unparseable -> null", follower.isNotNull(), F.col("follower_count")),
            ("save_location", "prefix removed / unparseable -> null",
             location.isNotNull() & ~save_path(location).eqNullSafe(location), None),
        ]
    parsed = {"geo": {"timestamp": F.col("timestamp"), "latitude": F.col("coordinates")[0],
                      "longitude": F.col("coordinates")[1]},
              "user": {"age": F.col("age"), "date_joined": F.col("date_joined")}}.get(table, {})
    rules += [(c, "unparseable -> null", blank_to_null(F.col(c)).isNotNull(), value) for c, value in parsed.items()]
    return rules


CLEANERS = {"pin": clean_pin, "geo": clean_geo, "user": clean_user}


def quality_report(raw_pin: DataFrame, raw_geo: DataFrame, raw_user: DataFrame,
                   cleaned: dict[str, DataFrame] | None = None) -> pd.DataFrame:
    """For each cleaning rule, how many values it changed or nulled: one pass over each raw table, plus a
    count of parsed values in each cleaned one (`cleaned`: the tables as saved; by default cleaned here).
    The three tables are counted at once (one job each, from threads), so the small ones fill the cores while the
    large one finishes. Returned as a pandas frame: it is small and on the driver already (a Spark frame made of
    it took a job, 2 s of a cold JVM, to show).

    Counted as sum(when(condition, 1)): Spark compiles it into the scan, where count_if costs twice as much.
    """
    def table_report(item: tuple[str, DataFrame]) -> list[tuple[str, str, str, int]]:
        table, raw = item
        rules = quality_rules(table, raw)
        met = raw.select(*[F.sum(F.when(condition, 1).otherwise(0)).alias(f"r{i}")
                           for i, (_, _, condition, _) in enumerate(rules)]).first()
        parsed = [(i, value) for i, (_, _, _, value) in enumerate(rules) if value is not None]
        table_cleaned = cleaned[table] if cleaned is not None else CLEANERS[table](raw)
        kept = table_cleaned.select(*[F.count(value).alias(f"r{i}") for i, value in parsed]).first() if parsed else {}
        return [(table, column, rule, (met[f"r{i}"] or 0) - (kept[f"r{i}"] if value is not None else 0))
                for i, (column, rule, _, value) in enumerate(rules)]

    tables = (("pin", raw_pin), ("geo", raw_geo), ("user", raw_user))
    with ThreadPoolExecutor(max_workers=len(tables)) as pool:
        rows = [row for report in pool.map(table_report, tables) for row in report]
    import pandas as pd

    return pd.DataFrame(rows, columns=["table", "column", "rule", "values_changed"])
