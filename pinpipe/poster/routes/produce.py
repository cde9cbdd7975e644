"""The produce routes: a 200 only once the broker has every record (acks=all)."""
from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from pinpipe.common.records import encode_key, encode_value
from pinpipe.common.schema import KINDS
from pinpipe.poster.deps import PipelineTopic, Services, ServicesDep, validate_value
from pinpipe.poster.models import Event, EventResponse, ProduceRequest, ProduceResponse, SendDataResponse

router = APIRouter(tags=["produce"])

# Responses are JSONResponse, documented through `responses`: validating our own output again through a
# response_model would only cost time.


@router.post("/topics/{topic}", response_model=None,
             responses={200: {"model": ProduceResponse}, 404: {}, 413: {}, 422: {}, 503: {}})
async def produce_records(body: ProduceRequest, topic: PipelineTopic, services: ServicesDep):
    """Produce 1..MAX_RECORDS_PER_REQUEST records; answers with their offsets, in record order."""
    limit = services.settings.max_records_per_request
    if len(body.records) > limit:
        return services.error(413, "too_many_records", f"at most {limit} records per request")
    kind = services.settings.kind_by_topic[topic]
    items = []
    for i, record in enumerate(body.records):
        value = validate_value(kind, record.value, ("body", "records", i, "value"))
        if record.key is not None and record.key != value["idx"]:
            raise RequestValidationError([{"type": "key_mismatch", "loc": ("body", "records", i, "key"),
                                           "msg": f"key {record.key} differs from value.idx {value['idx']}",
                                           "input": record.key}])
        items.append((encode_key(value["idx"]), encode_value(kind, value)))
    delivered = await services.producer.produce(topic, items)
    services.stats.produced[topic] += len(delivered)
    return JSONResponse({"offsets": [{"partition": d.partition, "offset": d.offset} for d in delivered]})


@router.post("/events", response_model=None, responses={200: {"model": EventResponse}, 413: {}, 422: {}, 503: {}})
async def produce_event(event: Event, services: ServicesDep):
    """Produce one pin/geo/user triplet atomically (one Kafka transaction, shared with concurrent calls)."""
    topics = services.settings.topics
    key = encode_key(event.pin.idx)
    delivered = await services.transactions.produce(
        [(topics[kind], key, encode_value(kind, getattr(event, kind).model_dump())) for kind in KINDS])
    for d in delivered:
        services.stats.produced[d.topic] += 1
    return JSONResponse({"idx": event.pin.idx, "offsets": {
        kind: {"partition": d.partition, "offset": d.offset} for kind, d in zip(KINDS, delivered)}})


# The original project's call carries one record. It is parsed by hand (the query string, then the body straight
# into the topic's model), not through FastAPI's dependency solver: it is the hottest route, and the solver and a dict
# round trip are most of its cost. The OpenAPI description documents the same contract.
@router.post("/send_data", response_model=None,
             responses={200: {"model": SendDataResponse}, 404: {}, 413: {}, 422: {}, 503: {}},
             openapi_extra={
                 "parameters": [{"name": "topic", "in": "query", "required": True, "schema": {"type": "string"},
                                 "description": "one of the three pipeline topics (PIN_TOPIC, GEO_TOPIC, USER_TOPIC)"}],
                 "requestBody": {"required": True, "content": {"application/json": {"schema": {
                     "type": "object", "description": "A row of the topic's table (pin, geo or user columns)"}}}},
             })
async def send_data(request: Request):
    """The original project's single-record call, with the same guarantee: 200 only once the broker has it."""
    services: Services = request.app.state.services
    topic = request.query_params.get("topic")
    if topic is None:
        raise RequestValidationError([{"type": "missing", "loc": ("query", "topic"), "msg": "Field required",
                                       "input": None}])
    topic = services.pipeline_topic(topic)
    kind = services.settings.kind_by_topic[topic]
    row = validate_value(kind, await request.body(), ("body",), json_body=True)
    [delivered] = await services.producer.produce(topic, [(encode_key(row["idx"]), encode_value(kind, row))])
    services.stats.produced[topic] += 1
    return JSONResponse({"status": "Message sent", "topic": topic, "partition": delivered.partition,
                         "offset": delivered.offset})
