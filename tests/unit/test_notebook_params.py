"""The notebook's parameters: papermill values locally, widgets on Databricks, serverless detection overridable."""
from __future__ import annotations

import pytest

from pinpipe.spark import notebook_params
from pinpipe.spark.notebook_params import Parameters


class Widgets:
    """dbutils.widgets as Databricks has it: text widgets keep the value a user typed over the default."""

    def __init__(self, typed=None):
        self.typed, self.created = dict(typed or {}), {}

    def text(self, name, default, label):
        self.created[name] = (default, label)

    def get(self, name):
        return self.typed.get(name, self.created[name][0])


class DbUtils:
    def __init__(self, typed=None):
        self.widgets = Widgets(typed)


def test_local_defaults_read_batch_data():
    assert notebook_params.resolve() == Parameters("batch_data", None, None, "local[*]", False)


def test_papermill_values_are_used_as_given():
    params = notebook_params.resolve("in", "out/results", None, "spark://h:7077", None)
    assert params == Parameters("in", "out/results", None, "spark://h:7077", False)


def test_databricks_widgets_default_to_a_volume_and_read_what_the_user_typed():
    dbutils = DbUtils({"input_dir": "/Volumes/main/raw/pins ", "serverless": "auto"})
    params = notebook_params.resolve(dbutils=dbutils, on_databricks=True, on_serverless=True)
    assert dbutils.widgets.created["input_dir"][0] == "/Volumes/workspace/default/pinterest"
    assert set(dbutils.widgets.created) == {"input_dir", "output_dir", "cleaned_dir", "serverless", "small"}
    assert params == Parameters("/Volumes/main/raw/pins", None, None, "local[*]", True)


def test_serverless_can_be_forced_either_way():
    assert notebook_params.resolve(serverless=True).serverless is True
    assert notebook_params.resolve(serverless=False, on_serverless=True).serverless is False
    dbutils = DbUtils({"serverless": "false"})
    assert notebook_params.resolve(dbutils=dbutils, on_databricks=True, on_serverless=True).serverless is False


def test_a_serverless_value_that_is_not_a_flag_is_refused():
    with pytest.raises(ValueError, match="serverless must be true, false or auto"):
        notebook_params.resolve(serverless="maybe")


def stream_settings():
    from pinpipe.common.config import get_settings

    return get_settings(kafka_bootstrap_servers="k1:9092,k2:9092", pin_topic="p.pin", geo_topic="p.geo",
                        user_topic="p.user")


def test_stream_defaults_come_from_the_settings_and_stream_data():
    params = notebook_params.resolve_stream(settings=stream_settings())
    assert params.bootstrap_servers == "k1:9092,k2:9092"
    assert params.topics == {"pin": "p.pin", "geo": "p.geo", "user": "p.user"}
    assert (params.output_dir, params.checkpoint_dir) == ("stream_data/tables", "stream_data/checkpoints")
    assert (params.trigger, params.max_offsets_per_trigger) == ("availableNow", None)


def test_stream_widgets_on_databricks_default_to_a_volume_and_read_what_the_user_typed():
    dbutils = DbUtils({"trigger": "30 seconds", "max_offsets_per_trigger": "5000", "pin_topic": "mine.pin"})
    params = notebook_params.resolve_stream(settings=stream_settings(), dbutils=dbutils, on_databricks=True)
    assert dbutils.widgets.created["output_dir"][0] == "/Volumes/workspace/default/pinterest/stream/tables"
    assert params.checkpoint_dir == "/Volumes/workspace/default/pinterest/stream/checkpoints"
    assert (params.trigger, params.max_offsets_per_trigger, params.topics["pin"]) == ("30 seconds", 5000, "mine.pin")


@pytest.mark.parametrize("trigger, limit", [("often", None), ("availableNow", "many"), ("10 seconds", "-5")])
def test_stream_parameters_that_make_no_sense_are_refused(trigger, limit):
    with pytest.raises(ValueError):
        notebook_params.resolve_stream(trigger=trigger, max_offsets_per_trigger=limit, settings=stream_settings())


def test_the_small_batch_plan_is_chosen_by_size_unless_forced():
    assert notebook_params.resolve().small is None  # auto: the notebook asks session.is_small
    assert notebook_params.resolve(small=False).small is False
    assert notebook_params.resolve(small="true").small is True
    assert notebook_params.resolve(dbutils=DbUtils({"small": "no"}), on_databricks=True).small is False
    with pytest.raises(ValueError, match="small must be true, false or auto"):
        notebook_params.resolve(small="tiny")


def test_the_stream_is_small_unless_told_otherwise():
    assert notebook_params.resolve_stream(settings=stream_settings()).small is True
    assert notebook_params.resolve_stream(settings=stream_settings(), small=None).small is True
    assert notebook_params.resolve_stream(settings=stream_settings(), small=False).small is False
    assert notebook_params.resolve_stream(settings=stream_settings(), small="false").small is False
    with pytest.raises(ValueError, match="small must be true, false or auto"):
        notebook_params.resolve_stream(settings=stream_settings(), small="tiny")


def test_the_stream_stops_at_records_kafka_deleted_unless_allowed_to_read_on():
    assert notebook_params.resolve_stream(settings=stream_settings()).allow_data_loss is False
    assert notebook_params.resolve_stream(settings=stream_settings(), allow_data_loss=True).allow_data_loss is True
    assert notebook_params.resolve_stream(settings=stream_settings(), allow_data_loss="yes").allow_data_loss is True
    dbutils = DbUtils({"allow_data_loss": "true"})
    assert notebook_params.resolve_stream(settings=stream_settings(), dbutils=dbutils,
                                          on_databricks=True).allow_data_loss is True
    assert dbutils.widgets.created["allow_data_loss"][0] == "false"
    with pytest.raises(ValueError, match="allow_data_loss must be true, false or auto"):
        notebook_params.resolve_stream(settings=stream_settings(), allow_data_loss="maybe")
