"""Each SQL statement that restates a Python rule (app/orders/sql.py) against its Python
twin: both applied to identical rows, the resulting rows compared field by field."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.context import AppContext
from app.db import utcnow
from app.flows import relay, review
from app.orders.models import (
    CANCELED,
    COMPLETED,
    IN_PROGRESS,
    PARTIAL,
    PENDING,
    PROCESSING,
    UP_DRIPFEED,
    UP_QUEUED,
    UP_REVIEW,
    UP_SENDING,
    UP_SENT,
    Order,
    UpstreamEvent,
)
from app.orders.service import StatusReport, apply_status
from app.orders.sql import PROGRESS_SQL, SENT_SQL, progress_params, sent_params
from app.providers.service import create_provider
from app.settings import Settings
from tests.support.api import MakeService, MakeUser

# Columns that differ by construction (identity, the link kept unique per row, clocks).
IGNORED = {"id", "link", "link_normalized", "created_at", "updated_at", "finished_at"}
SINCE = datetime(2026, 1, 1, tzinfo=utcnow().tzinfo)


@dataclass(frozen=True)
class Case:
    name: str
    start: dict[str, Any]
    report: StatusReport = field(default_factory=lambda: StatusReport(IN_PROGRESS))
    priced: bool = True


def order_values(user_id: int, service_id: int, n: int, **start: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "user_id": user_id,
        "service_id": service_id,
        "type": "Default",
        "link": f"https://x.y/{n}",
        "link_normalized": f"https://x.y/{n}",
        "quantity": 100,
        "params": {},
        "rate": Decimal("1"),
        "charge": Decimal("0.1"),
        "refunded": Decimal(0),
        "status": IN_PROGRESS,
        "upstream_state": UP_SENT,
        "start_count": None,
        "remains": None,
    }
    values.update(start)
    return values


def snapshot(order: Order) -> dict[str, Any]:
    row = {c: getattr(order, c) for c in Order.__table__.columns.keys() if c not in IGNORED}
    row["finished"] = order.finished_at is not None
    return row


async def events_of(session: AsyncSession, order_id: int) -> list[tuple[str, str, Any]]:
    rows = await session.execute(
        select(UpstreamEvent.action, UpstreamEvent.outcome, UpstreamEvent.detail)
        .where(UpstreamEvent.order_id == order_id)
        .order_by(UpstreamEvent.id)
    )
    return [tuple(r) for r in rows]


async def twins(
    ctx: AppContext, user_id: int, service_id: int, n: int, start: dict[str, Any]
) -> tuple[int, int]:
    async with ctx.db.transaction() as session:
        a = Order(**order_values(user_id, service_id, 2 * n, **start))
        b = Order(**order_values(user_id, service_id, 2 * n + 1, **start))
        session.add_all([a, b])
        await session.flush()
        return a.id, b.id


async def compare(ctx: AppContext, sql_id: int, python_id: int) -> dict[str, Any]:
    async with ctx.db.session() as session:
        by_sql = await session.get(Order, sql_id)
        by_python = await session.get(Order, python_id)
        assert by_sql is not None and by_python is not None
        assert snapshot(by_sql) == snapshot(by_python)
        assert await events_of(session, sql_id) == await events_of(session, python_id)
        return snapshot(by_sql)


async def rolled_back(
    ctx: AppContext, order_id: int, twin: Callable[[AsyncSession], Awaitable[None]]
) -> tuple[dict[str, Any], list[tuple[str, str, Any]]]:
    """The order and its history as `twin` leaves them, in a transaction rolled back
    afterwards (the next twin starts from the same row)."""
    async with ctx.db.session() as session:
        await twin(session)
        order = await session.get(Order, order_id, populate_existing=True)
        assert order is not None
        seen = snapshot(order), await events_of(session, order_id)
        await session.rollback()
    return seen


PROGRESS_CASES = [
    Case("pending starts", {"status": PENDING}, StatusReport(IN_PROGRESS, 5, 100)),
    Case("progress with counts", {}, StatusReport(IN_PROGRESS, 3572, 157)),
    Case("moves to processing", {}, StatusReport(PROCESSING, None, 90)),
    Case("completes", {"remains": 40}, StatusReport(COMPLETED, 10, 40)),
    Case("completes without remains", {}, StatusReport(COMPLETED)),
    Case("processing completes", {"status": PROCESSING}, StatusReport(COMPLETED, None, 7)),
    Case("over-delivery is 0 remains", {}, StatusReport(IN_PROGRESS, None, -25)),
    Case("remains clamped to quantity", {}, StatusReport(IN_PROGRESS, None, 5000)),
    Case("unknown remains keep ours", {"remains": 60}, StatusReport(PROCESSING, None, None)),
    Case("negative start ignored", {"start_count": 9}, StatusReport(IN_PROGRESS, -1, 50)),
    Case("zero start kept", {"start_count": 9}, StatusReport(IN_PROGRESS, 0, 50)),
    Case("nothing new", {"remains": 50}, StatusReport(IN_PROGRESS)),
    Case("completed never moves", {"status": COMPLETED, "remains": 0}, StatusReport(PROCESSING)),
    Case("partial never moves", {"status": PARTIAL, "remains": 30}, StatusReport(COMPLETED)),
    Case("canceled never moves", {"status": CANCELED, "remains": 100}, StatusReport(IN_PROGRESS)),
    Case(
        "drip-feed parent never moves",
        {"upstream_state": UP_DRIPFEED, "remains": 100},
        StatusReport(COMPLETED, 3, 0),
    ),
]


@pytest.mark.parametrize("case", PROGRESS_CASES, ids=[c.name for c in PROGRESS_CASES])
async def test_progress_sql_is_the_twin_of_apply_status(
    ctx: AppContext, make_user: MakeUser, make_service: MakeService, case: Case
) -> None:
    user = await make_user()
    service_id = await make_service()
    by_sql, by_python = await twins(ctx, user.user_id, service_id, 0, case.start)
    async with ctx.db.transaction() as session:
        changed = (
            await session.execute(PROGRESS_SQL, progress_params([(by_sql, case.report)]))
        ).all()
    async with ctx.db.transaction() as session:
        moved = await apply_status(session, by_python, case.report, source="provider")
    assert bool(changed) == moved
    await compare(ctx, by_sql, by_python)


async def test_progress_sql_applies_a_page_as_its_twin_applies_each(
    ctx: AppContext, make_user: MakeUser, make_service: MakeService
) -> None:
    user = await make_user()
    service_id = await make_service()
    pairs = [
        await twins(ctx, user.user_id, service_id, n, case.start)
        for n, case in enumerate(PROGRESS_CASES)
    ]
    async with ctx.db.transaction() as session:
        await session.execute(
            PROGRESS_SQL,
            progress_params(
                [(a, c.report) for (a, _), c in zip(pairs, PROGRESS_CASES, strict=True)]
            ),
        )
    for (_, b), case in zip(pairs, PROGRESS_CASES, strict=True):
        async with ctx.db.transaction() as session:
            await apply_status(session, b, case.report, source="provider")
    for a, b in pairs:
        await compare(ctx, a, b)


SENT_CASES = [
    Case("review, priced", {"upstream_state": UP_REVIEW, "status": PENDING}),
    Case("review, unpriced", {"upstream_state": UP_REVIEW, "status": PENDING}, priced=False),
    Case(
        "review with an error and a cancel requested",
        {
            "upstream_state": UP_REVIEW,
            "status": PENDING,
            "last_error": "add: no answer in time (ReadTimeout)",
            "cancel_state": "requested",
            "sending_since": SINCE,
        },
    ),
    Case(
        "review keeps an earlier cost when unpriced",
        {
            "upstream_state": UP_REVIEW,
            "status": PENDING,
            "provider_charge": Decimal("0.03"),
            "provider_currency": "EUR",
            "fx_rate": Decimal("1.1"),
        },
        priced=False,
    ),
    Case(
        "a provider order id is never replaced",
        {"upstream_state": UP_REVIEW, "status": PENDING, "provider_order_id": "41"},
    ),
    Case("sent stays as it is", {"upstream_state": UP_SENT, "provider_order_id": "42"}),
    Case("queued is not sent", {"upstream_state": UP_QUEUED, "status": PENDING}),
]


@pytest.mark.parametrize("case", SENT_CASES, ids=[c.name for c in SENT_CASES])
async def test_sent_sql_is_the_twin_of_review_mark_sent(
    ctx: AppContext,
    settings: Settings,
    make_user: MakeUser,
    make_service: MakeService,
    case: Case,
) -> None:
    async with ctx.db.transaction() as session:
        provider = await create_provider(
            session,
            secret=settings.secret_key,
            name="P",
            url="http://127.0.0.1:9/api/v2",
            api_key="k",
        )
    user = await make_user()
    service_id = await make_service(
        provider_id=provider.id,
        provider_service_id="1",
        provider_rate=Decimal("0.40") if case.priced else None,
    )
    # One row, each twin applied to it in a transaction of its own that is then rolled
    # back: two rows could not both hold upstream order 77 of one provider.
    start = {"provider_id": provider.id, "provider_service_id": "1", **case.start}
    async with ctx.db.transaction() as session:
        row = Order(**order_values(user.user_id, service_id, 0, **start))
        session.add(row)
        await session.flush()
        order_id = row.id

    async def by_sql(session: AsyncSession) -> None:
        order = await session.get(Order, order_id)
        assert order is not None
        costs = await relay.upstream_costs(session, settings, [(order, provider)])
        await session.execute(SENT_SQL, sent_params([(order_id, "77")], costs))
        # The relay also records the answer in the order's history; the operator's action
        # is in the audit log instead.
        await session.execute(
            delete(UpstreamEvent).where(
                UpstreamEvent.order_id == order_id, UpstreamEvent.outcome == "sent"
            )
        )

    async def by_python(session: AsyncSession) -> None:
        await review.review_mark_sent(session, order_id, "77", settings)

    after = await rolled_back(ctx, order_id, by_sql)
    assert after == await rolled_back(ctx, order_id, by_python)
    if case.name.startswith("review"):
        assert (after[0]["upstream_state"], after[0]["status"], after[0]["provider_order_id"]) == (
            UP_SENT,
            IN_PROGRESS,
            "77",
        )


async def test_sent_sql_records_the_relays_own_claims_as_review_does(
    ctx: AppContext, settings: Settings, make_user: MakeUser, make_service: MakeService
) -> None:
    """SENT_SQL also takes `sending` rows (the relay's own claims): they end exactly as a
    review row marked sent by the operator does."""
    user = await make_user()
    service_id = await make_service()
    sending, in_review = await twins(
        ctx, user.user_id, service_id, 0, {"upstream_state": UP_SENDING, "status": PENDING}
    )
    async with ctx.db.transaction() as session:
        await session.execute(
            update(Order).where(Order.id == in_review).values(upstream_state=UP_REVIEW)
        )
    async with ctx.db.transaction() as session:
        await session.execute(SENT_SQL, sent_params([(sending, "77")], {}))
    async with ctx.db.transaction() as session:
        assert await review.review_mark_sent(session, in_review, "77", settings)
    async with ctx.db.session() as session:
        a, b = await session.get(Order, sending), await session.get(Order, in_review)
        assert a is not None and b is not None
        assert snapshot(a) == snapshot(b)
