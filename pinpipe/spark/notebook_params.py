"""The batch notebook's parameters: papermill overrides locally, widgets on Databricks, one set of defaults."""
from __future__ import annotations

from dataclasses import dataclass

LOCAL_INPUT = "batch_data"
# Databricks Free Edition gives every workspace the catalog `workspace` with the schema `default`; the user
# creates the volume `pinterest` there and uploads the three CSVs (README, "Run on Databricks").
DATABRICKS_INPUT = "/Volumes/workspace/default/pinterest"


@dataclass(frozen=True)
class Parameters:
    input_dir: str
    output_dir: str | None  # None: <input_dir>/results
    cleaned_dir: str | None  # None: `cleaned` beside output_dir
    spark_master: str
    serverless: bool
    small: bool | None = None  # None: by the batch's size (session.is_small)


def _flag(name: str, value) -> bool | None:
    """True, False, or None for auto (None, empty or "auto")."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "auto")):
        return None
    if isinstance(value, str):
        if value.strip().lower() not in ("true", "false", "1", "0", "yes", "no"):
            raise ValueError(f"{name} must be true, false or auto, not {value!r}")
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)


def resolve(input_dir=None, output_dir=None, cleaned_dir=None, spark_master="local[*]", serverless=None,
            dbutils=None, on_databricks: bool = False, on_serverless: bool = False, small=None) -> Parameters:
    """The parameters in effect. On Databricks each is a text widget (created with the value given here, or
    the Databricks default, and read back), so a user sets them at the top of the notebook or in a job."""
    values = {"input_dir": input_dir or (DATABRICKS_INPUT if on_databricks else LOCAL_INPUT),
              "output_dir": output_dir or "", "cleaned_dir": cleaned_dir or "",
              "serverless": "auto" if serverless is None else str(serverless).lower(),
              "small": "auto" if small is None else str(small).lower()}
    if on_databricks and dbutils is not None:
        labels = {"input_dir": "input directory (a volume: /Volumes/<catalog>/<schema>/<volume>)",
                  "output_dir": "output directory (empty: <input>/results)",
                  "cleaned_dir": "cleaned tables (empty: beside the output)",
                  "serverless": "serverless (auto, true, false)",
                  "small": "small batch: one partition per table (auto, true, false)"}
        for name, label in labels.items():
            dbutils.widgets.text(name, values[name], label)
        values = {name: dbutils.widgets.get(name).strip() for name in labels}
    serverless = _flag("serverless", values["serverless"])
    return Parameters(input_dir=values["input_dir"], output_dir=values["output_dir"] or None,
                      cleaned_dir=values["cleaned_dir"] or None, spark_master=spark_master,
                      serverless=on_serverless if serverless is None else serverless,
                      small=_flag("small", values["small"]))


LOCAL_STREAM = "stream_data"
DATABRICKS_STREAM = "/Volumes/workspace/default/pinterest/stream"


@dataclass(frozen=True)
class StreamParameters:
    bootstrap_servers: str
    topics: dict[str, str]  # kind -> topic
    output_dir: str
    checkpoint_dir: str
    trigger: str
    spark_master: str
    max_offsets_per_trigger: int | None
    small: bool = True  # a new local JVM compiles with C1 only (streaming.py)
    allow_data_loss: bool = False  # read on past records Kafka deleted unread (streaming.StreamConfig)


def check_trigger(trigger: str) -> str:
    """availableNow or a processing-time interval ("10 seconds"); anything else is refused here, by name,
    rather than by Spark once the queries start."""
    if trigger != "availableNow" and not any(unit in trigger for unit in ("second", "minute", "hour")):
        raise ValueError(f"trigger must be availableNow or an interval such as '10 seconds', not {trigger!r}")
    return trigger


def resolve_stream(bootstrap_servers=None, pin_topic=None, geo_topic=None, user_topic=None, output_dir=None,
                   checkpoint_dir=None, trigger="availableNow", spark_master="local[*]",
                   max_offsets_per_trigger=None, settings=None, dbutils=None,
                   on_databricks: bool = False, small=True, allow_data_loss=False) -> StreamParameters:
    """The streaming notebook's parameters: given values, else the project's settings (KAFKA_BOOTSTRAP_SERVERS,
    PIN_TOPIC, ...), else the defaults; on Databricks each is a text widget, as in the batch notebook (but not
    spark_master and small: Databricks' session is there already)."""
    from pinpipe.common.config import get_settings

    settings = settings or get_settings()
    base = DATABRICKS_STREAM if on_databricks else LOCAL_STREAM
    values = {"bootstrap_servers": bootstrap_servers or settings.kafka_bootstrap_servers,
              "pin_topic": pin_topic or settings.topics["pin"], "geo_topic": geo_topic or settings.topics["geo"],
              "user_topic": user_topic or settings.topics["user"],
              "output_dir": output_dir or f"{base}/tables", "checkpoint_dir": checkpoint_dir or f"{base}/checkpoints",
              "trigger": trigger or "availableNow",
              "max_offsets_per_trigger": "" if max_offsets_per_trigger is None else str(max_offsets_per_trigger),
              "allow_data_loss": str(bool(_flag("allow_data_loss", allow_data_loss))).lower()}
    if on_databricks and dbutils is not None:
        for name, value in values.items():
            dbutils.widgets.text(name, value, name.replace("_", " "))
        values = {name: dbutils.widgets.get(name).strip() for name in values}
    trigger = check_trigger(values["trigger"])
    limit = values["max_offsets_per_trigger"]
    if limit and not limit.isdigit():
        raise ValueError(f"max_offsets_per_trigger must be a positive integer, not {limit!r}")
    return StreamParameters(
        bootstrap_servers=values["bootstrap_servers"],
        topics={"pin": values["pin_topic"], "geo": values["geo_topic"], "user": values["user_topic"]},
        output_dir=values["output_dir"], checkpoint_dir=values["checkpoint_dir"], trigger=trigger,
        spark_master=spark_master, max_offsets_per_trigger=int(limit) if limit else None,
        small=_flag("small", small) is not False,
        allow_data_loss=bool(_flag("allow_data_loss", values["allow_data_loss"])))
