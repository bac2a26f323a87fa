"""Providers change under us: the catalog sync against a real sandbox whose catalog and
balance change over HTTP (its control endpoints)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update

from app.audit.models import AuditEntry
from app.catalog.models import Service
from app.context import AppContext
from app.orders.models import Order
from app.providers.models import Provider
from app.sandbox import SandboxConfig, SandboxService
from app.settings import Settings
from tests.support.api import Api, MakeUser, order_id_of
from tests.support.env import AUTH
from tests.support.upstream import (
    call_job,
    change_upstream,
    register_provider,
    remove_upstream,
    run_jobs,
    sandbox,
    sandbox_control,
    set_upstream_balance,
    sync_statuses,
)

LINK = "https://instagram.com/sync"


@dataclass
class Upstream:
    url: str
    app: FastAPI
    provider_id: int
    services: dict[str, int]  # our service id by upstream id
    imported: int  # the catalog changes the first import recorded


@pytest.fixture
async def upstream(
    ctx: AppContext, settings: Settings, client: httpx.AsyncClient
) -> AsyncIterator[Upstream]:
    config = SandboxConfig(
        services=[
            SandboxService(1, "Followers", rate=Decimal("0.40"), min=10, max=100_000),
            SandboxService(2, "Likes", rate=Decimal("0.10"), min=20, max=50_000, refill=False),
            SandboxService(3, "Views", rate=Decimal("0.60"), min=100, max=1_000_000),
        ],
        seconds_to_start=3600,
        seconds_to_complete=7200,
    )
    async with sandbox(config) as (url, app):
        pid = await register_provider(ctx, settings, url)
        imported = await client.post(
            f"/admin/v1/providers/{pid}/import",
            headers=AUTH,
            json={"multiplier": "2", "fixed": "0.01", "step": "0.01"},
        )
        assert imported.json() == {"created": 3, "updated": 0, "disabled": 0}
        async with ctx.db.session() as session:
            mapped = {
                s.provider_service_id or "": s.id
                for s in await session.scalars(select(Service).where(Service.provider_id == pid))
            }
        listed = await client.get(f"/admin/v1/providers/{pid}/changes", headers=AUTH)
        yield Upstream(url, app, pid, mapped, len(listed.json()))


async def service_row(ctx: AppContext, service_id: int) -> Service:
    async with ctx.db.session() as session:
        service = await session.get(Service, service_id)
        assert service is not None
        return service


async def sync(client: httpx.AsyncClient, provider_id: int) -> dict[str, Any]:
    response = await client.post(f"/admin/v1/providers/{provider_id}/sync", headers=AUTH)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def changes(client: httpx.AsyncClient, upstream: Upstream) -> list[tuple[Any, ...]]:
    """The catalog changes recorded after the first import, newest first."""
    response = await client.get(f"/admin/v1/providers/{upstream.provider_id}/changes", headers=AUTH)
    assert response.status_code == 200, response.text
    found = [
        (c["provider_service_id"], c["service_id"], c["kind"], c["before"], c["after"])
        for c in response.json()
    ]
    return found[: len(found) - upstream.imported]


async def alerts(client: httpx.AsyncClient, **query: Any) -> list[tuple[Any, ...]]:
    response = await client.get("/admin/v1/alerts", headers=AUTH, params=query)
    assert response.status_code == 200, response.text
    return [(a["kind"], a["subject"], a["subject_id"], a["open"]) for a in response.json()]


async def test_import_multiplier_becomes_the_pricing_rule(
    ctx: AppContext, client: httpx.AsyncClient, upstream: Upstream
) -> None:
    listed = await client.get(f"/admin/v1/providers/{upstream.provider_id}/changes", headers=AUTH)
    assert [(c["kind"], c["service_id"], c["after"]) for c in reversed(listed.json())] == [
        ("new", upstream.services["1"], "Followers"),
        ("new", upstream.services["2"], "Likes"),
        ("new", upstream.services["3"], "Views"),
    ]
    service = await service_row(ctx, upstream.services["1"])
    # 0.40 × 2 + 0.01, rounded up to the step 0.01.
    assert (service.pricing, service.rate) == ("markup", Decimal("0.81"))
    assert (service.price_multiplier, service.price_fixed, service.price_step) == (
        Decimal(2),
        Decimal("0.01"),
        Decimal("0.01"),
    )


async def test_rate_rise_upstream_reprices_by_rule_within_one_sync(
    ctx: AppContext, client: httpx.AsyncClient, upstream: Upstream, api: Api, make_user: MakeUser
) -> None:
    sid = upstream.services["1"]
    user = await make_user(balance="10")
    await change_upstream(upstream.url, 1, rate="0.503")
    answer = await sync(client, upstream.provider_id)
    assert answer == {
        "provider_id": upstream.provider_id,
        "ok": True,
        "error": None,
        "created": 0,
        "updated": 3,
        "disabled": 0,
        "changes": 1,
        "balance": "1000.00000",
    }
    # 0.503 × 2 + 0.01 = 1.016, rounded up to 1.02.
    service = await service_row(ctx, sid)
    assert (service.rate, service.provider_rate) == (Decimal("1.02"), Decimal("0.503"))
    assert await changes(client, upstream) == [("1", sid, "rate", "0.40", "0.503")]
    offered = {s["service"]: s["rate"] for s in await api(user.key, "services")}
    assert offered[sid] == "1.02"
    async with ctx.db.session() as session:
        entries = list(
            await session.scalars(
                select(AuditEntry).where(AuditEntry.entity == "service").order_by(AuditEntry.id)
            )
        )
    assert [(e.actor, e.action, e.entity_id) for e in entries] == [
        ("sync", "service.sync", str(sid))
    ]
    assert entries[0].before is not None and entries[0].after is not None
    assert (entries[0].before["rate"], entries[0].after["rate"]) == ("0.81000000", "1.02000000")
    # The same answer again: nothing new is recorded.
    assert (await sync(client, upstream.provider_id))["changes"] == 0
    assert len(await changes(client, upstream)) == 1


async def test_removed_upstream_disables_service_and_keeps_syncing_its_orders(
    ctx: AppContext,
    settings: Settings,
    client: httpx.AsyncClient,
    upstream: Upstream,
    api: Api,
    make_user: MakeUser,
) -> None:
    sid = upstream.services["1"]
    user = await make_user(balance="10")
    order_id = order_id_of(await api(user.key, "add", service=sid, link=LINK, quantity=100))
    await run_jobs(settings, ctx)
    async with ctx.db.session() as session:
        order = await session.get(Order, order_id)
        assert order is not None and order.upstream_state == "sent"
        provider_order_id = int(order.provider_order_id or 0)
    await remove_upstream(upstream.url, 1)
    answer = await sync(client, upstream.provider_id)
    assert (answer["ok"], answer["disabled"]) == (True, 1)
    service = await service_row(ctx, sid)
    assert (service.enabled, service.held) == (False, "removed")
    assert await changes(client, upstream) == [("1", sid, "removed", "Followers", None)]
    # The very next add is refused, although the hot path had the service cached.
    refused = await api(user.key, "add", service=sid, link=LINK + "/2", quantity=100)
    assert refused == {"error": "Incorrect service ID"}
    assert sid not in [s["service"] for s in await api(user.key, "services")]
    # The order placed before keeps being synced.
    upstream.app.state.sandbox.orders[provider_order_id].forced = {
        "status": "Completed",
        "remains": 0,
    }
    await sync_statuses(settings, ctx)
    status = await api(user.key, "status", order=order_id)
    assert (status["status"], status["remains"]) == ("Completed", "0")
    assert await alerts(client, kind="service_removed_upstream") == [
        ("service_removed_upstream", "service", sid, True)
    ]
    # It comes back upstream: on sale again.
    await sandbox_control(upstream.url, "PUT", "/services/1", {"name": "Followers", "rate": "0.4"})
    await sync(client, upstream.provider_id)
    service = await service_row(ctx, sid)
    assert (service.enabled, service.held) == (True, None)
    assert (await changes(client, upstream))[0] == ("1", sid, "new", None, "Followers")
    assert await alerts(client, kind="service_removed_upstream") == [
        ("service_removed_upstream", "service", sid, False)
    ]


async def test_service_off_sale_by_the_operator_stays_off_when_it_returns_upstream(
    ctx: AppContext, client: httpx.AsyncClient, upstream: Upstream
) -> None:
    sid = upstream.services["2"]
    await client.patch(f"/admin/v1/services/{sid}", headers=AUTH, json={"enabled": False})
    await remove_upstream(upstream.url, 2)
    assert (await sync(client, upstream.provider_id))["disabled"] == 0
    await sync(client, upstream.provider_id)
    assert await changes(client, upstream) == [("2", sid, "removed", "Likes", None)]
    await sandbox_control(upstream.url, "PUT", "/services/2", {"name": "Likes", "rate": "0.1"})
    await sync(client, upstream.provider_id)
    service = await service_row(ctx, sid)
    assert (service.enabled, service.held) == (False, None)


@pytest.mark.parametrize("answer", ["empty", "error"])
async def test_empty_or_failed_catalog_answer_changes_nothing_and_alerts(
    ctx: AppContext, client: httpx.AsyncClient, upstream: Upstream, answer: str
) -> None:
    before = {sid: (await service_row(ctx, sid)).enabled for sid in upstream.services.values()}
    await sandbox_control(upstream.url, "POST", "/catalog", {"answer": answer})
    outcome = await sync(client, upstream.provider_id)
    error = {
        "empty": "the provider answered an empty service list",
        "error": "provider error: Service list unavailable",
    }[answer]
    assert (outcome["ok"], outcome["error"], outcome["disabled"]) == (False, error, 0)
    after = {sid: (await service_row(ctx, sid)).enabled for sid in upstream.services.values()}
    assert before == after == dict.fromkeys(upstream.services.values(), True)
    assert await changes(client, upstream) == []
    provider = (
        await client.get(f"/admin/v1/providers/{upstream.provider_id}", headers=AUTH)
    ).json()
    assert provider["last_sync_error"] == error
    # One alert per failure episode; a good sync closes it.
    await sync(client, upstream.provider_id)
    assert await alerts(client) == [("catalog_sync_failed", "provider", upstream.provider_id, True)]
    await sandbox_control(upstream.url, "POST", "/catalog", {"answer": "normal"})
    assert (await sync(client, upstream.provider_id))["ok"] is True
    assert await alerts(client) == [
        ("catalog_sync_failed", "provider", upstream.provider_id, False)
    ]


async def test_answer_removing_more_than_the_share_is_a_failed_sync(
    ctx: AppContext, client: httpx.AsyncClient, upstream: Upstream
) -> None:
    await remove_upstream(upstream.url, 1)
    await remove_upstream(upstream.url, 2)
    outcome = await sync(client, upstream.provider_id)
    assert outcome["ok"] is False
    assert outcome["error"] == "the answer would remove 2 of 3 services (more than 50.0 %)"
    assert all([(await service_row(ctx, sid)).enabled for sid in upstream.services.values()])
    assert await changes(client, upstream) == []
    assert await alerts(client) == [("catalog_sync_failed", "provider", upstream.provider_id, True)]
    # The operator's import is refused the same way.
    imported = await client.post(
        f"/admin/v1/providers/{upstream.provider_id}/import", headers=AUTH, json={}
    )
    assert imported.status_code == 502
    assert all([(await service_row(ctx, sid)).enabled for sid in upstream.services.values()])


async def test_fixed_rate_below_cost_is_disabled_and_alerted(
    ctx: AppContext, client: httpx.AsyncClient, upstream: Upstream
) -> None:
    sid = upstream.services["3"]
    patched = await client.patch(
        f"/admin/v1/services/{sid}", headers=AUTH, json={"pricing": "fixed", "rate": "1.00"}
    )
    assert patched.status_code == 200 and patched.json()["pricing"] == "fixed"
    await change_upstream(upstream.url, 3, rate="0.99")
    await sync(client, upstream.provider_id)
    assert (await service_row(ctx, sid)).enabled is True  # 1.00 still covers 0.99
    await change_upstream(upstream.url, 3, rate="1.20")
    await sync(client, upstream.provider_id)
    service = await service_row(ctx, sid)
    assert (service.enabled, service.held, service.rate) == (False, "below_cost", Decimal("1"))
    await sync(client, upstream.provider_id)
    assert await alerts(client) == [("service_below_cost", "service", sid, True)]
    # The provider lowers its rate again: back on sale, the alert closed.
    await change_upstream(upstream.url, 3, rate="0.90")
    await sync(client, upstream.provider_id)
    service = await service_row(ctx, sid)
    assert (service.enabled, service.held) == (True, None)
    assert await alerts(client) == [("service_below_cost", "service", sid, False)]


async def test_cost_is_converted_into_the_panel_currency(
    ctx: AppContext, client: httpx.AsyncClient, upstream: Upstream
) -> None:
    sid = upstream.services["3"]
    await client.patch(
        f"/admin/v1/services/{sid}", headers=AUTH, json={"pricing": "fixed", "rate": "1.00"}
    )
    await client.put("/admin/v1/currencies/EUR", headers=AUTH, json={"rate": "2"})
    await client.patch(
        f"/admin/v1/providers/{upstream.provider_id}", headers=AUTH, json={"currency": "EUR"}
    )
    # 0.60 EUR = 1.20 in the panel's currency: a fixed 1.00 sells below cost.
    await sync(client, upstream.provider_id)
    assert (await service_row(ctx, sid)).held == "below_cost"
    # A markup service follows the converted cost: (0.40 × 2) × 2 + 0.01 = 1.61.
    assert (await service_row(ctx, upstream.services["1"])).rate == Decimal("1.61")


async def test_narrowed_bounds_flags_and_type_change(
    ctx: AppContext, client: httpx.AsyncClient, upstream: Upstream
) -> None:
    sid = upstream.services["1"]
    await change_upstream(upstream.url, 1, min=50, max=5000, cancel=False, name="Followers HQ")
    await sync(client, upstream.provider_id)
    service = await service_row(ctx, sid)
    assert (service.min_quantity, service.max_quantity) == (50, 5000)
    assert (service.cancel, service.refill, service.enabled) == (False, True, True)
    # A wider range upstream does not widen ours.
    await change_upstream(upstream.url, 1, min=1, max=1_000_000)
    await sync(client, upstream.provider_id)
    service = await service_row(ctx, sid)
    assert (service.min_quantity, service.max_quantity) == (50, 5000)
    await change_upstream(upstream.url, 1, type="Package")
    await sync(client, upstream.provider_id)
    service = await service_row(ctx, sid)
    assert (service.enabled, service.held, service.type, service.pending_type) == (
        False,
        "type_changed",
        "Default",
        "Package",
    )
    kinds = [(c[2], c[3], c[4]) for c in reversed(await changes(client, upstream))]
    assert kinds == [
        ("min", "10", "50"),
        ("max", "100000", "5000"),
        ("cancel", "true", "false"),
        ("name", "Followers", "Followers HQ"),
        ("min", "50", "1"),
        ("max", "5000", "1000000"),
        ("type", "Default", "Package"),
    ]
    assert await alerts(client) == [("service_type_changed", "service", sid, True)]
    confirmed = await client.post(f"/admin/v1/services/{sid}/confirm-type", headers=AUTH)
    assert confirmed.status_code == 200
    assert (confirmed.json()["type"], confirmed.json()["enabled"]) == ("Package", True)
    assert await alerts(client) == [("service_type_changed", "service", sid, False)]
    again = await client.post(f"/admin/v1/services/{sid}/confirm-type", headers=AUTH)
    assert again.status_code == 409
    await sync(client, upstream.provider_id)
    assert (await service_row(ctx, sid)).enabled is True


async def test_new_upstream_services_are_recorded_and_optionally_drafted(
    ctx: AppContext, settings: Settings, client: httpx.AsyncClient, upstream: Upstream
) -> None:
    await sandbox_control(upstream.url, "PUT", "/services/9", {"name": "Saves", "rate": "0.2"})
    await sync(client, upstream.provider_id)
    assert await changes(client, upstream) == [("9", None, "new", None, "Saves")]
    drafting = settings.model_copy(update={"catalog_new_as_drafts": True})
    await call_job(drafting, ctx, "sync_catalogs")  # synced a moment ago: not due
    async with ctx.db.session() as session:
        assert (
            await session.scalar(select(Service).where(Service.provider_service_id == "9")) is None
        )
    async with ctx.db.transaction() as session:
        await session.execute(
            update(Provider)
            .where(Provider.id == upstream.provider_id)
            .values(last_sync_at=Provider.last_sync_at - timedelta(minutes=60))
        )
    assert await call_job(drafting, ctx, "sync_catalogs") == {upstream.provider_id: "ok"}
    async with ctx.db.session() as session:
        draft = await session.scalar(select(Service).where(Service.provider_service_id == "9"))
    assert draft is not None
    assert (draft.enabled, draft.held, draft.rate, draft.pricing) == (
        False,
        "draft",
        Decimal("0.30000"),
        "markup",
    )


async def test_balance_under_threshold_alerts_once_until_recovered(
    ctx: AppContext, settings: Settings, client: httpx.AsyncClient, upstream: Upstream
) -> None:
    pid = upstream.provider_id
    patched = await client.patch(
        f"/admin/v1/providers/{pid}", headers=AUTH, json={"balance_threshold": "50"}
    )
    assert patched.json()["balance_threshold"] == "50"
    await sync(client, pid)
    assert await alerts(client) == []
    await set_upstream_balance(upstream.url, "49.99")
    await sync(client, pid)
    await sync(client, pid)
    await call_job(settings, ctx, "check_provider_balances")
    assert await alerts(client) == [("provider_balance_low", "provider", pid, True)]
    await set_upstream_balance(upstream.url, "50")
    await call_job(settings, ctx, "check_provider_balances")
    assert await alerts(client) == [("provider_balance_low", "provider", pid, False)]
    await set_upstream_balance(upstream.url, "10")
    await sync(client, pid)
    assert await alerts(client) == [
        ("provider_balance_low", "provider", pid, True),
        ("provider_balance_low", "provider", pid, False),
    ]
    listed = (await client.get("/admin/v1/alerts", headers=AUTH)).json()
    assert listed[0]["detail"] == {"balance": "10.00000", "threshold": "50.00000000"}
    # No threshold: no alert, and the open one closes at the next reading.
    cleared = await client.patch(
        f"/admin/v1/providers/{pid}", headers=AUTH, json={"balance_threshold": None}
    )
    assert cleared.json()["balance_threshold"] is None
    await sync(client, pid)
    assert [a[3] for a in await alerts(client)] == [False, False]


async def test_type_changed_back_upstream_puts_the_service_back_on_sale(
    ctx: AppContext, client: httpx.AsyncClient, upstream: Upstream
) -> None:
    sid = upstream.services["3"]
    await change_upstream(upstream.url, 3, type="Package")
    await sync(client, upstream.provider_id)
    assert (await service_row(ctx, sid)).held == "type_changed"
    await change_upstream(upstream.url, 3, type="Default")
    await sync(client, upstream.provider_id)
    service = await service_row(ctx, sid)
    assert (service.enabled, service.held, service.pending_type) == (True, None, None)
    assert await alerts(client) == [("service_type_changed", "service", sid, False)]


async def test_a_pricing_rule_changed_by_the_operator_applies_at_once(
    ctx: AppContext, client: httpx.AsyncClient, upstream: Upstream, api: Api, make_user: MakeUser
) -> None:
    """PATCH of a service's pricing rule reprices it in the same request (audited), as the
    sync would, without waiting for the next sync: the users' `services` shows it at once,
    and no rule can put it on sale below its cost."""
    sid = upstream.services["1"]  # upstream 0.40, markup × 2 + 0.01 → 0.81
    user = await make_user(balance="10")

    async def patch(**body: Any) -> dict[str, Any]:
        response = await client.patch(f"/admin/v1/services/{sid}", headers=AUTH, json=body)
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer

    async def offered() -> str:
        rates = {s["service"]: str(s["rate"]) for s in await api(user.key, "services")}
        return rates.get(sid, "-")

    assert await offered() == "0.81"
    repriced = await patch(price_multiplier="3")  # 0.40 × 3 + 0.01 = 1.21
    assert (repriced["rate"], repriced["enabled"]) == ("1.21000000", True)
    assert (await service_row(ctx, sid)).rate == Decimal("1.21")
    assert await offered() == "1.21"

    # A fixed rate under the cost: taken off sale and alerted, as the sync does.
    held = await patch(pricing="fixed", rate="0.30")
    assert (held["rate"], held["enabled"], held["held"]) == ("0.30000000", False, "below_cost")
    assert await offered() == "-"
    assert await alerts(client) == [("service_below_cost", "service", sid, True)]
    # Back to a markup that covers it: repriced, on sale again, the alert closed.
    back = await patch(pricing="markup", price_multiplier="1.5", price_step="0.01")
    assert (back["rate"], back["enabled"], back["held"]) == ("0.61000000", True, None)
    assert await alerts(client) == [("service_below_cost", "service", sid, False)]
    assert await offered() == "0.61"

    async with ctx.db.session() as session:
        entries = list(
            await session.scalars(
                select(AuditEntry).where(AuditEntry.entity == "service").order_by(AuditEntry.id)
            )
        )
    assert [
        (e.action, e.entity_id, (e.before or {})["rate"], (e.after or {})["rate"]) for e in entries
    ] == [
        ("service.update", str(sid), "0.81000000", "1.21000000"),
        ("service.update", str(sid), "1.21000000", "0.30000000"),
        ("service.update", str(sid), "0.30000000", "0.61000000"),
    ]
    assert (entries[1].after or {})["held"] == "below_cost"
    # Nothing was left for the next sync to change.
    assert (await sync(client, upstream.provider_id))["changes"] == 0
    assert (await service_row(ctx, sid)).rate == Decimal("0.61")
