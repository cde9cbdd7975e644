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

# Values the source writes where it has none (the real dataset's placeholders): the generator writes them,
# the Spark cleaning turns them into null.
USER_INFO_ERROR = "User Info Error"
NO_TITLE = "No Title Data Available"
UNTITLED = "Untitled"
NO_DESCRIPTION_STORY = "No description available Story format"
NO_DESCRIPTION = "No description available"
NO_TAGS = "N,o, ,T,a,g,s, ,A,v,a,i,l,a,b,l,e"
IMAGE_SRC_ERROR = "Image src error."
PLACEHOLDERS: dict[str, tuple[str, ...]] = {
    "title": (NO_TITLE, UNTITLED),
    "description": (NO_DESCRIPTION_STORY, NO_DESCRIPTION, UNTITLED),
    "poster_name": (USER_INFO_ERROR,),
    "follower_count": (USER_INFO_ERROR,),
    "tag_list": (NO_TAGS,),
    "image_src": (IMAGE_SRC_ERROR,),
}
