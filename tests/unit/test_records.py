from __future__ import annotations

import json
import uuid
from datetime import datetime

import pytest

from pinpipe.common.records import PoisonRecord, decode_value, encode_key, encode_value


def test_key_is_the_idx_as_text():
    assert encode_key(0) == b"0" and encode_key(11153) == b"11153"


def test_uuid_and_timestamp_get_explicit_encodings():
    value = encode_value("geo", {"idx": 3, "timestamp": datetime(2020, 1, 2, 3, 4, 5), "latitude": -81.5,
                                 "longitude": 10.25, "country": "Cote d'Ivoire"})
    assert json.loads(value) == {"idx": 3, "timestamp": "2020-01-02 03:04:05", "latitude": -81.5,
                                 "longitude": 10.25, "country": "Cote d'Ivoire"}
    uid = uuid.UUID("12345678-1234-5678-1234-567812345678")
    assert str(uid) in encode_value("pin", {name: (uid if name == "unique_id" else 1) for name in (
        "idx", "unique_id", "title", "description", "poster_name", "follower_count", "tag_list",
        "is_image_or_video", "image_src", "downloaded", "save_location", "category")}).decode()


def test_unknown_types_are_refused_not_stringified():
    with pytest.raises(TypeError):
        encode_value("user", {"idx": 1, "first_name": object(), "last_name": "", "age": 1, "date_joined": None})


@pytest.mark.parametrize("raw, reason", [
    (b"not json{", "not JSON"),
    (b"\xff\xfe", "not UTF-8"),
    (b"[1, 2]", "not an object"),
    (b'{"first_name": "a"}', "no idx"),
    (b'{"idx": "7"}', "idx is not an integer"),
    (b'{"idx": true}', "idx is not an integer"),
    (b'{"idx": 1.5}', "idx is not an integer"),
    (b'{"idx": 7, "first_name": "a"}', "fields missing for user: last_name, age, date_joined"),
    (None, "tombstone"),
])
def test_poison_values_are_rejected_with_the_reason(raw, reason):
    with pytest.raises(PoisonRecord, match=reason):
        decode_value("user", raw)


def test_idx_zero_is_a_valid_idx():
    value = decode_value("user", b'{"idx": 0, "first_name": null, "last_name": "x", "age": 20, "date_joined": null}')
    assert value["idx"] == 0


