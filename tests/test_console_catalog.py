"""The console's catalog and providers: a service edited under the catalog's rules (a
removed service stays removed, bounds in order), several services taken off sale or given
a markup rule at once (repriced from their provider's rate), backup providers in their
failover order, categories reordered and deleted only when empty; a provider's balance
read and its catalog synced now against a real sandbox provider, its change log shown;
an alert acknowledged leaves the dashboard's open alerts. Each change audited naming the
staff member."""

from __future__ import annotations

from decimal import Decimal

import httpx
from sqlalchemy import select

from app.alerts import service as alerts
from app.audit.models import AuditEntry
from app.catalog.models import Service, ServiceBackup
from app.context import AppContext
from app.providers.service import create_provider
from app.sandbox import SandboxConfig, SandboxService
from app.settings import Settings
from tests.support.api import MakeService
from tests.support.console import shown_text, signed_in, submit
from tests.support.upstream import change_upstream, register_provider, sandbox, set_upstream_balance
from tests.support.web import csrf_of

FORM = {
    "name": "Likes",
    "type": "Default",
    "rate": "1.25",
    "min_quantity": "10",
    "max_quantity": "5000",
    "step": "1",
    "refill_days": "30",
    "position": "0",
    "pricing": "fixed",
    "enabled": "1",
}


async def services_of(ctx: AppContext) -> dict[int, Service]:
    async with ctx.db.session() as session:
        return {s.id: s for s in await session.scalars(select(Service))}


async def actions_of(ctx: AppContext, actor: str) -> list[tuple[str, str | None]]:
    async with ctx.db.session() as session:
        rows = await session.execute(
            select(AuditEntry.action, AuditEntry.entity_id)
            .where(AuditEntry.actor == actor)
            .order_by(AuditEntry.id)
        )
        return [(a, e) for a, e in rows]


async def test_a_service_is_edited_under_the_catalogs_rules(
    client: httpx.AsyncClient, ctx: AppContext, make_service: MakeService
) -> None:
    service_id = await make_service()
    manager = await signed_in(client, ctx, "manager")
    page = f"/web/admin/services/{service_id}"
    category = str((await services_of(ctx))[service_id].category_id)
    saved = await submit(client, page, page, **FORM, category_id=category)
    assert saved.headers["location"] == f"{page}?done=saved"
    row = (await services_of(ctx))[service_id]
    assert (row.name, row.rate, row.max_quantity, row.cancel) == (
        "Likes",
        Decimal("1.25000000"),
        5000,
        False,  # unticked: cancel is no longer allowed
    )
    crossed = await submit(
        client, page, page, **{**FORM, "min_quantity": "900", "max_quantity": "100"}
    )
    assert (crossed.status_code, shown_text(crossed, "error")) == (
        422,
        "min_quantity must not exceed max_quantity",
    )
    half = await submit(client, page, page, **{**FORM, "provider_service_id": "17"})
    assert (half.status_code, shown_text(half, "error")) == (
        422,
        "provider_id and provider_service_id must be set together (or both null)",
    )
    removed = await submit(client, page, f"{page}/remove", confirm="1")
    assert removed.headers["location"] == f"{page}?done=removed"
    again = await submit(client, page, page, **FORM, category_id=category)
    assert (again.status_code, shown_text(again, "error")) == (
        409,
        "Service was removed: it cannot be enabled again; create a new service instead",
    )
    assert await actions_of(ctx, manager.staff.email) == [
        ("service.update", str(service_id)),
        ("service.delete", str(service_id)),
    ]


async def test_ticked_services_go_off_sale_or_get_a_markup_at_once(
    client: httpx.AsyncClient, ctx: AppContext, settings: Settings, make_service: MakeService
) -> None:
    async with ctx.db.transaction() as session:
        provider = await create_provider(
            session,
            secret=settings.secret_key,
            name="Up",
            url="http://127.0.0.1:9/api/v2",
            api_key="k",
        )
    mapped = [
        await make_service(
            provider_id=provider.id, provider_service_id=str(n), provider_rate=Decimal(rate)
        )
        for n, rate in ((1, "0.40"), (2, "1.10"))
    ]
    by_hand = await make_service()
    manager = await signed_in(client, ctx, "manager")
    token = csrf_of(await client.get("/web/admin/services"))
    off = await client.post(
        "/web/admin/services/bulk",
        data={"csrf": token, "action": "disable", "service": [str(mapped[0]), str(by_hand)]},
    )
    assert off.headers["location"] == "/web/admin/services?done=bulk"
    refused = await client.post(
        "/web/admin/services/bulk",
        data={
            "csrf": token,
            "action": "pricing",
            "multiplier": "2",
            "service": [str(mapped[1]), str(by_hand)],
        },
    )
    assert (refused.status_code, shown_text(refused, "error")) == (
        422,
        f"Service {by_hand} has no provider rate: a markup needs one",
    )
    priced = await client.post(
        "/web/admin/services/bulk",
        data={
            "csrf": token,
            "action": "pricing",
            "multiplier": "1.5",
            "fixed": "0.1",
            "step": "0.05",
            "service": [str(i) for i in mapped],
        },
    )
    assert priced.headers["location"] == "/web/admin/services?done=bulk"
    rows = await services_of(ctx)
    assert [(rows[i].enabled, rows[i].pricing, rows[i].rate) for i in (*mapped, by_hand)] == [
        (False, "markup", Decimal("0.70000000")),  # 0.40 × 1.5 + 0.1
        (True, "markup", Decimal("1.75000000")),  # 1.10 × 1.5 + 0.1 = 1.75
        (False, "fixed", Decimal("0.90000000")),
    ]
    assert len(await actions_of(ctx, manager.staff.email)) == 4
    backups = await submit(
        client,
        f"/web/admin/services/{mapped[0]}",
        f"/web/admin/services/{mapped[0]}/backups",
        **{"backup-0-provider": str(provider.id), "backup-0-service": "9", "backup-0-rate": "0.5"},
    )
    assert backups.status_code == 303
    async with ctx.db.session() as session:
        kept = list(await session.scalars(select(ServiceBackup)))
    assert [(b.service_id, b.position, b.provider_service_id) for b in kept] == [
        (mapped[0], 1, "9")
    ]


async def test_categories_are_reordered_and_deleted_only_when_empty(
    client: httpx.AsyncClient, ctx: AppContext, make_service: MakeService
) -> None:
    service_id = await make_service()
    used = (await services_of(ctx))[service_id].category_id
    await signed_in(client, ctx, "manager")
    page = "/web/admin/categories"
    added = await submit(client, page, page, name="TikTok", position="-1", enabled="1")
    assert added.headers["location"] == f"{page}?done=category"
    shown = await client.get(page)
    assert shown.text.index("TikTok") < shown.text.index("First Category")
    refused = await submit(client, page, f"{page}/{used}/remove")
    assert (refused.status_code, shown_text(refused, "error")) == (
        409,
        "Category still has services",
    )


async def test_a_providers_balance_and_catalog_are_read_now_and_alerts_acknowledged(
    client: httpx.AsyncClient, ctx: AppContext, settings: Settings, make_service: MakeService
) -> None:
    config = SandboxConfig(
        services=[SandboxService(5, "Views", rate=Decimal("0.20"), min=10, max=1000)],
        seconds_to_start=0,
        seconds_to_complete=0,
    )
    async with sandbox(config) as (url, _):
        provider_id = await register_provider(ctx, settings, url)
        await make_service(
            provider_id=provider_id, provider_service_id="5", provider_rate=Decimal("0.20")
        )
        manager = await signed_in(client, ctx, "manager")
        page = f"/web/admin/providers/{provider_id}"
        threshold = await submit(
            client,
            page,
            page,
            name="Sandbox",
            url=f"{url}/api/v2",
            balance_threshold="50",
            sync_minutes="60",
            enabled="1",
        )
        assert threshold.headers["location"] == f"{page}?done=saved"
        await set_upstream_balance(url, "12.5")
        read = await submit(client, page, f"{page}/balance")
        assert read.headers["location"] == f"{page}?done=balance"
        shown = await client.get(read.headers["location"])
        assert shown_text(shown, "provider-balance").startswith("12.5")
        await change_upstream(url, 5, rate="0.30")
        synced = await submit(client, page, f"{page}/sync")
        assert synced.headers["location"] == f"{page}?done=synced"
        changes = await client.get(page)
        assert "0.30" in shown_text(changes, "changes")
    board = await client.get("/web/admin/")
    assert shown_text(board, "open-alerts") == "1"  # the balance under its threshold
    async with ctx.db.session() as session:
        (low,) = await alerts.list_alerts(session, kind=alerts.BALANCE_LOW)
    acknowledged = await submit(
        client, "/web/admin/alerts?open=1", f"/web/admin/alerts/{low.id}/acknowledge"
    )
    assert acknowledged.headers["location"] == "/web/admin/alerts?open=1&done=acknowledged"
    listed = await client.get(acknowledged.headers["location"])
    assert f'id="alert-{low.id}"' not in listed.text
    board = await client.get("/web/admin/")
    assert shown_text(board, "open-alerts") == "0"
    actions = [a for a, _ in await actions_of(ctx, manager.staff.email)]
    assert actions == ["provider.update", "provider.sync", "alert.acknowledge"]
