"""One typed settings object, read from environment variables and an optional `.env` file."""
from __future__ import annotations

from functools import cached_property
from pathlib import Path

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[2]


class Settings(BaseSettings):
    """Every knob of the pipeline; the defaults work on a fresh machine."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True)

    # Source database: unset means the embedded PostgreSQL under PGDATA_DIR.
    database_url: str | None = Field(default=None, validation_alias="DATABASE_URL")
    pgdata_dir: Path = Field(default=PROJECT_ROOT / ".pgdata", validation_alias="PGDATA_DIR")
    # Leave the embedded server running when the last process using it exits (run_pipeline.sh sets it).
    keep_database_running: bool = Field(default=False, validation_alias="KEEP_DATABASE_RUNNING")

    kafka_bootstrap_servers: str = Field(default="localhost:9092", validation_alias="KAFKA_BOOTSTRAP_SERVERS")
    pin_topic: str = Field(default="pin_data.pin", validation_alias="PIN_TOPIC")
    geo_topic: str = Field(default="pin_data.geo", validation_alias="GEO_TOPIC")
    user_topic: str = Field(default="pin_data.user", validation_alias="USER_TOPIC")

    batch_dir: Path = Field(default=Path("batch_data"), validation_alias="BATCH_DIR")

    poster_host: str = Field(default="127.0.0.1", validation_alias="POSTER_HOST")
    poster_port: int = Field(default=8000, ge=1, le=65535, validation_alias="POSTER_PORT")
    # Records accepted by one POST /topics call, and the largest body the API reads.
    max_records_per_request: int = Field(default=1000, ge=1, validation_alias="MAX_RECORDS_PER_REQUEST")
    max_body_bytes: int = Field(default=10 * 1024 * 1024, ge=1024, validation_alias="MAX_BODY_BYTES")
    # Upper bound on how long a produce call waits for the broker before answering 503.
    delivery_timeout_s: float = Field(default=10.0, gt=0, validation_alias="DELIVERY_TIMEOUT_S")
    transactional_id: str = Field(default="pin-poster", validation_alias="TRANSACTIONAL_ID")

    group_id: str = Field(default="pin-batch-extractor", validation_alias="EXTRACTOR_GROUP_ID")
    extractor_instance_id: str | None = Field(default=None, validation_alias="EXTRACTOR_INSTANCE_ID")

    @property
    def topics(self) -> dict[str, str]:
        """Kind ('pin', 'geo', 'user') -> topic name."""
        return {"pin": self.pin_topic, "geo": self.geo_topic, "user": self.user_topic}

    @cached_property
    def kind_by_topic(self) -> dict[str, str]:
        return {topic: kind for kind, topic in self.topics.items()}

    @property
    def poster_url(self) -> str:
        return f"http://{self.poster_host}:{self.poster_port}"


class SettingsError(ValueError):
    """A setting (environment variable, `.env` line or option) that is not usable, named with its value."""


def get_settings(**overrides) -> Settings:
    """Settings from the environment, with keyword overrides (by field name) for tests and CLIs. A value that is
    not usable raises SettingsError, one line per setting."""
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        raise SettingsError("; ".join(
            f"{'.'.join(map(str, error['loc']))}={error.get('input')!r}: {error['msg']}" for error in exc.errors()
        )) from None


def cli_settings(**overrides) -> Settings:
    """get_settings for a command: a setting that is not usable ends it with one line, `error: ...` (exit 1),
    instead of pydantic's traceback."""
    try:
        return get_settings(**overrides)
    except SettingsError as exc:
        raise SystemExit(f"error: invalid setting {exc}") from None
