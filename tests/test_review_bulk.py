"""After a crash, many orders of one provider wait in review: the operator sees the exact
request each attempt sent (to find it in the provider's panel) and resolves a whole
selection (provider + creation window) at once, each order audited and refunded once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text

from app.context import AppContext
from app.ledger.models import LedgerEntry
from app.sandbox import SandboxConfig, SandboxService
from app.settings import Settings
from tests.support.api import Api, MakeService, MakeUser, Reseller
from tests.support.env import AUTH
from tests.support.ledger import ledger_ok
from tests.support.upstream import (
    register_provider,
    run_jobs,
    sandbox,
    sandbox_stats,
    set_behaviour,
    upstream_states,
)

LINK = "https://instagram.com/review"


@pytest.fixture
async def upstream(ctx: AppContext, settings: Settings) -> AsyncIterator[dict[str, Any]]:
    config = SandboxConfig(
        services=[SandboxService(7, "Followers", rate=Decimal("0.40"), min=10, max=100_000)],
        seconds_to_start=0,
        seconds_to_complete=0,
    )
    async with sandbox(config) as (url, _):
        yield {"url": url, "provider_id": await register_provider(ctx, settings, url)}


@pytest.fixture
async def four_in_review(
    api: Api,
    ctx: AppContext,
    settings: Settings,
    make_user: MakeUser,
    make_service: MakeService,
    upstream: dict[str, Any],
) -> tuple[Reseller, list[int]]:
    """Four orders whose add answered HTTP 500 (outcome unknown); the first two two hours old."""
    user = await make_user(balance="10")
    sid = await make_service(
        min_quantity=10, provider_id=upstream["provider_id"], provider_service_id="7"
    )
    await set_behaviour(upstream["url"], 7, behaviour="http500")
    ids = [
        (await api(user.key, "add", service=sid, link=f"{LINK}/{i}", quantity=1000))["order"]
        for i in range(4)
    ]
    await run_jobs(settings, ctx)
    assert await upstream_states(ctx) == ["review"] * 4
    async with ctx.db.transaction() as session:
        await session.execute(
            text("UPDATE orders SET created_at = now() - interval '2 hours' WHERE id = ANY(:ids)"),
            {"ids": ids[:2]},
        )
    return user, ids


def window(start_hours_ago: float, end_hours_ago: float) -> dict[str, str]:
    now = datetime.now(UTC)
    return {
        "created_from": (now - timedelta(hours=start_hours_ago)).isoformat(),
        "created_to": (now - timedelta(hours=end_hours_ago)).isoformat(),
    }


async def test_review_shows_the_exact_request_each_attempt_sent(
    client: httpx.AsyncClient,
    upstream: dict[str, Any],
    four_in_review: tuple[Reseller, list[int]],
) -> None:
    _, ids = four_in_review
    queue = (await client.get("/admin/v1/review", headers=AUTH)).json()
    assert [o["id"] for o in queue] == ids
    for i, order in enumerate(queue):
        sent = order["sent_request"]
        assert sent["fields"] == {
            "action": "add",
            "service": "7",
            "link": f"{LINK}/{i}",
            "quantity": "1000",
        }
        assert sent["provider_id"] == upstream["provider_id"]
        assert "key" not in sent["fields"] and "sandbox-key" not in str(order)
    detail = (await client.get(f"/admin/v1/orders/{ids[2]}", headers=AUTH)).json()
    assert detail["sent_request"] == queue[2]["sent_request"]


async def test_bulk_cancel_and_resend_a_selection_by_provider_and_window(
    client: httpx.AsyncClient,
    api: Api,
    ctx: AppContext,
    settings: Settings,
    upstream: dict[str, Any],
    four_in_review: tuple[Reseller, list[int]],
) -> None:
    user, ids = four_in_review
    provider = {"provider_id": upstream["provider_id"]}

    async def bulk(**body: Any) -> httpx.Response:
        return await client.post("/admin/v1/review/bulk", headers=AUTH, json=body)

    preview = await bulk(action="cancel", dry_run=True, **provider, **window(3, 1))
    assert preview.json() == {
        "action": "cancel",
        "dry_run": True,
        "order_ids": ids[:2],
        "limited": False,
    }
    other = await bulk(action="cancel", provider_id=upstream["provider_id"] + 1, **window(3, -1))
    assert other.json()["order_ids"] == []
    assert await upstream_states(ctx) == ["review"] * 4

    canceled = await bulk(action="cancel", **provider, **window(3, 1))
    assert canceled.json()["order_ids"] == ids[:2]
    again = await bulk(action="cancel", **provider, **window(3, 1))
    assert again.json()["order_ids"] == []  # resolved orders are no longer in review
    assert await upstream_states(ctx) == ["rejected", "rejected", "review", "review"]
    async with ctx.db.session() as session:
        refunds = list(
            await session.execute(
                select(LedgerEntry.order_id, LedgerEntry.amount)
                .where(LedgerEntry.kind == "refund")
                .order_by(LedgerEntry.id)
            )
        )
    assert [tuple(r) for r in refunds] == [(ids[0], Decimal("0.9")), (ids[1], Decimal("0.9"))]

    # The provider did not create the others (checked in its panel): send them again.
    await set_behaviour(upstream["url"], 7, behaviour="complete")
    resent = await bulk(action="resend", **provider, **window(1, -1))
    assert resent.json()["order_ids"] == ids[2:]
    await run_jobs(settings, ctx)
    assert await upstream_states(ctx) == ["rejected", "rejected", "sent", "sent"]
    assert (await sandbox_stats(upstream["url"]))["add_calls"] == {"7": 6}
    assert await api(user.key, "balance") == {"balance": "8.20000", "currency": "USD"}

    audit = (await client.get("/admin/v1/audit?entity=order", headers=AUTH)).json()
    trail = sorted((a["action"], int(a["entity_id"]), a["after"]) for a in audit)
    assert trail == [
        ("review.cancel", ids[0], {"bulk": True}),
        ("review.cancel", ids[1], {"bulk": True}),
        ("review.resend", ids[2], {"bulk": True}),
        ("review.resend", ids[3], {"bulk": True}),
    ]
    await ledger_ok(ctx)


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"action": "mark-sent", "provider_id": 1, **window(2, 1)}, ["body", "action"]),
        ({"action": "cancel", "provider_id": 1, **window(1, 2)}, ["body"]),
        (
            {
                "action": "cancel",
                "provider_id": 1,
                "created_from": "2026-01-01T00:00:00",
                "created_to": "2026-01-02T00:00:00",
            },
            ["body"],
        ),
        ({"action": "cancel", "provider_id": 1, "all": True, **window(2, 1)}, ["body", "all"]),
        ({"action": "cancel", **window(2, 1)}, ["body", "provider_id"]),
    ],
)
async def test_bulk_review_refuses_an_unclear_selection(
    client: httpx.AsyncClient, body: dict[str, Any], where: list[str]
) -> None:
    response = await client.post("/admin/v1/review/bulk", headers=AUTH, json=body)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"][0]["loc"] == where


async def test_erasing_a_user_erases_the_requests_sent_for_them(
    client: httpx.AsyncClient,
    upstream: dict[str, Any],
    four_in_review: tuple[Reseller, list[int]],
) -> None:
    user, ids = four_in_review
    body = {"action": "cancel", "provider_id": upstream["provider_id"], **window(3, -1)}
    assert (await client.post("/admin/v1/review/bulk", headers=AUTH, json=body)).json()[
        "order_ids"
    ] == ids
    assert (await client.delete(f"/admin/v1/users/{user.user_id}", headers=AUTH)).status_code == 200
    for order_id in ids:
        detail = (await client.get(f"/admin/v1/orders/{order_id}", headers=AUTH)).json()
        assert detail["sent_request"] is None
        assert LINK not in str(detail["upstream_history"])
