"""Status sync isolation: one order whose provider report cannot be applied never stalls
the others of its batch. The provider is a small real app over HTTP answering exact bytes."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal
from urllib.parse import parse_qs

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from prometheus_client import REGISTRY
from sqlalchemy import select

from app.context import AppContext
from app.flows import sync
from app.ledger.models import LedgerEntry
from app.orders.models import Order, UpstreamEvent
from app.providers.client import ProviderError, ProviderOrderStatus, build_http_client
from app.settings import Settings
from tests.support.api import Api, MakeService, MakeUser
from tests.support.env import AUTH
from tests.support.ledger import ledger_ok
from tests.support.upstream import register_provider, run_jobs, serve_app

STILL_RUNNING = '{"status": "In progress"}'


@dataclass
class FakeProvider:
    """Accepts every `add` (ids 1, 2, …) and answers `status` with the bodies it is given,
    written as raw JSON text so that any number reaches the wire as it is."""

    url: str = ""
    provider_id: int = 0
    added: int = 0
    answers: dict[str, str] = field(default_factory=dict)


def fake_provider_app(state: FakeProvider) -> FastAPI:
    app = FastAPI()

    @app.post("/api/v2")
    async def api(request: Request) -> Response:
        fields = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        if fields.get("action") == "add":
            state.added += 1
            return Response(json.dumps({"order": state.added}), media_type="application/json")
        ids = fields.get("orders", fields.get("order", "")).split(",")
        items = [f'"{i}": {state.answers.get(i, STILL_RUNNING)}' for i in ids]
        return Response("{" + ", ".join(items) + "}", media_type="application/json")

    return app


@pytest.fixture
async def provider(ctx: AppContext, settings: Settings) -> AsyncIterator[FakeProvider]:
    state = FakeProvider()
    async with serve_app(fake_provider_app(state)) as url:
        state.url = url
        state.provider_id = await register_provider(ctx, settings, url)
        yield state


async def anomalies_counted(provider_id: int, kind: str) -> float:
    value = REGISTRY.get_sample_value(
        "smm_provider_anomalies_total", {"provider_id": str(provider_id), "kind": kind}
    )
    return value or 0.0


async def test_one_order_with_an_absurd_report_does_not_stall_its_batch(
    api: Api,
    client: httpx.AsyncClient,
    ctx: AppContext,
    settings: Settings,
    make_user: MakeUser,
    make_service: MakeService,
    provider: FakeProvider,
) -> None:
    service_id = await make_service(
        rate=Decimal("1.00"),
        min_quantity=10,
        provider_id=provider.provider_id,
        provider_service_id="1",
    )
    user = await make_user(balance="10")
    ours: list[int] = []
    for n in range(1, 11):
        answer = await api(
            user.key, "add", service=service_id, link=f"https://x.y/{n}", quantity=100
        )
        ours.append(answer["order"])
    await run_jobs(settings, ctx)
    assert provider.added == 10  # upstream ids 1…10, in the order of ours
    provider.answers = {
        "1": '{"status": "In progress", "start_count": "100", "remains": "50"}',
        "2": '{"status": "Complete", "remains": "0"}',
        "3": '{"status": "Partial", "remains": "40", "charge": 0.06}',
        "4": '{"status": "Cancelled"}',
        "5": '{"status": "In progress", "remains": 100000000000000000000}',
        "6": '{"status": "processing", "remains": 100}',
        "7": '{"status": "Fail", "remains": "30"}',
        "8": '{"status": "Inprogress", "remains": -5}',
        "9": '{"status": "In Progress", "remains": "5000", "start_count": -1}',
        "10": '{"status": "Refunded"}',
    }
    before_range = await anomalies_counted(provider.provider_id, "out_of_range")
    before_status = await anomalies_counted(provider.provider_id, "unknown_status")
    http = build_http_client(allow_private=settings.provider_allow_private)
    try:
        first = await sync.sync_all(ctx.db, http, settings)
        # The provider keeps sending the same: nothing moves again, nothing is re-flagged.
        second = await sync.sync_all(ctx.db, http, settings)
    finally:
        await http.aclose()
    assert (first.checked, first.changed, first.errors, first.anomalies) == (10, 8, 0, 2)
    assert (second.checked, second.changed, second.errors, second.anomalies) == (6, 0, 0, 2)

    async with ctx.db.session() as session:
        rows = {o.id: o for o in await session.scalars(select(Order).where(Order.id.in_(ours)))}
        refunds = (
            await session.execute(
                select(LedgerEntry.order_id, LedgerEntry.amount)
                .where(LedgerEntry.kind == "refund")
                .order_by(LedgerEntry.order_id)
            )
        ).all()
        flagged_events = (
            await session.execute(
                select(UpstreamEvent.order_id, UpstreamEvent.outcome, UpstreamEvent.detail)
                .where(UpstreamEvent.outcome == "anomaly")
                .order_by(UpstreamEvent.order_id)
            )
        ).all()
    seen = [(rows[i].status, rows[i].start_count, rows[i].remains) for i in ours]
    assert seen == [
        ("In progress", 100, 50),
        ("Completed", None, 0),
        ("Partial", None, 40),
        ("Canceled", None, 100),
        ("In progress", None, None),  # flagged, left as it was
        ("Processing", None, 100),
        ("In progress", None, None),  # flagged: "Fail" is not clearly final
        ("In progress", None, 0),  # over-delivery
        ("In progress", None, 100),  # clamped to the quantity; negative start ignored
        ("Canceled", None, 100),
    ]
    assert [(i, rows[i].anomaly) for i in ours if rows[i].anomaly is not None] == [
        (ours[4], [{"kind": "out_of_range", "field": "remains", "value": str(10**20)}]),
        (ours[6], [{"kind": "unknown_status", "field": "status", "value": "Fail"}]),
    ]
    assert all((rows[i].anomaly_at is None) == (rows[i].anomaly is None) for i in ours)
    assert [tuple(r) for r in refunds] == [
        (ours[2], Decimal("0.04")),
        (ours[3], Decimal("0.1")),
        (ours[9], Decimal("0.1")),
    ]
    assert [(r.order_id, r.detail["anomalies"][0]["kind"]) for r in flagged_events] == [
        (ours[4], "out_of_range"),
        (ours[6], "unknown_status"),
    ]
    assert await anomalies_counted(provider.provider_id, "out_of_range") == before_range + 1
    assert await anomalies_counted(provider.provider_id, "unknown_status") == before_status + 1

    # The operator sees the flag on the order and can list flagged orders.
    detail = (await client.get(f"/admin/v1/orders/{ours[4]}", headers=AUTH)).json()
    assert detail["anomaly"] == [{"kind": "out_of_range", "field": "remains", "value": str(10**20)}]
    assert detail["anomaly_at"] is not None
    assert detail["upstream_history"][-1]["outcome"] == "anomaly"
    flagged = (await client.get("/admin/v1/orders?anomaly=true", headers=AUTH)).json()
    assert [o["id"] for o in flagged] == [ours[6], ours[4]]
    clean = (await client.get("/admin/v1/orders?anomaly=false", headers=AUTH)).json()
    assert sorted(o["id"] for o in clean) == sorted(set(ours) - {ours[4], ours[6]})
    # Looked at: the operator clears the flag (audited); the order itself does not move.
    cleared = await client.post(f"/admin/v1/orders/{ours[4]}/anomaly/clear", headers=AUTH)
    assert cleared.status_code == 200
    assert cleared.json()["anomaly"] is None and cleared.json()["anomaly_at"] is None
    assert cleared.json()["status"] == detail["status"]
    flagged = (await client.get("/admin/v1/orders?anomaly=true", headers=AUTH)).json()
    assert [o["id"] for o in flagged] == [ours[6]]
    log = (
        await client.get(f"/admin/v1/audit?entity=order&entity_id={ours[4]}", headers=AUTH)
    ).json()
    assert [(e["action"], e["before"]["anomaly"][0]["kind"]) for e in log] == [
        ("order.anomaly.clear", "out_of_range")
    ]
    missing = await client.post("/admin/v1/orders/999999999/anomaly/clear", headers=AUTH)
    assert missing.status_code == 404
    await ledger_ok(ctx)


async def place_sent_orders(
    api: Api,
    ctx: AppContext,
    settings: Settings,
    make_user: MakeUser,
    make_service: MakeService,
    provider: FakeProvider,
    count: int,
) -> list[int]:
    service_id = await make_service(
        rate=Decimal("1.00"),
        min_quantity=10,
        provider_id=provider.provider_id,
        provider_service_id="1",
    )
    user = await make_user(balance="10")
    ours = [
        (await api(user.key, "add", service=service_id, link=f"https://x.y/{n}", quantity=100))[
            "order"
        ]
        for n in range(count)
    ]
    await run_jobs(settings, ctx)
    return ours


async def test_a_statement_that_fails_skips_only_its_own_order(
    api: Api,
    ctx: AppContext,
    settings: Settings,
    make_user: MakeUser,
    make_service: MakeService,
    provider: FakeProvider,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ours = await place_sent_orders(api, ctx, settings, make_user, make_service, provider, 4)
    rows = {str(n + 1): sync.Tracked(i, "In progress", None, None, 100) for n, i in enumerate(ours)}
    # Reports built past the client's bounds: the database refuses the second one.
    answers: dict[str, ProviderOrderStatus | ProviderError] = {
        "1": ProviderOrderStatus("In progress", start_count=5, remains=70),
        "2": ProviderOrderStatus("In progress", remains=10**20),
        "3": ProviderOrderStatus("Completed", remains=0),
        "4": ProviderOrderStatus("Canceled"),
    }
    result = sync.SyncResult()
    with caplog.at_level("WARNING", logger="app.flows.sync"):
        await sync.apply_batch(ctx.db, rows, answers, result, provider.provider_id)
    assert (result.changed, result.errors) == (3, 1)
    async with ctx.db.session() as session:
        seen = [
            (o.status, o.start_count, o.remains)
            for o in await session.scalars(
                select(Order).where(Order.id.in_(ours)).order_by(Order.id)
            )
        ]
    assert seen == [
        ("In progress", 5, 70),
        ("In progress", None, None),
        ("Completed", None, 0),
        ("Canceled", None, 100),
    ]
    failed = [r for r in caplog.records if r.getMessage().startswith("status sync: progress")]
    # The bulk statement failed, then each order on its own: only the second failed.
    assert [r.__dict__["order_ids"] for r in failed] == [[ours[0], ours[1], ours[2]], [ours[1]]]
    assert all("out of int64 range" in r.__dict__["reason"] for r in failed)
    assert str(ours[1]) in failed[-1].getMessage()
    await ledger_ok(ctx)
