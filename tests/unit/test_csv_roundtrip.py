"""The extractor's CSVs read back by Spark with the notebook's reader options: text survives exactly."""
from __future__ import annotations

from pinpipe.extraction.alignment import Record
from pinpipe.extraction.batch_store import write_csv
from pinpipe.spark.spark_io import read_raw

NASTY = [
    'comma, "quotes" and\na newline\u2026\u00a0',
    "trailing space ",
    " leading space",
    '"starts with a quote',
    "ends with a quote\"",
    "crlf\r\ninside",
    "\u00a0only nbsp\u00a0",
    "emoji \U0001F600 and accents éà",
    "back\\slash \\\" sequence",
]


def triplet(idx: int, text: str) -> dict[str, Record]:
    pin = {"idx": idx, "unique_id": "u", "title": text, "description": text, "poster_name": text,
           "follower_count": "1k", "tag_list": text, "is_image_or_video": "image", "image_src": "x",
           "downloaded": 1, "save_location": "Local save in /data/art", "category": "art"}
    geo = {"idx": idx, "timestamp": "2020-01-01 00:00:00", "latitude": -89.123456789, "longitude": 1e-7,
           "country": text}
    user = {"idx": idx, "first_name": text, "last_name": "x", "age": 30, "date_joined": "2016-01-01 00:00:00"}
    return {kind: Record(kind, kind, 0, idx, idx, value) for kind, value in (("pin", pin), ("geo", geo), ("user", user))}


def test_free_text_round_trips_exactly_through_spark(spark, tmp_path):
    triplets = [triplet(i, text) for i, text in enumerate(NASTY)]
    for kind in ("pin", "geo", "user"):
        write_csv(tmp_path / f"{kind}_data.csv", kind, triplets)
    pin = {int(r["idx"]): r for r in read_raw(spark, str(tmp_path), "pin").collect()}
    assert len(pin) == len(NASTY)
    for i, text in enumerate(NASTY):
        assert pin[i]["description"] == text
        assert pin[i]["title"] == text
        assert pin[i]["category"] == "art"  # the columns after the free text are not shifted
    geo = {int(r["idx"]): r for r in read_raw(spark, str(tmp_path), "geo").collect()}
    assert float(geo[0]["latitude"]) == -89.123456789 and float(geo[0]["longitude"]) == 1e-7
    assert geo[3]["country"] == NASTY[3]


def test_null_is_an_empty_field_and_reads_back_as_null(spark, tmp_path):
    t = triplet(0, "x")
    t["pin"] = Record("pin", "pin", 0, 0, 0, {**t["pin"].value, "title": None})
    write_csv(tmp_path / "pin_data.csv", "pin", [t])
    assert read_raw(spark, str(tmp_path), "pin").first()["title"] is None


def test_a_file_cut_into_parts_reads_back_the_same_rows(spark, tmp_path, monkeypatch):
    """Large local files are read as part files (several tasks); the rows must not change."""
    from pinpipe.spark import csv_parts

    triplets = [triplet(i, NASTY[i % len(NASTY)]) for i in range(60)]
    write_csv(tmp_path / "pin_data.csv", "pin", triplets)
    whole = read_raw(spark, str(tmp_path), "pin")
    assert whole.rdd.getNumPartitions() == 1  # small: read as it is
    monkeypatch.setattr(csv_parts, "parts_for", lambda size, parallelism: 4)
    cut = read_raw(spark, str(tmp_path), "pin")
    assert len(cut.inputFiles()) == 4 and cut.rdd.getNumPartitions() > 1  # Spark packs tiny files together
    assert sorted(cut.collect(), key=lambda r: int(r["idx"])) == sorted(whole.collect(), key=lambda r: int(r["idx"]))
    assert cut.count() == 60
