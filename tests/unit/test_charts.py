"""The report's charts: every series labelled, whole-number years, bars named, empty results skipped."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from pinpipe.spark import charts  # noqa: E402

CATEGORIES = ["art", "beauty", "christmas", "diy-and-crafts", "education", "event-planning", "finance",
              "home-decor", "mens-fashion", "quotes", "tattoos", "travel", "vehicles"]


def frames():
    q2 = pd.DataFrame([(year, c, n + year - 2018) for year in range(2018, 2023) for n, c in enumerate(CATEGORIES)],
                      columns=["post_year", "category", "category_count"])
    return {
        "q2_category_posts_by_year": q2,
        "q4_top_category_by_age_group": pd.DataFrame(
            [("18-24", "art", 9), ("25-35", "travel", 7), ("36-50", "quotes", 5), ("50+", "finance", 3)],
            columns=["age_group", "category", "category_count"]),
        "q6_users_joined_by_year": pd.DataFrame([(2015, 3), (2016, 5), (2017, 2)],
                                                columns=["post_year", "number_users_joined"]),
        "q5_median_followers_by_age_group": pd.DataFrame([("18-24", 1000.0), ("50+", 20.5)],
                                                         columns=["age_group", "median_follower_count"]),
    }


@pytest.fixture
def drawn():
    figure, notes = charts.draw(frames())
    yield figure, notes
    matplotlib.pyplot.close("all")


def axes_titled(figure, title):
    return next(ax for ax in figure.axes if ax.get_title() == title)


def test_every_category_line_is_labelled_in_the_legend_with_its_own_colour(drawn):
    figure, notes = drawn
    ax = axes_titled(figure, "Posts per category per year")
    assert [t.get_text() for t in ax.get_legend().get_texts()] == CATEGORIES
    assert len({line.get_color() for line in ax.get_lines()}) == len(CATEGORIES)
    assert notes == []


def test_years_are_ticked_as_whole_numbers(drawn):
    figure, _ = drawn
    figure.canvas.draw()
    posts = axes_titled(figure, "Posts per category per year")
    assert [t.get_text() for t in posts.get_xticklabels()] == ["2018", "2019", "2020", "2021", "2022"]
    joined = axes_titled(figure, "Users joined per year")
    assert [t.get_text() for t in joined.get_xticklabels()] == ["2015", "2016", "2017"]


def test_top_category_bars_name_their_category(drawn):
    figure, _ = drawn
    ax = axes_titled(figure, "Most popular category by age group")
    assert [t.get_text() for t in ax.texts] == ["art", "travel", "quotes", "finance"]


def test_a_result_without_rows_is_skipped_with_a_note():
    data = frames()
    data["q6_users_joined_by_year"] = data["q6_users_joined_by_year"].iloc[0:0]
    figure, notes = charts.draw(data)
    titles = [ax.get_title() for ax in figure.axes if ax.get_visible()]
    assert "Users joined per year" not in titles and len(titles) == 3
    assert notes == ["Users joined per year: no data in q6_users_joined_by_year, chart skipped"]
    matplotlib.pyplot.close("all")


def test_no_data_at_all_draws_nothing():
    figure, notes = charts.draw({name: frame.iloc[0:0] for name, frame in frames().items()})
    assert figure is None and len(notes) == 4
