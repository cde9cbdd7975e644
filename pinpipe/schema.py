"""The three source tables: names, columns in source order and their SQL types.

Everything downstream (API validation, Kafka values, CSV columns, Spark schemas) follows this order.
"""
from __future__ import annotations

KINDS = ("pin", "geo", "user")

TABLES = {"pin": "pinterest_data", "geo": "geolocation_data", "user": "user_data"}

# (column, SQL type) in source order; idx is the key of every table.
COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "pin": (
        ("idx", "integer"),
        ("unique_id", "uuid"),
        ("title", "text"),
        ("description", "text"),
        ("poster_name", "text"),
        ("follower_count", "text"),
        ("tag_list", "text"),
        ("is_image_or_video", "text"),
        ("image_src", "text"),
        ("downloaded", "integer"),
        ("save_location", "text"),
        ("category", "text"),
    ),
    "geo": (
        ("idx", "integer"),
        ("timestamp", "timestamp without time zone"),
        ("latitude", "double precision"),
        ("longitude", "double precision"),
        ("country", "text"),
    ),
    "user": (
        ("idx", "integer"),
        ("first_name", "text"),
        ("last_name", "text"),
        ("age", "integer"),
        ("date_joined", "timestamp without time zone"),
    ),
}

FIELDS: dict[str, tuple[str, ...]] = {kind: tuple(name for name, _ in cols) for kind, cols in COLUMNS.items()}

# The source's timestamp text form, kept end to end (JSON values, CSV cells).
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"

CSV_FILES = {"pin": "pin_data.csv", "geo": "geo_data.csv", "user": "user_data.csv"}
