"""The operations routes: health for load balancers and people, counters for people."""
from __future__ import annotations

import asyncio
import time

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from pinpipe.poster.deps import ServicesDep

router = APIRouter(tags=["operations"])


@router.get("/health", responses={503: {}})
async def health(services: ServicesDep):
    """Liveness (it answers) and readiness: 200 when Kafka and PostgreSQL are reachable, else 503."""
    kafka_ok = await asyncio.to_thread(services.producer.ready)
    db_ok = await asyncio.to_thread(services.database_check) if services.database_check else None
    ready = kafka_ok and db_ok is not False
    body = {"status": "ok" if ready else "not ready", "live": True, "kafka": kafka_ok, "postgres": db_ok}
    return JSONResponse(body, status_code=200 if ready else 503)


@router.get("/stats")
async def get_stats(services: ServicesDep):
    """Records produced per topic, errors by kind, and the emulator's state and rate."""
    stats = services.stats
    return {
        "uptime_s": round(time.time() - stats.started, 1),
        "produced": {topic: stats.produced[topic] for topic in services.settings.topics.values()},
        "transactions": services.transactions.transactions,
        "errors": dict(stats.errors),
        "emulator": services.emulator_status() if services.emulator_status else {"state": "not running"},
    }
