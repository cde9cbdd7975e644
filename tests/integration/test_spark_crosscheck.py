"""The nine Spark results equal an independent pandas implementation on a generated batch."""
from __future__ import annotations

import re
from decimal import Decimal

import pandas as pd
import pytest

from pinpipe.common.schema import KINDS
from pinpipe.spark import analytics, cleaning
from pinpipe.spark.spark_io import read_batch
from tests.helpers import write_generated_batch

ROWS = 3000
BLANK = re.compile(r"^[ \t\n\r\f\v]*$")  # Java's \s, which the Spark rule uses (no NBSP)
PLACEHOLDERS = {
    "title": {"No Title Data Available", "Untitled"},
    "description": {"No description available Story format", "No description available", "Untitled"},
    "poster_name": {"User Info Error"}, "follower_count": {"User Info Error"},
    "tag_list": {"N,o, ,T,a,g,s, ,A,v,a,i,l,a,b,l,e"}, "image_src": {"Image src error."},
}


@pytest.fixture(scope="module")
def batch_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("batch")
    write_generated_batch(path, ROWS, seed=21)
    return path


def read_pandas(path, kind) -> pd.DataFrame:
    df = pd.read_csv(path / f"{kind}_data.csv", dtype=str, keep_default_na=False, lineterminator=None)
    return df.map(lambda v: None if BLANK.match(v) else v).astype(object)


def followers(text):
    if text is None:
        return None
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)([kKmM])\s*|\s*(\d+)\s*", text)
    if not m:
        return None
    if m.group(3):
        return int(m.group(3))
    return int(Decimal(m.group(1)) * (1000 if m.group(2).lower() == "k" else 1_000_000))


def pandas_results(path) -> dict[str, pd.DataFrame]:
    pin, geo, user = (read_pandas(path, k) for k in KINDS)
    for column, values in PLACEHOLDERS.items():
        pin[column] = pin[column].map(lambda v, values=values: None if v in values else v)
    pin["follower_count"] = pin["follower_count"].map(followers).astype("Int64")
    pin["ind"] = pin["idx"].astype(int)
    geo["ind"] = geo["idx"].astype(int)
    geo["year"] = pd.to_datetime(geo["timestamp"], format="%Y-%m-%d %H:%M:%S").dt.year
    user["ind"] = user["idx"].astype(int)
    user["user_name"] = [f"{a} {b}" if a is not None and b is not None else None
                         for a, b in zip(user["first_name"], user["last_name"])]
    user["age"] = user["age"].astype(int)
    user["join_year"] = pd.to_datetime(user["date_joined"], format="%Y-%m-%d %H:%M:%S").dt.year

    def group(age):
        for label, low, high in (("18-24", 18, 24), ("25-35", 25, 35), ("36-50", 36, 50), ("50+", 51, 10**9)):
            if low <= age <= high:
                return label
        return None

    user["age_group"] = user["age"].map(group)
    pg = pin.merge(geo, on="ind")
    pu = pin.merge(user, on="ind")

    def top(df, key, name, value):
        df = df.sort_values([key, value, name], ascending=[True, False, True])
        return df.groupby(key, as_index=False).head(1).reset_index(drop=True)

    out = {}
    c = pg.dropna(subset=["country", "category"]).groupby(["country", "category"]).size().reset_index(name="category_count")
    out["q1_top_category_by_country"] = top(c, "country", "category", "category_count")
    c = pg[pg["year"].between(2018, 2022)].dropna(subset=["category"])
    out["q2_category_posts_by_year"] = (c.groupby(["year", "category"]).size().reset_index(name="category_count")
                                        .rename(columns={"year": "post_year"}))
    p = pg.dropna(subset=["country", "poster_name", "follower_count"])[["country", "poster_name", "follower_count"]].drop_duplicates()
    q3a = top(p, "country", "poster_name", "follower_count")
    out["q3a_top_user_by_country"] = q3a
    out["q3b_country_with_top_user"] = (q3a.sort_values(["follower_count", "country"], ascending=[False, True])
                                        .head(1)[["country", "follower_count"]])
    c = pu.dropna(subset=["age_group", "category"]).groupby(["age_group", "category"]).size().reset_index(name="category_count")
    out["q4_top_category_by_age_group"] = top(c, "age_group", "category", "category_count")
    best = pin.groupby("ind")["follower_count"].max()
    u = user.assign(f=user["ind"].map(best))
    users = (u.groupby(["user_name", "age", "date_joined"], dropna=False)
             .agg(f=("f", "max"), age_group=("age_group", "first"), join_year=("join_year", "first")).reset_index())
    counted = users.dropna(subset=["f"]).astype({"f": float})
    out["q5_median_followers_by_age_group"] = (counted.dropna(subset=["age_group"]).groupby("age_group")["f"].median()
                                               .reset_index(name="median_follower_count"))
    in_years = users[users["join_year"].between(2015, 2020)]
    out["q6_users_joined_by_year"] = (in_years.groupby("join_year").size().reset_index(name="number_users_joined")
                                      .rename(columns={"join_year": "post_year"}))
    cy = counted[counted["join_year"].between(2015, 2020)]
    out["q7_median_followers_by_join_year"] = (cy.groupby("join_year")["f"].median().reset_index(name="median_follower_count")
                                               .rename(columns={"join_year": "post_year"}))
    out["q8_median_followers_by_age_group_and_join_year"] = (
        cy.dropna(subset=["age_group"]).groupby(["age_group", "join_year"])["f"].median()
        .reset_index(name="median_follower_count").rename(columns={"join_year": "post_year"}))
    return out


def normalise(df: pd.DataFrame, columns) -> list[tuple]:
    rows = []
    for record in df[list(columns)].itertuples(index=False):
        rows.append(tuple(round(float(v), 6) if isinstance(v, float) else (int(v) if hasattr(v, "__int__") and not isinstance(v, str) else v)
                          for v in record))
    return sorted(rows, key=repr)


@pytest.mark.parametrize("small", [False, True], ids=["as-read-shared-cached", "small-one-partition"])
def test_spark_results_equal_an_independent_pandas_computation(spark, batch_dir, small):
    """Both ways the notebook runs the questions: frames as read with the shared joins cached, and a small batch's
    (one partition per table, nothing cached), where no question may shuffle or broadcast."""
    raw = read_batch(spark, str(batch_dir), small=small)
    results = analytics.all_results(cleaning.clean_pin(raw["pin"]), cleaning.clean_geo(raw["geo"]),
                                    cleaning.clean_user(raw["user"]), small=small)
    expected = pandas_results(batch_dir)
    assert set(results) == set(expected)
    for name, df in results.items():
        if small:
            plan = df._jdf.queryExecution().executedPlan().toString()
            assert "Exchange" not in plan and "Broadcast" not in plan, f"{name}:\n{plan}"
        got = normalise(df.toPandas(), df.columns)
        want = normalise(expected[name], df.columns)
        assert got, name
        assert got == want, name
