"""Schema-driven fuzzing of the produce API (schemathesis + hypothesis): no input makes it answer 500."""
from __future__ import annotations

import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings

from pinpipe.common.config import get_settings
from pinpipe.common.topics import fresh_topics
from pinpipe.poster.app import create_app


def test_no_generated_request_gets_a_500(kafka_bootstrap):
    names = fresh_topics(kafka_bootstrap, "fuzz")
    suffix = names["pin"].split(".")[0]
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
