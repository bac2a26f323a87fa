"""Hostile input generated from the OpenAPI schema (public and admin API), against the
service running as a real server: no 5xx, and responses match the schema."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import response_schema_conformance

from app.embedded import free_port
from tests.support.env import ADMIN_TOKEN, AUTH, SECRET_KEY, TEST_REDIS

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def served_schema(database_url: str) -> Iterator[Any]:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": TEST_REDIS,
        "ADMIN_TOKEN": ADMIN_TOKEN,
        "SECRET_KEY": SECRET_KEY,
        "RATE_LIMIT_PER_IP": "0",
        "RATE_LIMIT_PER_KEY": "0",
        "LOG_LEVEL": "WARNING",
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "app.main:create_app",
            "--factory",
            "--port",
            str(port),
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                if httpx.get(f"{base}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        yield schemathesis.openapi.from_url(f"{base}/openapi.json")
    finally:
        server.terminate()
        server.wait(timeout=10)


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
