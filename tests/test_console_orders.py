"""The console's orders: filtered and exported like /admin/v1's list; one order shows its
upstream history and the exact request its last attempt sent; an order in the review
queue is resent, marked sent or canceled with a full refund; a status is set by hand where
the rules allow; the review queue's bulk resend runs first as a dry run that changes
nothing. Each change is audited naming the staff member; a finance member only reads."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import select

from app.audit.models import AuditEntry
from app.context import AppContext
from app.ledger.models import LedgerEntry
from app.settings import Settings
from tests.support.api import Api, MakeService, MakeUser, Reseller
from tests.support.console import shown_text, signed_in, submit
from tests.support.ledger import ledger_ok
from tests.support.review import Upstream, orders_in_review, review_provider
from tests.support.upstream import run_jobs, sandbox_stats, upstream_states
from tests.support.web import csrf_of


@pytest.fixture
async def upstream(ctx: AppContext, settings: Settings) -> AsyncIterator[Upstream]:
    async with review_provider(ctx, settings) as found:
        yield found


@pytest.fixture
async def three_in_review(
    api: Api,
    ctx: AppContext,
    settings: Settings,
    make_user: MakeUser,
    make_service: MakeService,
    upstream: Upstream,
) -> tuple[Reseller, list[int]]:
    return await orders_in_review(api, ctx, settings, make_user, make_service, upstream, 3)


async def refunds(ctx: AppContext) -> list[tuple[int | None, Decimal, str | None]]:
    async with ctx.db.session() as session:
        rows = await session.execute(
            select(LedgerEntry.order_id, LedgerEntry.amount, LedgerEntry.reason)
            .where(LedgerEntry.kind == "refund")
            .order_by(LedgerEntry.id)
        )
        return [(r[0], r[1], r[2]) for r in rows]


async def audited(ctx: AppContext, actor: str) -> list[tuple[str, str | None, object]]:
    async with ctx.db.session() as session:
        rows = await session.scalars(
            select(AuditEntry).where(AuditEntry.actor == actor).order_by(AuditEntry.id)
        )
        return [(a.action, a.entity_id, a.after) for a in rows]


async def test_the_list_filters_like_the_api_and_exports_csv(
    client: httpx.AsyncClient,
    ctx: AppContext,
    upstream: Upstream,
    three_in_review: tuple[Reseller, list[int]],
) -> None:
    user, ids = three_in_review
    await signed_in(client, ctx, "finance")
    listed = await client.get(
        f"/web/admin/orders?upstream_state=review&provider_id={upstream.provider_id}"
        f"&user_id={user.user_id}&link=r/1"
    )
    assert listed.status_code == 200
    assert [f'<tr id="order-{i}">' in listed.text for i in ids] == [False, True, False]
    assert 'id="bulk-form"' not in listed.text  # finance reads orders, writes none
    nothing = await client.get("/web/admin/orders?status=Completed")
    assert "Nothing found." in nothing.text
    lenient = await client.get("/web/admin/orders?user_id=abc&created_from=never&page=-4")
    assert lenient.status_code == 200  # a filter that does not parse is no filter
    exported = await client.get("/web/admin/orders?upstream_state=review&format=csv")
    rows = exported.content.decode("utf-8-sig").splitlines()
    assert rows[0].split(",")[:3] == ["ID", "Customer", "Service"]
    assert [int(r.split(",")[0]) for r in rows[1:]] == sorted(ids, reverse=True)


async def test_an_order_shows_the_request_sent_and_leaves_review_once(
    client: httpx.AsyncClient,
    ctx: AppContext,
    settings: Settings,
    upstream: Upstream,
    three_in_review: tuple[Reseller, list[int]],
) -> None:
    _, ids = three_in_review
    manager = await signed_in(client, ctx, "manager")
    page = f"/web/admin/orders/{ids[0]}"
    shown = await client.get(page)
    assert shown_text(shown, "sent-request") == (
        "link=https://instagram.com/r/0 action=add service=7 quantity=1000"
    )  # as stored (JSONB orders keys by length)
    assert "sandbox-key" not in shown.text
    marked = await submit(client, page, f"{page}/review/mark-sent", provider_order_id="ext-77")
    assert marked.headers["location"] == f"{page}?done=mark_sent"
    shown = await client.get(marked.headers["location"])
    assert shown_text(shown, "order-upstream").endswith("their id ext-77")
    token = csrf_of(shown)
    twice = await client.post(f"{page}/review/cancel", data={"csrf": token})
    assert (twice.status_code, shown_text(twice, "error")) == (
        409,
        "order is not in the review queue",
    )
    second = f"/web/admin/orders/{ids[1]}"
    canceled = await submit(client, second, f"{second}/review/cancel")
    assert canceled.headers["location"] == f"{second}?done=cancel"
    third = f"/web/admin/orders/{ids[2]}"
    resent = await submit(client, third, f"{third}/review/resend")
    assert resent.headers["location"] == f"{third}?done=resend"
    await run_jobs(settings, ctx)
    assert await upstream_states(ctx) == ["sent", "rejected", "sent"]
    assert await refunds(ctx) == [
        (ids[1], Decimal("0.90000000"), f"Order {ids[1]}: Not placed upstream")
    ]
    assert [a[:2] for a in await audited(ctx, manager.staff.email)] == [
        ("review.mark_sent", str(ids[0])),
        ("review.cancel", str(ids[1])),
        ("review.resend", str(ids[2])),
    ]
    await ledger_ok(ctx)


async def test_a_bulk_resend_runs_first_as_a_dry_run_that_changes_nothing(
    client: httpx.AsyncClient,
    ctx: AppContext,
    settings: Settings,
    upstream: Upstream,
    three_in_review: tuple[Reseller, list[int]],
) -> None:
    _, ids = three_in_review
    owner = await signed_in(client, ctx, "owner")
    form = await client.get("/web/admin/orders?upstream_state=review")
    token = csrf_of(form)
    dry = await client.post(
        "/web/admin/orders/bulk",
        data={
            "csrf": token,
            "action": "resend",
            "dry_run": "1",
            "order": [str(ids[0]), str(ids[2])],
        },
    )
    assert dry.status_code == 200
    assert shown_text(dry, "bulk-summary") == (
        "Nothing was changed. 2 orders in the review queue would be taken (resend upstream):"
    )
    assert await upstream_states(ctx) == ["review"] * 3
    assert await audited(ctx, owner.staff.email) == []
    confirm = csrf_of(dry)
    done = await client.post(
        "/web/admin/orders/bulk",
        data={
            "csrf": confirm,
            "action": "resend",
            "dry_run": "0",
            "order": [str(ids[0]), str(ids[2])],
        },
    )
    assert shown_text(done, "bulk-summary") == "Done: 2 orders (resend upstream)."
    await run_jobs(settings, ctx)
    assert await upstream_states(ctx) == ["sent", "review", "sent"]
    assert (await sandbox_stats(upstream.url))["add_calls"] == {"7": 5}
    assert await audited(ctx, owner.staff.email) == [
        ("review.resend", str(ids[0]), {"bulk": True}),
        ("review.resend", str(ids[2]), {"bulk": True}),
    ]
    # With nothing ticked the filter's provider and dates choose, as /admin/v1 does.
    by_filter = await client.post(
        "/web/admin/orders/bulk",
        data={
            "csrf": confirm,
            "action": "cancel",
            "dry_run": "1",
            "provider_id": str(upstream.provider_id),
        },
    )
    assert shown_text(by_filter, "bulk-orders") == str(ids[1])
    unclear = await client.post(
        "/web/admin/orders/bulk", data={"csrf": confirm, "action": "cancel", "dry_run": "1"}
    )
    assert (unclear.status_code, shown_text(unclear, "message")) == (
        422,
        "Select orders, or filter the list by a provider first.",
    )


async def test_a_status_set_by_hand_refunds_by_rule_once(
    client: httpx.AsyncClient,
    ctx: AppContext,
    api: Api,
    make_user: MakeUser,
    make_service: MakeService,
) -> None:
    user = await make_user("10")
    service_id = await make_service(min_quantity=10)  # no provider: fulfilled by hand
    order_id = (
        await api(user.key, "add", service=service_id, link="https://x.com/a", quantity=1000)
    )["order"]
    manager = await signed_in(client, ctx, "manager")
    page = f"/web/admin/orders/{order_id}"
    bad = await submit(client, page, f"{page}/status", status="Partial", remains="lots")
    assert (bad.status_code, shown_text(bad, "error")) == (
        422,
        "Enter a whole number of at least 0.",
    )
    partial = await submit(client, page, f"{page}/status", status="Partial", remains="250")
    assert partial.headers["location"] == f"{page}?done=status"
    again = await submit(client, page, f"{page}/status", status="Canceled")
    assert (again.status_code, shown_text(again, "error")) == (
        409,
        "Order already finished (Partial): its status cannot change",
    )
    assert [(r[0], r[1]) for r in await refunds(ctx)] == [(order_id, Decimal("0.22500000"))]
    trail = await audited(ctx, manager.staff.email)
    assert [a[:2] for a in trail] == [("order.status", str(order_id))]
    await ledger_ok(ctx)
