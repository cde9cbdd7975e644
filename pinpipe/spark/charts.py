"""The report's charts, drawn from the collected results (pandas frames): every series labelled, years as
whole numbers, the category named on each bar; a chart without data is left out with a note."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class Chart:
    result: str  # the result it draws
    title: str
    draw: Callable  # (axes, frame) -> None


def _posts_per_category(ax, frame: pd.DataFrame) -> None:
    table = frame.pivot(index="post_year", columns="category", values="category_count").fillna(0)
    table.index = table.index.astype(int)
    ax.set_prop_cycle(color=_colors(len(table.columns)))
    for category in table.columns:
        ax.plot(table.index, table[category], marker="o", label=category)
    ax.set_xticks(list(table.index))
    ax.set_xlabel("year")
    ax.set_ylabel("posts")
    ax.legend(title="category", fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))


def _colors(count: int) -> list:
    """As many distinct colours as series (matplotlib's default cycle repeats after ten)."""
    import matplotlib

    return [matplotlib.colormaps["tab20"](n % 20) for n in range(count)]


def _top_category_by_age(ax, frame: pd.DataFrame) -> None:
    bars = ax.bar(frame["age_group"].astype(str), frame["category_count"])
    ax.bar_label(bars, labels=list(frame["category"].astype(str)), padding=2)
    ax.set_xlabel("age group")
    ax.set_ylabel("posts in the top category")
    ax.margins(y=0.15)


def _users_joined(ax, frame: pd.DataFrame) -> None:
    ax.bar(frame["post_year"].astype(int).astype(str), frame["number_users_joined"], label="users joined")
    ax.set_xlabel("year joined")
    ax.set_ylabel("users")


def _median_followers_by_age(ax, frame: pd.DataFrame) -> None:
    ax.bar(frame["age_group"].astype(str), frame["median_follower_count"], label="median followers")
    ax.set_xlabel("age group")
    ax.set_ylabel("median follower count")


CHARTS = (
    Chart("q2_category_posts_by_year", "Posts per category per year", _posts_per_category),
    Chart("q4_top_category_by_age_group", "Most popular category by age group", _top_category_by_age),
    Chart("q6_users_joined_by_year", "Users joined per year", _users_joined),
    Chart("q5_median_followers_by_age_group", "Median followers by age group", _median_followers_by_age),
)


def draw(frames: dict[str, pd.DataFrame]):
    """(figure or None, notes): one chart per result that has rows; a note for each one left out."""
    import matplotlib.pyplot as plt

    shown = [chart for chart in CHARTS if chart.result in frames and len(frames[chart.result])]
    notes = [f"{chart.title}: no data in {chart.result}, chart skipped" for chart in CHARTS if chart not in shown]
    if not shown:
        return None, notes
    columns = 2 if len(shown) > 1 else 1
    rows = -(-len(shown) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(7 * columns, 4.8 * rows), squeeze=False)
    for ax, chart in zip(axes.flat, shown):
        chart.draw(ax, frames[chart.result])
        ax.set_title(chart.title)
    for ax in list(axes.flat)[len(shown):]:
        ax.set_visible(False)
    fig.tight_layout()
    return fig, notes


def draw_live(frame: pd.DataFrame, top: int = 8):
    """Posts per minute of the `top` categories (live_counts as pandas: minute, category, posts); None when
    there is nothing yet."""
    import matplotlib.pyplot as plt

    if frame.empty:
        return None
    table = frame.pivot_table(index="minute", columns="category", values="posts", aggfunc="sum").fillna(0)
    table = table[table.sum().sort_values(ascending=False).index[:top]]
    figure, ax = plt.subplots(figsize=(9, 4))
    ax.set_prop_cycle(color=_colors(len(table.columns)))
    for category in table.columns:
        ax.plot(table.index, table[category], marker="o", label=category)
    ax.set_title(f"Posts per minute of Kafka record time (top {len(table.columns)} categories)")
    ax.set_xlabel("minute (UTC)")
    ax.set_ylabel("posts")
    ax.legend(title="category", fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    figure.autofmt_xdate()
    figure.tight_layout()
    return figure
