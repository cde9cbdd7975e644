"""The analytics questions, each a pure function of the cleaned frames returning exactly its columns.

Definitions (README, "Analytics"): a post is a row of df_pin; a user is a distinct (user_name, age,
date_joined) whose follower count is the largest non-null follower_count among pins with the same ind;
ties go to the larger count, then to the name ascending; medians are exact (percentile_cont 0.5).
"""
from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

# (label, lowest age, highest age); the last group is open-ended. Younger ages get no group.
AGE_GROUPS: tuple[tuple[str, int, int | None], ...] = (("18-24", 18, 24), ("25-35", 25, 35), ("36-50", 36, 50),
                                                       ("50+", 51, None))
POST_YEARS = (2018, 2022)
JOIN_YEARS = (2015, 2020)


def age_group(age: Column) -> Column:
    """The AGE_GROUPS label of an age, null for ages below the first group (or null ages)."""
    result = None
    for label, low, high in AGE_GROUPS:
        condition = (age >= low) if high is None else age.between(low, high)
        result = F.when(condition, F.lit(label)) if result is None else result.when(condition, F.lit(label))
    return result


def top_per_group(df: DataFrame, group: str, name: str, value: str) -> DataFrame:
    """One row per `group` of (`group`, `name`, `value`): the largest `value`, ties to `name` ascending; `value` is a
    non-null integer.

    The least (-value, name) pair of each group, by one aggregation: Spark reduces it inside each partition before a
    shuffle of one row per group, where a window would shuffle and sort every row. Rows repeated do not change it."""
    best = F.min(F.struct((-F.col(value).cast(T.LongType())).alias("negated"), F.col(name).alias("name")))
    return (df.groupBy(group).agg(best.alias("_best"))
            .select(group, F.col("_best.name").alias(name),
                    (-F.col("_best.negated")).cast(df.schema[value].dataType).alias(value)))


def median(column: str) -> Column:
    """Exact median, interpolated between the two middle values on an even count."""
    return F.percentile(F.col(column), F.lit(0.5)).cast(T.DoubleType())


def posts_with_geo(pin: DataFrame, geo: DataFrame) -> DataFrame:
    """Posts with their geo row: the columns the country and year questions read."""
    return (pin.select("ind", "category", "poster_name", "follower_count")
            .join(geo.select("ind", "country", "timestamp"), on="ind", how="inner"))


def posts_with_user(pin: DataFrame, user: DataFrame) -> DataFrame:
    """Posts with their user row: the columns the age group question reads."""
    return pin.select("ind", "category").join(user.select("ind", "age"), on="ind", how="inner")


def users(pin: DataFrame, user: DataFrame) -> DataFrame:
    """Distinct users with their follower count (largest non-null among pins with the same ind).

    One aggregation: each user row meets all the pins of its ind, and the user's maximum is taken over them."""
    return (user.select("ind", "user_name", "age", "date_joined")
            .join(pin.select("ind", "follower_count"), on="ind", how="left")
            .groupBy("user_name", "age", "date_joined")
            .agg(F.max("follower_count").alias("follower_count")))


def q1_top_category_by_country(pin: DataFrame, geo: DataFrame) -> DataFrame:
    counts = (posts_with_geo(pin, geo).where(F.col("country").isNotNull() & F.col("category").isNotNull())
              .groupBy("country", "category").agg(F.count(F.lit(1)).alias("category_count")))
    return top_per_group(counts, "country", "category", "category_count").orderBy("country")


def q2_category_posts_by_year(pin: DataFrame, geo: DataFrame) -> DataFrame:
    first, last = POST_YEARS
    return (posts_with_geo(pin, geo)
            .select(F.year("timestamp").alias("post_year"), "category")
            .where(F.col("post_year").between(first, last) & F.col("category").isNotNull())
            .groupBy("post_year", "category").agg(F.count(F.lit(1)).alias("category_count"))
            .select("post_year", "category", "category_count").orderBy("post_year", "category"))


def q3a_top_user_by_country(pin: DataFrame, geo: DataFrame) -> DataFrame:
    posters = (posts_with_geo(pin, geo)
               .where(F.col("country").isNotNull() & F.col("poster_name").isNotNull()
                      & F.col("follower_count").isNotNull()))
    return top_per_group(posters, "country", "poster_name", "follower_count").orderBy("country")


def q3b_country_with_top_user(pin: DataFrame, geo: DataFrame) -> DataFrame:
    return (q3a_top_user_by_country(pin, geo)
            .orderBy(F.col("follower_count").desc(), F.col("country").asc()).limit(1)
            .select("country", "follower_count"))


def q4_top_category_by_age_group(pin: DataFrame, user: DataFrame) -> DataFrame:
    counts = (posts_with_user(pin, user)
              .select(age_group(F.col("age")).alias("age_group"), "category")
              .where(F.col("age_group").isNotNull() & F.col("category").isNotNull())
              .groupBy("age_group", "category").agg(F.count(F.lit(1)).alias("category_count")))
    return top_per_group(counts, "age_group", "category", "category_count").orderBy("age_group")


def _users_with_followers(pin: DataFrame, user: DataFrame) -> DataFrame:
    return users(pin, user).where(F.col("follower_count").isNotNull())


def q5_median_followers_by_age_group(pin: DataFrame, user: DataFrame) -> DataFrame:
    return (_users_with_followers(pin, user)
            .select(age_group(F.col("age")).alias("age_group"), "follower_count")
            .where(F.col("age_group").isNotNull())
            .groupBy("age_group").agg(median("follower_count").alias("median_follower_count"))
            .orderBy("age_group"))


def q6_users_joined_by_year(pin: DataFrame, user: DataFrame) -> DataFrame:
    first, last = JOIN_YEARS
    return (users(pin, user).select(F.year("date_joined").alias("post_year"))
            .where(F.col("post_year").between(first, last))
            .groupBy("post_year").agg(F.count(F.lit(1)).alias("number_users_joined"))
            .orderBy("post_year"))


def q7_median_followers_by_join_year(pin: DataFrame, user: DataFrame) -> DataFrame:
    first, last = JOIN_YEARS
    return (_users_with_followers(pin, user).select(F.year("date_joined").alias("post_year"), "follower_count")
            .where(F.col("post_year").between(first, last))
            .groupBy("post_year").agg(median("follower_count").alias("median_follower_count"))
            .orderBy("post_year"))


def q8_median_followers_by_age_group_and_join_year(pin: DataFrame, user: DataFrame) -> DataFrame:
    first, last = JOIN_YEARS
    return (_users_with_followers(pin, user)
            .select(age_group(F.col("age")).alias("age_group"), F.year("date_joined").alias("post_year"),
                    "follower_count")
            .where(F.col("age_group").isNotNull() & F.col("post_year").between(first, last))
            .groupBy("age_group", "post_year").agg(median("follower_count").alias("median_follower_count"))
            .orderBy("age_group", "post_year"))


def all_results(pin: DataFrame, geo: DataFrame, user: DataFrame, cache_shared: bool = True,
                small: bool = False) -> dict[str, DataFrame]:
    """The nine results by name (the names of the files they are written to).

    With `cache_shared`, what several questions share (posts with geo, users, and q3a, which q3b ranks) is
    cached: Spark finds a cached plan inside any later query, so each is computed once. `small`: the frames are a
    small batch in one partition each (spark_io.single_partition); nothing is cached (recomputing is cheaper) and
    every join is a sort-merge join, which needs no shuffle there, where a broadcast would be a Spark job of its own.
    """
    if small:
        pin, geo, user = (df.hint("merge") for df in (pin, geo, user))
    elif cache_shared:
        for shared in (posts_with_geo(pin, geo), users(pin, user),
                       q3a_top_user_by_country(pin, geo)):  # q3b is the top row of q3a
            shared.cache()
    return {
        "q1_top_category_by_country": q1_top_category_by_country(pin, geo),
        "q2_category_posts_by_year": q2_category_posts_by_year(pin, geo),
        "q3a_top_user_by_country": q3a_top_user_by_country(pin, geo),
        "q3b_country_with_top_user": q3b_country_with_top_user(pin, geo),
        "q4_top_category_by_age_group": q4_top_category_by_age_group(pin, user),
        "q5_median_followers_by_age_group": q5_median_followers_by_age_group(pin, user),
        "q6_users_joined_by_year": q6_users_joined_by_year(pin, user),
        "q7_median_followers_by_join_year": q7_median_followers_by_join_year(pin, user),
        "q8_median_followers_by_age_group_and_join_year": q8_median_followers_by_age_group_and_join_year(pin, user),
    }
