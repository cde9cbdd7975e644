"""What the routes depend on: the services the lifespan built, and the checks every produce route shares."""
from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from pinpipe.common.config import Settings
from pinpipe.poster.models import VALUE_MODELS
from pinpipe.poster.producer import RecordProducer, TransactionalBatcher


@dataclass
class Stats:
    """Counters behind GET /stats."""

    produced: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    started: float = field(default_factory=time.time)


@dataclass
class Services:
    """Built once per app: settings and counters at assembly, the Kafka clients in the lifespan."""

    settings: Settings
    stats: Stats
    database_check: Callable[[], bool] | None = None
    emulator_status: Callable[[], dict[str, Any]] | None = None
    producer: RecordProducer | None = None
    transactions: TransactionalBatcher | None = None

    def error(self, status: int, kind: str, message: str, **headers: str) -> JSONResponse:
        """An error answer, counted in /stats."""
        self.stats.errors[kind] += 1
        return JSONResponse({"detail": message}, status_code=status, headers=headers or None)

    def pipeline_topic(self, topic: str) -> str:
        """Only the three pipeline topics are accepted (path or query parameter)."""
        if topic not in self.settings.kind_by_topic:
            self.stats.errors["unknown_topic"] += 1
            raise HTTPException(404, f"unknown topic {topic!r}; this service produces to "
                                     f"{', '.join(self.settings.topics.values())}")
        return topic


def services_of(request: Request) -> Services:
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(services_of)]


def pipeline_topic(topic: str, services: ServicesDep) -> str:
    return services.pipeline_topic(topic)


PipelineTopic = Annotated[str, Depends(pipeline_topic)]


def validate_value(kind: str, value: Any, loc: tuple, *, json_body: bool = False) -> dict[str, Any]:
    """One row of `kind` from a parsed value (or raw JSON bytes); errors name the field under `loc`."""
    model = VALUE_MODELS[kind]
    try:
        row = model.model_validate_json(value) if json_body else model.model_validate(value)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": (*loc, *e["loc"])} for e in exc.errors(include_url=False)]) from None
    return row.model_dump()
