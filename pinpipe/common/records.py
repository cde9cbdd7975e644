"""Kafka record encoding shared by the poster and the extractor: keys, JSON values, and their validation."""
from __future__ import annotations

import json
import math
import uuid
from datetime import datetime, timezone
from typing import Any

from pinpipe.common.schema import FIELDS, TIMESTAMP_FORMAT


def encode_key(idx: int) -> bytes:
    """Records are keyed by idx so one idx lands in the same partition number of all three topics."""
    return str(idx).encode()


def encode_value_field(value: Any) -> Any:
    """One column value as JSON: UUIDs as text, timestamps as 'YYYY-MM-DD HH:MM:SS', the rest as is."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(timezone.utc).replace(tzinfo=None)
        return value.strftime(TIMESTAMP_FORMAT)
    raise TypeError(f"no JSON encoding for {type(value).__name__}")


def encode_value(kind: str, row: dict[str, Any]) -> bytes:
    """The JSON value of one record, fields in source column order."""
    return json.dumps(
        {name: encode_value_field(row[name]) for name in FIELDS[kind]}, ensure_ascii=False, allow_nan=False
    ).encode()


def row_dict(kind: str, row: tuple) -> dict[str, Any]:
    return dict(zip(FIELDS[kind], row))


class PoisonRecord(ValueError):
    """A record the extractor cannot use; the message is the reason written to rejected.jsonl."""


def decode_value(kind: str, raw: bytes | None) -> dict[str, Any]:
    """Parse and check one record value; raise PoisonRecord with the reason when it is unusable."""
    if raw is None:
        raise PoisonRecord("empty value (tombstone)")
    try:
        text = raw.decode("utf-8")  # explicit: json.loads would guess UTF-16/32 from a byte-order mark
    except UnicodeDecodeError:
        raise PoisonRecord("value is not UTF-8") from None
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise PoisonRecord(f"value is not JSON ({exc.msg} at position {exc.pos})") from None
    if not isinstance(value, dict):
        raise PoisonRecord(f"value is a JSON {type(value).__name__}, not an object")
    if "idx" not in value:
        raise PoisonRecord("no idx field")
    idx = value["idx"]
    if isinstance(idx, bool) or not isinstance(idx, int):
        raise PoisonRecord(f"idx is not an integer: {json.dumps(idx)}")  # as sent (the streaming half says the same)
    missing = [name for name in FIELDS[kind] if name not in value]
    if missing:
        raise PoisonRecord(f"fields missing for {kind}: {', '.join(missing)}")
    for name in FIELDS[kind]:
        field = value[name]
        if isinstance(field, (dict, list)) or (isinstance(field, float) and not math.isfinite(field)):
            raise PoisonRecord(f"field {name} is not a scalar value")
    return value
