"""DATABASE_URL as users have it: libpq URLs, SQLAlchemy's postgresql+<driver>:// form, key=value strings."""
from __future__ import annotations

import pytest

from pinpipe.source.source_db import SourceDatabaseError, libpq_url


def test_sqlalchemy_form_becomes_a_libpq_url():
    assert libpq_url("postgresql+psycopg2://u:pw@db.example:5432/pins") == "postgresql://u:pw@db.example:5432/pins"
    assert libpq_url("postgresql+psycopg://u@/pins?host=/tmp") == "postgresql://u@/pins?host=/tmp"


def test_libpq_urls_and_key_value_strings_pass_unchanged():
    assert libpq_url("postgres://u@h/db") == "postgresql://u@h/db"
    assert libpq_url("host=/tmp dbname=pins") == "host=/tmp dbname=pins"


@pytest.mark.parametrize("bad, words", [("mysql://u@h/db", "not mysql://"), ("pins", "without a scheme"),
                                        ("postgresql://h:port/db", "not a valid URL")])
def test_anything_else_is_refused_in_one_sentence(bad, words):
    with pytest.raises(SourceDatabaseError, match=words):
        libpq_url(bad)
