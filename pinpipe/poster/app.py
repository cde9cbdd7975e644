"""The produce API assembled: settings, lifespan (the Kafka clients), error handlers, middleware, routes."""
from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from pinpipe.common.config import Settings
from pinpipe.poster.deps import Services, Stats
from pinpipe.poster.middleware import BodySizeLimit
from pinpipe.poster.producer import BrokerUnavailable, RecordProducer, TransactionalBatcher
from pinpipe.poster.routes import operations, produce

log = logging.getLogger(__name__)

RETRY_AFTER_S = "2"


def create_app(settings: Settings, *, database_check: Callable[[], bool] | None = None,
               emulator_status: Callable[[], dict[str, Any]] | None = None,
               transactional_id: str | None = None) -> FastAPI:
    """Build the app. Kafka clients are created in the lifespan, never at import time."""
    services = Services(settings, Stats(), database_check, emulator_status)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        services.producer = RecordProducer(settings)
        services.transactions = TransactionalBatcher(
            settings, transactional_id or f"{settings.transactional_id}-{settings.poster_port}")
        log.info("produce API ready: topics %s", ", ".join(settings.topics.values()))
        try:
            yield
        finally:
            # Emulator and in-flight requests are done by now: flush what was accepted, then close.
            services.transactions.close()
            services.producer.close()
            log.info("producers closed; produced %s", dict(services.stats.produced))

    app = FastAPI(
        title="Pinterest pipeline produce API",
        description="Produces pin, geo and user records to Kafka. A 200 means the broker acknowledged "
                    "every record (acks=all); anything else means it may not have.",
        lifespan=lifespan,
        # No OpenTelemetry provider is configured here (GET /stats reports the counters), so FastAPI's
        # per-request check for one is switched off. Turn it on when you export traces or metrics.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.services = services
    app.add_middleware(BodySizeLimit, limit=settings.max_body_bytes, stats=services.stats)

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, exc: RequestValidationError):
        services.stats.errors["invalid"] += 1
        return JSONResponse({"detail": jsonable_encoder(exc.errors())}, status_code=422)

    @app.exception_handler(BrokerUnavailable)
    async def on_unavailable(request: Request, exc: BrokerUnavailable):
        return services.error(503, "broker_unavailable", f"not produced: {exc}; retry later",
                              **{"Retry-After": RETRY_AFTER_S})

    app.include_router(produce.router)
    app.include_router(operations.router)
    return app
