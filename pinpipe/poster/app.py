"""The produce API: FastAPI app built from settings; success only once the broker has the data."""
from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from pinpipe.common.config import Settings
from pinpipe.common.records import encode_key, encode_value
from pinpipe.common.schema import KINDS
from pinpipe.poster.models import VALUE_MODELS, Event, EventResponse, ProduceRequest, ProduceResponse, SendDataResponse
from pinpipe.poster.producer import BrokerUnavailable, RecordProducer, TransactionalBatcher

log = logging.getLogger(__name__)

RETRY_AFTER_S = "2"


class Stats:
    """Counters behind GET /stats."""

    def __init__(self) -> None:
        self.produced: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.started = time.time()


def create_app(settings: Settings, *, database_check: Callable[[], bool] | None = None,
               emulator_status: Callable[[], dict[str, Any]] | None = None,
               transactional_id: str | None = None) -> FastAPI:
    """Build the app. Kafka clients are created in the lifespan, never at import time."""
    stats = Stats()
    kind_of_topic = settings.kind_by_topic

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.producer = RecordProducer(settings)
        app.state.transactions = TransactionalBatcher(
            settings, transactional_id or f"{settings.transactional_id}-{settings.poster_port}")
        log.info("produce API ready: topics %s", ", ".join(settings.topics.values()))
        try:
            yield
        finally:
            # Emulator and in-flight requests are done by now: flush what was accepted, then close.
            app.state.transactions.close()
            app.state.producer.close()
            log.info("producers closed; produced %s", dict(stats.produced))

    app = FastAPI(
        title="Pinterest pipeline produce API",
        description="Produces pin, geo and user records to Kafka. A 200 means the broker acknowledged "
                    "every record (acks=all); anything else means it may not have.",
        lifespan=lifespan,
        # No OpenTelemetry provider is configured here (GET /stats reports the counters); the per-request
        # check for one costs ~5 % of the single-record rate. Turn it on when you export traces or metrics.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.add_middleware(BodySizeLimit, limit=settings.max_body_bytes, stats=stats)

    def error(status: int, kind: str, message: str, **headers: str) -> JSONResponse:
        stats.errors[kind] += 1
        return JSONResponse({"detail": message}, status_code=status, headers=headers or None)

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, exc: RequestValidationError):
        stats.errors["invalid"] += 1
        return JSONResponse({"detail": jsonable_encoder(exc.errors())}, status_code=422)

    @app.exception_handler(BrokerUnavailable)
    async def on_unavailable(request: Request, exc: BrokerUnavailable):
        return error(503, "broker_unavailable", f"not produced: {exc}; retry later", **{"Retry-After": RETRY_AFTER_S})

    def pipeline_topic(topic: str) -> str:
        """Only the three pipeline topics are accepted (path or query parameter)."""
        if topic not in kind_of_topic:
            stats.errors["unknown_topic"] += 1
            raise HTTPException(404, f"unknown topic {topic!r}; this service produces to "
                                     f"{', '.join(settings.topics.values())}")
        return topic

    def validate_value(kind: str, value: Any, loc: tuple, *, json_body: bool = False) -> dict[str, Any]:
        """One row of `kind` from a parsed value (or raw JSON bytes); errors name the field under `loc`."""
        model = VALUE_MODELS[kind]
        try:
            row = model.model_validate_json(value) if json_body else model.model_validate(value)
        except ValidationError as exc:
            raise RequestValidationError(
                [{**e, "loc": (*loc, *e["loc"])} for e in exc.errors(include_url=False)]) from None
        return row.model_dump()

    # Responses are built as JSONResponse (documented through `responses`): re-validating our own
    # output through response_model cost ~10 % of the single-record request rate.
    @app.post("/topics/{topic}", response_model=None, tags=["produce"],
              responses={200: {"model": ProduceResponse}, 404: {}, 413: {}, 422: {}, 503: {}})
    async def produce_records(body: ProduceRequest, topic: str = Depends(lambda topic: pipeline_topic(topic))):
        """Produce 1..MAX_RECORDS_PER_REQUEST records; answers with their offsets, in record order."""
        if len(body.records) > settings.max_records_per_request:
            return error(413, "too_many_records", f"at most {settings.max_records_per_request} records per request")
        kind = kind_of_topic[topic]
        items = []
        for i, record in enumerate(body.records):
            value = validate_value(kind, record.value, ("body", "records", i, "value"))
            if record.key is not None and record.key != value["idx"]:
                raise RequestValidationError([{"type": "key_mismatch", "loc": ("body", "records", i, "key"),
                                               "msg": f"key {record.key} differs from value.idx {value['idx']}",
                                               "input": record.key}])
            items.append((encode_key(value["idx"]), encode_value(kind, value)))
        delivered = await app.state.producer.produce(topic, items)
        stats.produced[topic] += len(delivered)
        return JSONResponse({"offsets": [{"partition": d.partition, "offset": d.offset} for d in delivered]})

    @app.post("/events", response_model=None, tags=["produce"],
              responses={200: {"model": EventResponse}, 413: {}, 422: {}, 503: {}})
    async def produce_event(event: Event):
        """Produce one pin/geo/user triplet atomically (one Kafka transaction, shared with concurrent calls)."""
        values = {kind: getattr(event, kind).model_dump() for kind in KINDS}
        key = encode_key(event.pin.idx)
        delivered = await app.state.transactions.produce(
            [(settings.topics[kind], key, encode_value(kind, values[kind])) for kind in KINDS])
        for d in delivered:
            stats.produced[d.topic] += 1
        return JSONResponse({"idx": event.pin.idx, "offsets": {
            kind: {"partition": d.partition, "offset": d.offset} for kind, d in zip(KINDS, delivered)}})

    # The seed's call carries one record; it is parsed by hand (query string, then the body straight into the
    # topic's model) instead of through FastAPI's dependency solver and a dict round trip, which cost about a
    # fifth of its request rate. The OpenAPI description below documents the same contract.
    @app.post("/send_data", response_model=None, tags=["produce"],
              responses={200: {"model": SendDataResponse}, 404: {}, 413: {}, 422: {}, 503: {}},
              openapi_extra={
                  "parameters": [{"name": "topic", "in": "query", "required": True, "schema": {
                      "type": "string", "enum": list(settings.topics.values())},
                      "description": "pin_data.pin, .geo or .user"}],
                  "requestBody": {"required": True, "content": {"application/json": {"schema": {
                      "type": "object", "description": "A row of the topic's table (pin, geo or user columns)"}}}},
              })
    async def send_data(request: Request):
        """The seed's single-record call, with the same guarantee: 200 only once the broker has it."""
        topic = request.query_params.get("topic")
        if topic is None:
            raise RequestValidationError([{"type": "missing", "loc": ("query", "topic"), "msg": "Field required",
                                           "input": None}])
        topic = pipeline_topic(topic)
        kind = kind_of_topic[topic]
        row = validate_value(kind, await request.body(), ("body",), json_body=True)
        [delivered] = await app.state.producer.produce(topic, [(encode_key(row["idx"]), encode_value(kind, row))])
        stats.produced[topic] += 1
        return JSONResponse({"status": "Message sent", "topic": topic, "partition": delivered.partition,
                             "offset": delivered.offset})

    @app.get("/health", tags=["operations"], responses={503: {}})
    async def health():
        """Liveness (it answers) and readiness: 200 when Kafka and PostgreSQL are reachable, else 503."""
        kafka_ok = await asyncio.to_thread(app.state.producer.ready)
        db_ok = await asyncio.to_thread(database_check) if database_check else None
        ready = kafka_ok and db_ok is not False
        body = {"status": "ok" if ready else "not ready", "live": True, "kafka": kafka_ok, "postgres": db_ok}
        return JSONResponse(body, status_code=200 if ready else 503)

    @app.get("/stats", tags=["operations"])
    async def get_stats():
        """Records produced per topic, errors by kind, and the emulator's state and rate."""
        return {
            "uptime_s": round(time.time() - stats.started, 1),
            "produced": {topic: stats.produced[topic] for topic in settings.topics.values()},
            "transactions": app.state.transactions.transactions,
            "errors": dict(stats.errors),
            "emulator": emulator_status() if emulator_status else {"state": "not running"},
        }

    return app


class BodySizeLimit:
    """ASGI middleware: answer 413 as soon as a request body is larger than the limit."""

    def __init__(self, app, limit: int, stats: Stats):
        self.app, self.limit, self.stats = app, limit, stats

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            return await self._reject(scope, receive, send)
        if declared is None:
            # A chunked body has no length to check up front: read it here, up to the limit, and hand it on.
            # (Raised from inside the app's own body parsing, the limit would come out as a 400.)
            chunks, size = [], 0
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    return  # the client went away
                chunks.append(message.get("body", b""))
                size += len(chunks[-1])
                if size > self.limit:
                    return await self._reject(scope, receive, send)
                if not message.get("more_body", False):
                    break
            replayed = False

            async def replay():
                nonlocal replayed
                if replayed:
                    return await receive()
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}

            return await self.app(scope, replay, send)
        received = 0

        async def limited_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise _TooLarge()
            return message

        try:
            await self.app(scope, limited_receive, send)
        except _TooLarge:
            await self._reject(scope, receive, send)

    async def _reject(self, scope, receive, send):
        self.stats.errors["too_large"] += 1
        response = JSONResponse({"detail": f"request body larger than {self.limit} bytes"}, status_code=413)
        await response(scope, receive, send)


class _TooLarge(Exception):
    pass
