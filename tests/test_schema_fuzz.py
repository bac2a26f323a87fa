"""Hostile input generated from the OpenAPI schema (public and admin API), against the
service running as a real server: no 5xx, and responses match the schema."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.support.env import AUTH
from tests.support.server import panel_server


@pytest.fixture(scope="session")
def served_schema(database_url: str) -> Iterator[Any]:
    with panel_server(database_url) as base:
        yield schemathesis.openapi.from_url(f"{base}/openapi.json")


def test_generated_requests_never_fail_the_server(served_schema: Any) -> None:
    operations = [result.ok() for result in served_schema.get_all_operations()]
    assert len(operations) >= 40
    calls: list[str] = []
    for operation in operations:

        @settings(
            max_examples=6,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def call(case: Any) -> None:
            response = case.call(headers=AUTH, timeout=10)
            calls.append(f"{case.method} {case.path}")
            # 502 is the honest answer when a registered provider cannot be reached.
            upstream = case.path.startswith("/admin/v1/providers/") and response.status_code == 502
            assert response.status_code < 500 or upstream, (
                case.method,
                case.path,
                response.text[:300],
            )
            if case.path.startswith("/api/v2"):
                assert response.headers["content-type"] == ["application/json"]
                assert isinstance(response.json(), dict | list)
            case.validate_response(response, checks=[response_schema_conformance])

        call()
    # Every operation was exercised, several times.
    assert {c.split(" ", 1)[1] for c in calls} >= {op.path for op in operations}
    assert len(calls) >= 3 * len(operations)
