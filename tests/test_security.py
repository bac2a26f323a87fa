"""Abuse limits, hardening headers, secrets kept out of logs."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from app.context import AppContext
from app.http import security
from tests.support.api import Api, MakeService, MakeUser
from tests.support.env import ADMIN_TOKEN, AUTH


@pytest.fixture
def limits(ctx: AppContext) -> Iterator[Any]:
    original = ctx.settings

    def set_limits(per_ip: int = 0, per_key: int = 0) -> None:
        ctx.settings = original.model_copy(
            update={"rate_limit_per_ip": per_ip, "rate_limit_per_key": per_key}
        )

    yield set_limits
    ctx.settings = original


async def test_per_key_rate_limit_answers_in_protocol_shape(
    client: httpx.AsyncClient, make_user: MakeUser, limits: Any
) -> None:
    user, other = await make_user(), await make_user()
    limits(per_key=3)
    for _ in range(3):
        ok = await client.post("/api/v2", data={"key": user.key, "action": "balance"})
        assert ok.json() == {"balance": "0.00000", "currency": "USD"}
    limited = await client.post("/api/v2", data={"key": user.key, "action": "balance"})
    assert limited.status_code == 429
    assert limited.json() == {"error": "Too many requests, try again later"}
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    # Another key is not affected.
    assert (
        await client.post("/api/v2", data={"key": other.key, "action": "balance"})
    ).status_code == 200


async def test_per_ip_rate_limit_covers_guessed_keys(
    client: httpx.AsyncClient, limits: Any
) -> None:
    limits(per_ip=5)
    answers = [
        (await client.post("/api/v2", data={"key": f"guess{i}", "action": "balance"})).status_code
        for i in range(7)
    ]
    assert answers == [200] * 5 + [429] * 2


async def test_concurrent_calls_are_counted_exactly_in_shared_round_trips(
    client: httpx.AsyncClient, make_user: MakeUser, limits: Any, ctx: AppContext
) -> None:
    """Calls arriving together are counted in one Redis round trip per batch, each in its
    own place: exactly the limit passes, whatever the batches."""
    user = await make_user()
    limits(per_key=7)
    assert ctx.jobs.redis is not None
    counts = security.counts_of(ctx.jobs.redis)
    redis = counts.redis
    pipelines: list[int] = []

    class Counted:
        def pipeline(self, **options: Any) -> Any:
            pipelines.append(sum(len(calls) for calls in counts.pending.values()))
            return redis.pipeline(**options)

    counts.redis = Counted()
    try:
        answers = await asyncio.gather(
            *(
                client.post("/api/v2", data={"key": user.key, "action": "balance"})
                for _ in range(20)
            )
        )
    finally:
        counts.redis = redis
    assert sorted(a.status_code for a in answers) == [200] * 7 + [429] * 13
    assert len(pipelines) < 20  # round trips shared by the calls arriving together


async def test_security_headers_on_every_response(client: httpx.AsyncClient) -> None:
    for response in (
        await client.post("/api/v2", data={"action": "balance"}),
        await client.get("/admin/v1/users"),
        await client.get("/healthz"),
    ):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert "access-control-allow-origin" not in response.headers  # CORS is off
    docs = await client.get("/docs")
    # The docs page runs its own inline bootstrap, from the panel only.
    assert docs.headers["content-security-policy"].startswith("default-src 'self'; ")


async def test_api_keys_never_reach_the_logs(
    client: httpx.AsyncClient,
    api: Api,
    make_user: MakeUser,
    make_service: MakeService,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    user = await make_user(balance="10")
    sid = await make_service()
    created = await client.post(
        "/admin/v1/users",
        headers=AUTH,
        json={"email": "log@example.com"},
    )
    new_key = created.json()["api_key"]
    await api(user.key, "add", service=sid, link="https://instagram.com/l", quantity=100)
    await api(user.key, "status", orders="1,abc")
    await api(new_key, "balance")
    await api(user.key + "x", "balance")
    everything = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    for secret in (user.key, new_key, ADMIN_TOKEN):
        assert secret not in everything


async def test_readiness_reports_database_and_redis(client: httpx.AsyncClient) -> None:
    ready = await client.get("/readyz")
    assert ready.json() == {"ready": True, "database": "ok", "schema": "ok", "redis": "ok"}
    assert (await client.get("/healthz")).json() == {"status": "ok"}


async def test_metrics_are_scraped_after_a_workload(
    client: httpx.AsyncClient, api: Api, make_user: MakeUser, make_service: MakeService
) -> None:
    user = await make_user(balance="10")
    sid = await make_service()
    await api(user.key, "add", service=sid, link="https://instagram.com/m", quantity=100)
    await api(user.key, "add", service=sid, link="https://instagram.com/m", quantity=100)
    assert (await client.get("/admin/v1/metrics")).status_code == 401
    scraped = await client.get("/admin/v1/metrics", headers=AUTH)
    text = scraped.text
    assert 'smm_orders{status="Pending"} 1.0' in text
    assert 'smm_api_requests_total{action="add",outcome="ok"}' in text
    assert 'smm_api_requests_total{action="add",outcome="error"}' in text
    assert "smm_api_request_seconds_bucket" in text
