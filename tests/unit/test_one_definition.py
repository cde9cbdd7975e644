"""Facts that must stay written twice are tied together here: the API's value models and the source schema."""
from __future__ import annotations

import pytest

from pinpipe.common.schema import COLUMNS, FIELDS, KINDS
from pinpipe.poster.models import VALUE_MODELS

SQL_TO_PYTHON = {"integer": "int", "uuid": "UUID", "text": "str", "double precision": "float",
                 "timestamp without time zone": "datetime"}


@pytest.mark.parametrize("kind", KINDS)
def test_the_api_value_models_have_the_source_columns_in_order(kind):
    assert tuple(VALUE_MODELS[kind].model_fields) == FIELDS[kind]


@pytest.mark.parametrize("kind", KINDS)
def test_the_api_value_models_type_each_column_as_its_sql_type(kind):
    for name, sql_type in COLUMNS[kind]:
        annotation = str(VALUE_MODELS[kind].model_fields[name].annotation)
        assert SQL_TO_PYTHON[sql_type] in annotation, (kind, name, sql_type, annotation)
