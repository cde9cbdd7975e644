"""The report notebook, executed headless on a generated batch as a user would run it."""
from __future__ import annotations

import csv

import papermill

from pinpipe.config import PROJECT_ROOT
from tests.integration.test_spark_crosscheck import batch_dir  # noqa: F401  (the generated batch fixture)

EXPECTED_COLUMNS = {
    "q1_top_category_by_country": ["country", "category", "category_count"],
    "q2_category_posts_by_year": ["post_year", "category", "category_count"],
    "q3a_top_user_by_country": ["country", "poster_name", "follower_count"],
    "q3b_country_with_top_user": ["country", "follower_count"],
    "q4_top_category_by_age_group": ["age_group", "category", "category_count"],
    "q5_median_followers_by_age_group": ["age_group", "median_follower_count"],
    "q6_users_joined_by_year": ["post_year", "number_users_joined"],
    "q7_median_followers_by_join_year": ["post_year", "median_follower_count"],
    "q8_median_followers_by_age_group_and_join_year": ["age_group", "post_year", "median_follower_count"],
}


def test_notebook_runs_end_to_end_and_writes_every_result(batch_dir, tmp_path):  # noqa: F811
    output_dir = tmp_path / "out" / "results"
    papermill.execute_notebook(
        str(PROJECT_ROOT / "batch_processing_spark.ipynb"), str(tmp_path / "executed.ipynb"),
        parameters={"input_dir": str(batch_dir), "output_dir": str(output_dir), "spark_master": "local[2]"},
        kernel_name="python3", cwd=str(PROJECT_ROOT), progress_bar=False,
    )
    for name, columns in EXPECTED_COLUMNS.items():
        with open(output_dir / f"{name}.csv", encoding="utf-8", newline="") as handle:
            rows = list(csv.reader(handle))
        assert rows[0] == columns, name
        assert len(rows) > 1, name
    with open(output_dir / "q6_users_joined_by_year.csv", newline="") as handle:
        years = [row["post_year"] for row in csv.DictReader(handle)]
    assert years == ["2015", "2016", "2017"]  # integers, not 2015.0; generated joins span 2015-10..2017-10
    for kind in ("pin", "geo", "user"):
        assert any((tmp_path / "out" / "cleaned" / kind).glob("*.parquet"))
