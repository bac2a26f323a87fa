"""Metrics scraped after a small workload; request ids in responses and in JSON logs."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator
from decimal import Decimal

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from app import logs
from app.context import AppContext
from app.http.observability import RequestIds
from app.logs import JsonFormatter
from app.settings import Settings
from tests.support.api import Api, MakeService, MakeUser
from tests.support.env import AUTH
from tests.support.upstream import (
    call_job,
    followers_provider,
    run_jobs,
    upstream_states,
)

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(client: httpx.AsyncClient, path: str = "/metrics") -> Samples:
    response = await client.get(path, headers=AUTH)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
async def provider(ctx: AppContext, settings: Settings) -> AsyncIterator[int]:
    async with followers_provider(
        ctx,
        settings,
        seconds_to_start=3600,
        seconds_to_complete=3600,
        keys={"sandbox-key": Decimal("200")},
    ) as provider_id:
        yield provider_id


async def test_metrics_after_a_small_workload(
    client: httpx.AsyncClient,
    api: Api,
    ctx: AppContext,
    settings: Settings,
    make_user: MakeUser,
    make_service: MakeService,
    provider: int,
) -> None:
    assert (await client.get("/metrics")).status_code == 401
    before = await scrape(client)
    service = await make_service(
        min_quantity=10,
        provider_id=provider,
        provider_service_id="1",
        provider_rate=Decimal("0.40"),
    )
    user = await make_user(balance="10")
    for n in range(3):
        await api(user.key, "add", service=service, link=f"https://x.com/{n}", quantity=100)
    await api(user.key, "add", service=service + 1, link="https://x.com/z", quantity=100)
    await api(user.key, "status", orders="1,2,3")
    await client.post("/payments/robokassa/result", data={"OutSum": "1", "InvId": "1"})
    after_api = await scrape(client)
    # Relay kicks waiting: orders placed within one slot of time share one job.
    assert 1 <= value(after_api, "smm_queue_jobs") <= 3
    assert await run_jobs(settings, ctx) >= 1
    assert await upstream_states(ctx) == ["sent"] * 3
    await call_job(settings, ctx, "check_provider_balances")
    after = await scrape(client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("smm_http_requests_total", method="POST", route="/api/v2", status="200") == 5
    assert delta("smm_api_requests_total", action="add", outcome="ok") == 3
    assert delta("smm_api_requests_total", action="add", outcome="error") == 1
    assert delta("smm_api_request_seconds_count", action="status") == 1
    assert delta("smm_relay_outcomes_total", outcome="sent") == 3
    assert (
        delta("smm_payment_notifications_total", gateway="robokassa", outcome="not_configured") == 1
    )
    assert value(after, "smm_orders", status="In progress") == 3
    assert value(after, "smm_orders", status="Pending") == 0
    assert value(after, "smm_review_queue_orders") == 0
    assert value(after, "smm_queue_jobs") == 0
    assert (
        value(after, "smm_provider_balance", provider_id=str(provider)) == 199.88
    )  # 200 − 3 × 0.04
    # The operator API serves the same exposition.
    admin = await scrape(client, "/admin/v1/metrics")
    assert value(admin, "smm_orders", status="In progress") == 3


async def test_request_ids_reach_responses_and_logs(
    client: httpx.AsyncClient,
    api: Api,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.INFO)
    monkeypatch.setattr(logging, "_logRecordFactory", logs._record_with_request_id)
    given = await client.get("/healthz", headers={"X-Request-ID": "edge-7f3a"})
    assert given.headers["x-request-id"] == "edge-7f3a"
    made = await client.get("/healthz", headers={"X-Request-ID": "bad id\twith spaces"})
    assert made.headers["x-request-id"] != "bad id\twith spaces"
    assert len(made.headers["x-request-id"]) == 32
    response = await client.post(
        "/api/v2",
        data={"key": "secret-key-1234", "action": "balance"},
        headers={"X-Request-ID": "call-42"},
    )
    assert response.json() == {"error": "Invalid API key"}
    lines = [json.loads(JsonFormatter().format(r)) for r in caplog.records]
    request_lines = [line for line in lines if line["msg"] == "request"]
    assert {
        "request_id": "call-42",
        "method": "POST",
        "route": "/api/v2",
        "status": 200,
    }.items() <= next(line for line in request_lines if line.get("request_id") == "call-42").items()
    assert all("secret-key-1234" not in json.dumps(line) for line in lines)


async def test_records_logged_while_serving_carry_the_request_id(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.INFO)
    monkeypatch.setattr(logging, "_logRecordFactory", logs._record_with_request_id)
    await client.post(
        "/payments/freekassa/notify",
        data={"MERCHANT_ID": "1", "AMOUNT": "1", "MERCHANT_ORDER_ID": "1", "SIGN": "x"},
        headers={"X-Request-ID": "gw-1"},
    )
    rejected = [r for r in caplog.records if r.getMessage() == "payment notification rejected"]
    assert rejected and json.loads(JsonFormatter().format(rejected[0]))["request_id"] == "gw-1"


def test_made_request_ids_are_32_hex_digits_distinct_per_request_and_process() -> None:
    ids = RequestIds()
    made = [ids.next() for _ in range(1000)]
    assert len(set(made)) == 1000
    assert all(re.fullmatch("[0-9a-f]{32}", one) for one in made)
    assert RequestIds().next()[:20] != made[0][:20]  # another process draws its own prefix
