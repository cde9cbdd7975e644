"""The one CSV dialect of every file the pipeline writes and reads: RFC 4180, a header row, CRLF between rows,
fields quoted only when they hold a comma, quote or line break, quotes doubled, UTF-8."""
from __future__ import annotations

import csv

# csv.writer(handle, **WRITER), the handle opened with encoding="utf-8", newline=""
WRITER = {"lineterminator": "\r\n", "quoting": csv.QUOTE_MINIMAL, "doublequote": True}
# The same rules in Spark's reader and writer option names.
SPARK = {"header": "true", "quote": '"', "escape": '"', "encoding": "UTF-8"}
