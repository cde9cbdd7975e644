"""Request and response bodies of the produce API; value models mirror the source tables."""
from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StrictInt, model_validator


class _Value(BaseModel):
    model_config = ConfigDict(extra="forbid")

    idx: StrictInt = Field(ge=0, description="Key of the row in all three source tables")


class PinValue(_Value):
    """A row of pinterest_data."""

    unique_id: UUID | None
    title: str | None
    description: str | None
    poster_name: str | None
    follower_count: str | None
    tag_list: str | None
    is_image_or_video: str | None
    image_src: str | None
    downloaded: int | None
    save_location: str | None
    category: str | None


class GeoValue(_Value):
    """A row of geolocation_data; timestamp as 'YYYY-MM-DD HH:MM:SS'."""

    timestamp: datetime | None
    latitude: float | None = Field(ge=-90, le=90)
    longitude: float | None = Field(ge=-180, le=180)
    country: str | None


class UserValue(_Value):
    """A row of user_data; date_joined as 'YYYY-MM-DD HH:MM:SS'."""

    first_name: str | None
    last_name: str | None
    age: int | None
    date_joined: datetime | None


VALUE_MODELS: dict[str, type[_Value]] = {"pin": PinValue, "geo": GeoValue, "user": UserValue}


class ProduceRecord(BaseModel):
    key: StrictInt | None = Field(default=None, description="The idx; when given it must equal value.idx")
    value: dict[str, Any] = Field(description="A row of the topic's table (pin, geo or user columns)")


class ProduceRequest(BaseModel):
    """REST Proxy v2 shaped produce request."""

    records: list[ProduceRecord] = Field(min_length=1)


class Offset(BaseModel):
    partition: int
    offset: int


class ProduceResponse(BaseModel):
    offsets: list[Offset]


class Event(BaseModel):
    """One pin with its geo and user rows; all three must share one idx."""

    model_config = ConfigDict(extra="forbid")

    pin: PinValue
    geo: GeoValue
    user: UserValue

    @model_validator(mode="after")
    def same_idx(self) -> Event:
        if not self.pin.idx == self.geo.idx == self.user.idx:
            raise ValueError(f"pin, geo and user must share one idx "
                             f"(got {self.pin.idx}, {self.geo.idx}, {self.user.idx})")
        return self


class EventResponse(BaseModel):
    idx: int
    offsets: dict[str, Offset]


class SendDataResponse(BaseModel):
    status: str
    topic: str
    partition: int
    offset: int
