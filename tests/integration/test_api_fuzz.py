"""Schema-driven fuzzing of the produce API (schemathesis + hypothesis): no input makes it answer 500."""
from __future__ import annotations

import uuid

import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from kafka.admin import KafkaAdminClient, NewTopic

from pinpipe.api import create_app
from pinpipe.config import get_settings


def test_no_generated_request_gets_a_500(kafka_bootstrap):
    suffix = uuid.uuid4().hex[:8]
    names = {kind: f"fuzz_{suffix}.{kind}" for kind in ("pin", "geo", "user")}
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    admin.create_topics([NewTopic(name, 3, 1) for name in names.values()])
    admin.close()
    app = create_app(get_settings(kafka_bootstrap_servers=kafka_bootstrap, pin_topic=names["pin"],
                                  geo_topic=names["geo"], user_topic=names["user"], delivery_timeout_s=5),
                     transactional_id=f"fuzz-{suffix}")
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures = []
    with TestClient(app) as client:
        for result in schema.get_all_operations():
            operation = result.ok()

            @given(case=operation.as_strategy())
            @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
            def check(case):
                body = case.body if type(case.body).__name__ != "NotSet" else None
                response = client.request(case.method, case.formatted_path, params=case.query or None, json=body)
                if response.status_code >= 500:
                    failures.append((case.method, case.formatted_path, case.body, response.status_code, response.text))

            check()
    assert failures == []
