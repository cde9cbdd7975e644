"""The generator reproduces the measured properties of the real data (rates within +-2 points)."""
from __future__ import annotations

import re
from collections import Counter, defaultdict

import pytest

from pinpipe.common.schema import FIELDS
from pinpipe.source import datagen

N = datagen.DEFAULT_ROWS


@pytest.fixture(scope="module")
def rows():
    triplets = list(datagen.iter_rows(N, seed=42))
    pins = [dict(zip(FIELDS["pin"], t[0])) for t in triplets]
    geos = [dict(zip(FIELDS["geo"], t[1])) for t in triplets]
    users = [dict(zip(FIELDS["user"], t[2])) for t in triplets]
    return pins, geos, users


def share(values, predicate) -> float:
    values = list(values)
    return sum(1 for v in values if predicate(v)) / len(values)


def assert_rate(actual: float, target: float) -> None:
    assert abs(actual - target) <= 0.02, f"{actual:.4f} not within 2 points of {target}"


def test_same_seed_same_rows_other_seed_other_rows():
    first = list(datagen.iter_rows(300, seed=1))
    assert first == list(datagen.iter_rows(300, seed=1))
    assert first != list(datagen.iter_rows(300, seed=2))


def test_idx_runs_from_zero_to_n_minus_one_in_every_table(rows):
    for table in rows:
        assert [r["idx"] for r in table] == list(range(N))


def test_non_positive_row_count_is_refused():
    with pytest.raises(ValueError):
        next(datagen.iter_rows(0))


def test_thirteen_categories_in_contiguous_ordered_blocks_of_similar_size(rows):
    pins = rows[0]
    order = [c for i, c in enumerate(r["category"] for r in pins) if i == 0 or pins[i - 1]["category"] != c]
    assert order == sorted(order) and len(order) == 13
    sizes = Counter(r["category"] for r in pins).values()
    assert max(sizes) - min(sizes) <= 1
    assert all(r["save_location"] == f"Local save in /data/{r['category']}" for r in pins)


def test_follower_count_forms_at_their_rates(rows):
    counts = [r["follower_count"] for r in rows[0]]
    assert_rate(share(counts, lambda v: re.fullmatch(r"[1-9]\d{0,2}k", v)), 0.74)
    assert_rate(share(counts, lambda v: re.fullmatch(r"([1-9]|1[0-5])M", v)), 0.075)
    assert_rate(share(counts, lambda v: re.fullmatch(r"\d{1,3}", v) and int(v) <= 999), 0.18)
    assert_rate(share(counts, lambda v: v == "User Info Error"), 0.007)


def follower_value(text: str) -> int | None:
    """Independently of the cleaning code: 13k -> 13000, 2M -> 2000000, 850 -> 850, anything else None."""
    match = re.fullmatch(r"(\d+)([kM]?)", text)
    return int(match.group(1)) * {"": 1, "k": 1_000, "M": 1_000_000}[match.group(2)] if match else None


def quantile(values: list[int], q: float) -> int:
    ordered = sorted(values)
    return ordered[round(q * (len(ordered) - 1))]


# The public sample of 2,004 real rows: p25 4,000, median 30,000, p75 211,000, p90 942,000 per row, and a
# median of 14,000 per distinct poster. A band of about +-35 % around each (k values are whole thousands).
REAL_ROW_QUANTILES = {0.25: (2_500, 5_500), 0.5: (20_000, 40_000), 0.75: (150_000, 280_000), 0.9: (700_000, 1_300_000)}
REAL_POSTER_MEDIAN = (9_000, 19_000)


def test_follower_counts_have_the_real_sizes_per_row_and_per_poster(rows):
    pins = rows[0]
    values = [v for v in (follower_value(r["follower_count"]) for r in pins) if v is not None]
    for q, (low, high) in REAL_ROW_QUANTILES.items():
        assert low <= quantile(values, q) <= high, (q, quantile(values, q))
    per_poster = {r["poster_name"].strip(): follower_value(r["follower_count"]) for r in pins
                  if r["poster_name"] != "User Info Error"}
    assert REAL_POSTER_MEDIAN[0] <= quantile(list(per_poster.values()), 0.5) <= REAL_POSTER_MEDIAN[1]


def test_one_poster_name_is_one_person(rows):
    identities = defaultdict(set)
    for pin, geo, user in zip(*rows):
        if pin["poster_name"] != "User Info Error":
            identities[pin["poster_name"].strip()].add(
                (pin["follower_count"], user["first_name"], user["last_name"], user["age"], user["date_joined"],
                 geo["latitude"], geo["longitude"], geo["country"]))
    assert len(identities) > N // 3
    assert [name for name, people in identities.items() if len(people) > 1] == []


def test_user_info_error_rows_have_the_placeholder_title_and_name(rows):
    errors = [r for r in rows[0] if r["follower_count"] == "User Info Error"]
    assert errors
    assert all(r["title"] == "No Title Data Available" and r["poster_name"] == "User Info Error" for r in errors)


def test_story_format_rows_are_exactly_the_story_descriptions(rows):
    pins = rows[0]
    story = [r["is_image_or_video"] == "multi-video(story page format)" for r in pins]
    story_text = [r["description"] == "No description available Story format" for r in pins]
    assert story == story_text
    assert_rate(share(story, bool), 0.07)
    assert_rate(share(pins, lambda r: r["is_image_or_video"] == "image"), 0.90)
    assert_rate(share(pins, lambda r: r["is_image_or_video"] == "video"), 0.03)
    assert_rate(share(pins, lambda r: r["description"] == "No description available"), 0.015)


def test_free_text_hazards_are_present(rows):
    texts = [r["description"] for r in rows[0] if not r["description"].startswith("No description")]
    assert_rate(share(texts, lambda t: "," in t), 0.40)
    assert 0.005 < share(texts, lambda t: '"' in t) < 0.06
    assert 0 < share(texts, lambda t: "\n" in t) < 0.01
    assert_rate(share(texts, lambda t: t.endswith("\u2026\u00a0")), 1 / 3)
    titles = [r["title"] for r in rows[0]]
    assert "Untitled" in titles and "" in titles
    assert "" in texts and "Untitled" in texts


def test_tags_images_and_downloads(rows):
    pins = rows[0]
    assert_rate(share(pins, lambda r: r["tag_list"] == "N,o, ,T,a,g,s, ,A,v,a,i,l,a,b,l,e"), 0.014)
    assert all("," in r["tag_list"] for r in pins)
    assert_rate(share(pins, lambda r: r["image_src"] == "Image src error."), 0.024)
    for r in pins:
        if r["image_src"] == "Image src error.":
            assert r["downloaded"] == 0
        else:
            assert r["image_src"].startswith("https://i.pinimg.com/originals/") and r["downloaded"] == 1


def test_about_one_poster_per_two_rows_with_one_identity_and_location_each(rows):
    pins, geos, users = rows
    by_poster = defaultdict(set)
    for pin, geo, user in zip(pins, geos, users):
        if pin["poster_name"] == "User Info Error":
            continue
        by_poster[(pin["poster_name"], pin["follower_count"], user["first_name"], user["last_name"],
                   user["age"], user["date_joined"])].add((geo["latitude"], geo["longitude"], geo["country"]))
    assert 0.4 <= len(by_poster) / N <= 0.6
    assert all(len(locations) == 1 for locations in by_poster.values())
    names = [p["poster_name"] for p in pins]
    assert any(n.endswith(" ") for n in names) and any("&" in n for n in names) and any("|" in n for n in names)


def test_geo_ranges_skew_and_countries(rows):
    from datetime import datetime

    pins, geos, users = rows
    assert all(datetime(2017, 10, 1) <= g["timestamp"] <= datetime(2022, 10, 31, 23, 59, 59) for g in geos)
    assert all(g["timestamp"] >= u["date_joined"] for g, u in zip(geos, users))
    assert all(-90 <= g["latitude"] <= 90 and -180 <= g["longitude"] <= 180 for g in geos)
    assert_rate(share(geos, lambda g: g["latitude"] < -80), 0.30)
    countries = {g["country"] for g in geos}
    assert 200 <= len(countries) <= 250
    assert any("(" in c for c in countries) and any("'" in c for c in countries) and any("&" in c for c in countries)


def test_user_ages_and_join_dates(rows):
    from datetime import datetime

    users = rows[2]
    assert all(20 <= u["age"] <= 60 for u in users)
    assert_rate(share(users, lambda u: u["age"] <= 24), 0.44)
    assert all(datetime(2015, 10, 1) <= u["date_joined"] <= datetime(2017, 10, 1) for u in users)


def test_a_name_drawn_once_too_often_gets_the_next_free_number_not_a_growing_list(monkeypatch):
    """Large batches run out of names: after five draws the last one is numbered. The numbers count up from 6
    per name ("Ann Lee 7" after "Ann Lee 6"), so a name stays as short as the real ones, however many rows."""
    monkeypatch.setattr(datagen, "_poster_name", lambda rng, first, last: "Ann Lee ")
    taken: dict[str, int] = {}
    names = [datagen._unique_name(None, "Ann", "Lee", taken) for _ in range(5)]
    assert names == ["Ann Lee ", "Ann Lee 6", "Ann Lee 7", "Ann Lee 8", "Ann Lee 9"]
    assert set(taken) == {"Ann Lee", "Ann Lee 6", "Ann Lee 7", "Ann Lee 8", "Ann Lee 9"}


def test_poster_names_stay_short_in_a_large_batch():
    """The longest poster name of 120,000 generated rows is as short as a drawn name plus a number (drawn names
    are at most ~30 characters; before numbers counted per name, this batch had one of 66)."""
    longest = max(len(pin[4]) for pin, _, _ in datagen.iter_rows(120_000, seed=5))
    assert longest <= 40
