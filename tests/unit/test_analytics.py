"""Each analytics question on hand-built cleaned frames; expectations computed by hand."""
from __future__ import annotations

from datetime import datetime

import pytest
from pyspark.testing import assertDataFrameEqual

from pinpipe.spark import analytics

PIN = ("ind int, unique_id string, title string, description string, follower_count int, poster_name string, "
       "tag_list string, is_image_or_video string, image_src string, save_location string, category string")
GEO = "ind int, country string, coordinates array<double>, timestamp timestamp"
USER = "ind int, user_name string, age int, date_joined timestamp"


def pins(spark, rows):
    """rows: (ind, category, poster_name, follower_count)"""
    return spark.createDataFrame([(i, None, None, None, f, p, None, "image", None, None, c) for i, c, p, f in rows], PIN)


def geos(spark, rows):
    """rows: (ind, country, year)"""
    return spark.createDataFrame([(i, c, [0.0, 0.0], datetime(y, 6, 1)) for i, c, y in rows], GEO)


def users(spark, rows):
    """rows: (ind, user_name, age, join_year)"""
    return spark.createDataFrame([(i, n, a, datetime(y, 1, 1) if y else None) for i, n, a, y in rows], USER)


@pytest.fixture
def posts(spark):
    pin = pins(spark, [
        (0, "art", "Ann", 100), (1, "art", "Bob", 300), (2, "beauty", "Cy", 300), (3, "beauty", "Dee", 50),
        (4, "travel", "Eve", 700), (5, None, None, None), (6, "quotes", "Fay", None), (7, "art", "Gus", 10),
    ])
    geo = geos(spark, [
        (0, "France", 2018), (1, "France", 2019), (2, "France", 2019), (3, "France", 2023),
        (4, "Peru", 2022), (5, "Peru", 2020), (6, None, 2017), (7, "Chad", 2018),
    ])
    return pin, geo


def test_q1_ties_go_to_the_category_name_and_null_keys_are_left_out(spark, posts):
    expected = spark.createDataFrame([("Chad", "art", 1), ("France", "art", 2), ("Peru", "travel", 1)],
                                     "country string, category string, category_count long")
    assertDataFrameEqual(analytics.q1_top_category_by_country(*posts), expected)


def test_q2_counts_posts_per_category_and_year_in_2018_to_2022(spark, posts):
    expected = spark.createDataFrame([(2018, "art", 2), (2019, "art", 1), (2019, "beauty", 1), (2022, "travel", 1)],
                                     "post_year int, category string, category_count long")
    assertDataFrameEqual(analytics.q2_category_posts_by_year(*posts), expected)


def test_q3a_top_poster_per_country_ties_by_poster_name(spark, posts):
    expected = spark.createDataFrame([("Chad", "Gus", 10), ("France", "Bob", 300), ("Peru", "Eve", 700)],
                                     "country string, poster_name string, follower_count int")
    assertDataFrameEqual(analytics.q3a_top_user_by_country(*posts), expected)


def test_top_per_group_takes_the_largest_value_then_the_first_name_and_ignores_repeated_rows(spark):
    rows = [("g1", "b", 5), ("g1", "a", 5), ("g1", "c", 7), ("g1", "c", 7), ("g2", "x", 1), ("g2", "x", 1),
            ("g3", "z", 9), ("g3", "y", 9), ("g3", "a", 8), ("g4", "n", 3), ("g4", "m", 2**40)]
    df = spark.createDataFrame(rows, "g string, name string, value long")
    expected = spark.createDataFrame([("g1", "c", 7), ("g2", "x", 1), ("g3", "y", 9), ("g4", "m", 2**40)],
                                     "g string, name string, value long")
    assertDataFrameEqual(analytics.top_per_group(df, "g", "name", "value"), expected)


def test_q3b_is_one_row_and_ties_go_to_the_country_name(spark):
    pin = pins(spark, [(0, "art", "A", 500), (1, "art", "B", 500), (2, "art", "C", 20)])
    geo = geos(spark, [(0, "Zambia", 2020), (1, "Belize", 2020), (2, "Chad", 2020)])
    expected = spark.createDataFrame([("Belize", 500)], "country string, follower_count int")
    assertDataFrameEqual(analytics.q3b_country_with_top_user(pin, geo), expected)


@pytest.fixture
def people(spark):
    # Ages at every group bound: 17 (no group), 18, 24, 25, 35, 36, 50, 51.
    pin = pins(spark, [
        (0, "art", "p", 10), (1, "art", "p", 20), (2, "beauty", "p", 30), (3, "beauty", "p", 40),
        (4, "travel", "p", 50), (5, "travel", "p", None), (6, "art", "p", 70), (7, "quotes", "p", 80),
        (8, "quotes", "p", 5), (9, "beauty", "p", 11_000),
    ])
    user = users(spark, [
        (0, "U17", 17, 2015), (1, "U18", 18, 2016), (2, "U24", 24, 2016), (3, "U25", 25, 2017),
        (4, "U35", 35, 2017), (5, "U36", 36, 2017), (6, "U50", 50, 2019), (7, "U51", 51, 2021),
        # U51 posted twice; rows differ by follower count, the user's count is the largest
        (8, "U51", 51, 2021), (9, "U18", 18, 2016),
    ])
    return pin, user


def test_q4_top_category_per_age_group(spark, people):
    expected = spark.createDataFrame([("18-24", "beauty", 2), ("25-35", "beauty", 1), ("36-50", "art", 1),
                                      ("50+", "quotes", 2)], "age_group string, category string, category_count long")
    assertDataFrameEqual(analytics.q4_top_category_by_age_group(*people), expected)


def test_q5_exact_medians_per_age_group_interpolated_on_even_counts(spark, people):
    # Users: U18 -> max(20, 11000) = 11000, U24 -> 30 | U25 -> 40, U35 -> 50 | U36 -> no count, U50 -> 70 | U51 -> 80
    expected = spark.createDataFrame([("18-24", (11_000 + 30) / 2), ("25-35", 45.0), ("36-50", 70.0), ("50+", 80.0)],
                                     "age_group string, median_follower_count double")
    assertDataFrameEqual(analytics.q5_median_followers_by_age_group(*people), expected)


def test_q6_counts_distinct_users_per_join_year(spark, people):
    expected = spark.createDataFrame([(2015, 1), (2016, 2), (2017, 3), (2019, 1)],
                                     "post_year int, number_users_joined long")
    assertDataFrameEqual(analytics.q6_users_joined_by_year(*people), expected)


def test_q7_median_by_join_year_leaves_out_users_without_a_count(spark, people):
    # 2015: U17 10 | 2016: U18 11000, U24 30 | 2017: U25 40, U35 50 (U36 none) | 2019: U50 70 | 2021 out of range
    expected = spark.createDataFrame([(2015, 10.0), (2016, 5_515.0), (2017, 45.0), (2019, 70.0)],
                                     "post_year int, median_follower_count double")
    assertDataFrameEqual(analytics.q7_median_followers_by_join_year(*people), expected)


def test_q8_median_by_age_group_and_join_year(spark, people):
    expected = spark.createDataFrame([("18-24", 2016, 5_515.0), ("25-35", 2017, 45.0), ("36-50", 2019, 70.0)],
                                     "age_group string, post_year int, median_follower_count double")
    assertDataFrameEqual(analytics.q8_median_followers_by_age_group_and_join_year(*people), expected)


def test_all_results_have_the_documented_columns(spark, posts, people):
    results = analytics.all_results(posts[0], posts[1], people[1])
    assert {name: tuple(df.columns) for name, df in results.items()} == {
        "q1_top_category_by_country": ("country", "category", "category_count"),
        "q2_category_posts_by_year": ("post_year", "category", "category_count"),
        "q3a_top_user_by_country": ("country", "poster_name", "follower_count"),
        "q3b_country_with_top_user": ("country", "follower_count"),
        "q4_top_category_by_age_group": ("age_group", "category", "category_count"),
        "q5_median_followers_by_age_group": ("age_group", "median_follower_count"),
        "q6_users_joined_by_year": ("post_year", "number_users_joined"),
        "q7_median_followers_by_join_year": ("post_year", "median_follower_count"),
        "q8_median_followers_by_age_group_and_join_year": ("age_group", "post_year", "median_follower_count"),
    }
