"""Cleaning the three raw frames: pure DataFrame -> DataFrame functions, each ending in its schema contract."""
from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from pinpipe.common import schema

PLACEHOLDERS = schema.PLACEHOLDERS  # per column, the values the source uses instead of null

WHITESPACE = " \t\n\x0b\f\r"  # spaces, tabs and line breaks (the characters of regex \s)
FOLLOWER_PATTERN = r"^\s*(?:\d+(?:\.\d+)?[kKmM]|\d+)\s*$"  # a decimal only with a suffix
SUFFIX_MULTIPLIER = {"k": 1_000, "m": 1_000_000}
SUFFIX_CHARACTERS = ("k", "K", "m", "M")
# What FOLLOWER_PATTERN lets surround a count: \s, and a line terminator at the very end (where $ matches too).
AROUND_NUMBER = WHITESPACE + "\u0085\u2028\u2029"
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
    """Empty, or whitespace only (null for null). The regex runs only on values that sort before "!" (empty, or
    starting with a whitespace or control character): a regex first copies the whole text into a Java string.

    The regex sits in a branch of CASE WHEN, not in an AND: Spark computes a subexpression that a projection
    uses twice (this test, in a quality verdict and in blank_to_null) once per row ahead of everything, and an
    AND's operands count as always evaluated, so the regex ran on every value (CASE WHEN's branches do not).
    The first byte is compared in place, where F.left would copy out the first character of every value."""
    return F.when(column >= F.lit("!"), F.lit(False)).otherwise(~column.rlike(r"\S"))


def blank_to_null(column: Column) -> Column:
    """Empty and whitespace-only strings become null; other values keep their surrounding spaces."""
    return F.when(~is_blank(column), column)


def placeholder_to_null(column: Column, placeholders: tuple[str, ...]) -> Column:
    return F.when(~column.isin(*placeholders), column)


def follower_count_text(column: Column) -> Column:
    """A follower count without what FOLLOWER_PATTERN lets surround it (whitespace; a line terminator at the end,
    where $ matches too): '13k' for ' 13k\\n'. For a value the pattern accepts, the number and its suffix."""
    return F.btrim(column, F.lit(AROUND_NUMBER))


def follower_count_suffix(column: Column) -> Column:
    """For a value FOLLOWER_PATTERN accepts: whether it ends in a k/K/m/M suffix."""
    return F.right(follower_count_text(column), F.lit(1)).isin(*SUFFIX_CHARACTERS)


def parse_follower_count(column: Column) -> Column:
    """'13k' -> 13000, '2M' -> 2000000, '1.2k' -> 1200, '850' -> 850; anything else null.

    One regex decides what is a count (FOLLOWER_PATTERN); the number and its suffix are then cut out of the
    trimmed text by position, where regexp_extract would run the regex again for each part (and copy the text
    into a Java string each time)."""
    decimal = T.DecimalType(24, 6)  # exact: 1.2 * 1000 in binary floating point is 1199.9999...
    text = follower_count_text(column)
    # Both cases compared as written: F.lower would set up ICU case mapping tables, a second of a cold start.
    last = F.right(text, F.lit(1))
    multiplier = (F.when(last.isin("k", "K"), F.lit(SUFFIX_MULTIPLIER["k"]))
                  .when(last.isin("m", "M"), F.lit(SUFFIX_MULTIPLIER["m"])))
    number = F.when(multiplier.isNull(), text).otherwise(F.left(text, F.length(text) - 1))
    value = try_cast(number, decimal) * F.coalesce(multiplier, F.lit(1))
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


CLEANERS = {"pin": clean_pin, "geo": clean_geo, "user": clean_user}
