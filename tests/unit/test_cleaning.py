"""Every cleaning rule on small hand-built frames, compared whole with hand-computed expectations."""
from __future__ import annotations

from datetime import datetime

import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from pinpipe.spark import cleaning
from pinpipe.spark.spark_io import RAW_SCHEMAS

NBSP = "\u00a0"


def raw(spark, kind, rows):
    names = RAW_SCHEMAS[kind].names
    return spark.createDataFrame([tuple(r.get(n) for n in names) for r in rows], RAW_SCHEMAS[kind])


def pin_row(**overrides):
    row = {"idx": "0", "unique_id": "u-0", "title": "Nice art", "description": "Lovely, really" + "\u2026" + NBSP,
           "poster_name": "Ann & Co ", "follower_count": "13k", "tag_list": "Art,Ink", "is_image_or_video": "image",
           "image_src": "https://i.pinimg.com/originals/x.jpg", "downloaded": "1",
           "save_location": "Local save in /data/art", "category": "art"}
    return row | overrides


@pytest.mark.parametrize("text, expected", [
    ("13k", 13_000), ("2M", 2_000_000), ("1.2k", 1_200), ("850", 850), ("0", 0), ("15m", 15_000_000),
    ("12K", 12_000), ("User Info Error", None), ("abc", None), ("1.2.3k", None), ("", None), (None, None),
    ("99999999999k", None),
    # what the pattern lets surround a count: whitespace, and a line terminator at the very end ($ matches before it)
    (" 13k ", 13_000), ("\t850\r\n", 850), ("2.5M\u2028", 2_500_000), ("7\n\u0085", 7), ("\u2028850", None),
    ("1.5", None), ("13 k", None), ("k", None), ("1.k", None), (".5k", None), ("1.2345678k", 1_234), ("0.0004k", 0),
    ("13kk", None), ("+13", None), ("-13", None), ("1e3", None), ("\u0661\u0662", None),  # Arabic-Indic digits
])
def test_follower_count_parses_suffixes_case_insensitively(spark, text, expected):
    df = spark.createDataFrame([(text,)], "v string")
    assert df.select(cleaning.parse_follower_count(F.col("v"))).first()[0] == expected


def test_clean_pin_nulls_blanks_and_every_placeholder_and_keeps_other_spaces(spark):
    rows = [
        pin_row(),
        pin_row(idx="1", title="No Title Data Available", description="No description available Story format",
                poster_name="User Info Error", follower_count="User Info Error",
                tag_list="N,o, ,T,a,g,s, ,A,v,a,i,l,a,b,l,e", image_src="Image src error.", downloaded="0"),
        pin_row(idx="2", title="Untitled", description="No description available", follower_count="2M"),
        pin_row(idx="3", title=" \t\n", description="Untitled", poster_name="", follower_count="1.2k",
                tag_list="   ", save_location="/data/travel", category="travel"),
    ]
    got = cleaning.clean_pin(raw(spark, "pin", rows))
    url = "https://i.pinimg.com/originals/x.jpg"
    text = "Lovely, really\u2026" + NBSP
    expected = spark.createDataFrame([
        (0, "u-0", "Nice art", text, 13_000, "Ann & Co ", "Art,Ink", "image", url, "/data/art", "art"),
        (1, "u-0", None, None, None, None, None, "image", None, "/data/art", "art"),
        (2, "u-0", None, None, 2_000_000, "Ann & Co ", "Art,Ink", "image", url, "/data/art", "art"),
        (3, "u-0", None, None, 1_200, None, None, "image", url, "/data/travel", "travel"),
    ], "ind int, unique_id string, title string, description string, follower_count int, poster_name string, "
       "tag_list string, is_image_or_video string, image_src string, save_location string, category string")
    assertDataFrameEqual(got, expected, checkRowOrder=False)
    assert tuple(got.columns) == ("ind", "unique_id", "title", "description", "follower_count", "poster_name",
                                  "tag_list", "is_image_or_video", "image_src", "save_location", "category")


def test_idx_zero_survives_as_ind_zero(spark):
    assert cleaning.clean_pin(raw(spark, "pin", [pin_row(idx="0")])).first()["ind"] == 0


def test_clean_geo_builds_coordinates_and_parses_timestamps(spark):
    rows = [{"idx": "0", "timestamp": "2020-03-04 05:06:07", "latitude": "-81.5", "longitude": "10.25",
             "country": "Cote d'Ivoire"},
            {"idx": "5", "timestamp": "not a time", "latitude": "x", "longitude": "179.0", "country": "  "}]
    expected = spark.createDataFrame([
        (0, "Cote d'Ivoire", [-81.5, 10.25], datetime(2020, 3, 4, 5, 6, 7)),
        (5, None, [None, 179.0], None),
    ], "ind int, country string, coordinates array<double>, timestamp timestamp")
    assertDataFrameEqual(cleaning.clean_geo(raw(spark, "geo", rows)), expected, checkRowOrder=False)


def test_clean_user_joins_names_and_types_age_and_date(spark):
    rows = [{"idx": "0", "first_name": "Ann", "last_name": "Lee", "age": "24", "date_joined": "2016-01-02 03:04:05"},
            {"idx": "1", "first_name": "", "last_name": "Lee", "age": "old", "date_joined": ""},
            {"idx": "2", "first_name": "Bo", "last_name": None, "age": "51", "date_joined": "2017-10-01 00:00:00"}]
    expected = spark.createDataFrame([
        (0, "Ann Lee", 24, datetime(2016, 1, 2, 3, 4, 5)),
        (1, None, None, None),
        (2, None, 51, datetime(2017, 10, 1)),
    ], "ind int, user_name string, age int, date_joined timestamp")
    assertDataFrameEqual(cleaning.clean_user(raw(spark, "user", rows)), expected, checkRowOrder=False)


@pytest.mark.parametrize("text, blank", [
    ("", True), (" ", True), ("\t", True), ("\r\n", True), (" \n\t \x0b\x0c\r ", True),
    ("x", False), (" x", False), ("\n\nx", False), ("x ", False), ("\t x \t", False),
    (NBSP, False), (" " + NBSP, False), ("\u2003", False),  # only spaces, tabs and line breaks are blank
    ("\x00", False), ("\x1f", False), (" \x01", False),  # control characters sort before "!" and are not blank
    ("!", False), (" !", False), ("\x7f", False), ("é", False),  # "!" is the first character that is never blank
])
def test_blank_means_empty_or_only_spaces_tabs_and_line_breaks(spark, text, blank):
    row = spark.createDataFrame([(text,)], "v string").select(cleaning.blank_to_null(F.col("v")).alias("v"),
                                                              cleaning.is_blank(F.col("v")).alias("b")).first()
    assert row["v"] == (None if blank else text)
    assert row["b"] is blank


def test_blank_test_of_null_is_null(spark):
    row = spark.createDataFrame([(None,)], "v string").select(cleaning.is_blank(F.col("v")).alias("b"),
                                                              cleaning.blank_to_null(F.col("v")).alias("v")).first()
    assert row["b"] is None and row["v"] is None
