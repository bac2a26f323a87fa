"""One bad answer touches one order (issue 25): a provider's garbage order id, an order
named together with an error, an upstream id given to two orders, a Partial report
without remains. Each ends on its own order (review, a resend with its request id, an
anomaly flag); every other order of the batch, and of other providers, goes on as if
nothing happened. Providers are real servers over HTTP: the sandbox for the healthy one,
a scripted app answering exact bytes for the bad one."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select, text, update

from app import runner
from app.context import AppContext
from app.db import utcnow
from app.flows import relay, sync
from app.ledger.models import LedgerEntry
from app.orders.models import Order, UpstreamEvent
from app.orders.sql import SENT_SQL, sent_params
from app.providers.client import ProviderClient, build_http_client
from app.providers.service import client_for
from app.sandbox import SandboxConfig, SandboxService
from app.settings import Settings
from tests.support.api import Api, MakeService, MakeUser, order_id_of
from tests.support.env import AUTH
from tests.support.ledger import ledger_ok
from tests.support.scripted import ScriptedProvider, scripted_provider
from tests.support.upstream import (
    call_job,
    register_provider,
    run_jobs,
    sandbox,
    sandbox_stats,
)

# What a provider may answer to `add` instead of an order id.
MALFORMED_IDS = {
    "65 characters": '{"order": "' + "7" * 65 + '"}',
    "a NUL inside": '{"order": "12\\u00003"}',
    "an object": '{"order": {"id": 5}}',
    "false": '{"order": false}',
    "a negative number": '{"order": -1}',
    "a bidi override": '{"order": "\\u202e12"}',
    "a float": '{"order": 5.5}',
    "a list": '{"order": [5]}',
    "only spaces": '{"order": "   "}',
}

# Answers that name an order and something else: the order may exist upstream.
ORDER_AND_ERROR = {
    "HTTP 400 naming an order": (400, '{"order": 99}'),
    "an order and a refusal": (200, '{"error": "Incorrect link", "order": 5}'),
    "an order and a transient error": (200, '{"order": 5, "error": "Not enough funds"}'),
}

CHARGE = Decimal("0.09")  # 100 units at 0.90 per 1000


@pytest.fixture
async def healthy(
    ctx: AppContext, settings: Settings, make_service: MakeService
) -> AsyncIterator[tuple[str, int]]:
    """A sandbox accepting everything, and our service relayed to it: (url, service)."""
    config = SandboxConfig(
        services=[SandboxService(1, "Followers", rate=Decimal("0.40"), min=10, max=100_000)],
        seconds_to_start=3600,
        seconds_to_complete=7200,
    )
    async with sandbox(config) as (url, _):
        provider_id = await register_provider(ctx, settings, url, name="Healthy")
        service_id = await make_service(
            rate=Decimal("0.90"),
            min_quantity=10,
            provider_id=provider_id,
            provider_service_id="1",
            provider_rate=Decimal("0.40"),
        )
        yield url, service_id


async def scripted_service(make_service: MakeService, provider: ScriptedProvider) -> int:
    return await make_service(
        rate=Decimal("0.90"),
        min_quantity=10,
        provider_id=provider.provider_id,
        provider_service_id="1",
        provider_rate=Decimal("0.40"),
    )


@pytest.fixture
async def bad(
    ctx: AppContext, settings: Settings, make_service: MakeService
) -> AsyncIterator[tuple[ScriptedProvider, int]]:
    """A scripted provider that does not take request ids, and our service relayed to it."""
    async with scripted_provider(ctx, settings, name="Bad") as provider:
        yield provider, await scripted_service(make_service, provider)


@pytest.fixture
async def bad_with_request_ids(
    ctx: AppContext, settings: Settings, make_service: MakeService
) -> AsyncIterator[tuple[ScriptedProvider, int]]:
    async with scripted_provider(ctx, settings, name="Bad", request_ids=True) as provider:
        yield provider, await scripted_service(make_service, provider)


async def place(api: Api, key: str, service_id: int, n: int) -> int:
    answer = await api(key, "add", service=service_id, link=f"https://x.com/{n}", quantity=100)
    return order_id_of(answer)


async def orders_by_id(ctx: AppContext) -> dict[int, Order]:
    async with ctx.db.session() as session:
        return {o.id: o for o in await session.scalars(select(Order).order_by(Order.id))}


async def events(ctx: AppContext, order_id: int) -> list[tuple[str, str]]:
    async with ctx.db.session() as session:
        rows = await session.execute(
            select(UpstreamEvent.action, UpstreamEvent.outcome)
            .where(UpstreamEvent.order_id == order_id)
            .order_by(UpstreamEvent.id)
        )
        return [(r[0], r[1]) for r in rows]


async def refunds(ctx: AppContext) -> dict[int, Decimal]:
    async with ctx.db.session() as session:
        rows = await session.execute(
            select(LedgerEntry.order_id, LedgerEntry.amount).where(LedgerEntry.kind == "refund")
        )
        return {int(r[0] or 0): r[1] for r in rows}


def anomalies_counted(provider_id: int, kind: str) -> float:
    value = REGISTRY.get_sample_value(
        "smm_provider_anomalies_total", {"provider_id": str(provider_id), "kind": kind}
    )
    return value or 0.0


async def order_alerts(client: httpx.AsyncClient, order_id: int) -> list[tuple[str, bool]]:
    listed = await client.get(
        "/admin/v1/alerts", headers=AUTH, params={"subject": "order", "subject_id": order_id}
    )
    assert listed.status_code == 200, listed.text
    return [(a["kind"], a["open"]) for a in listed.json()]


async def due_now(ctx: AppContext, order_id: int) -> None:
    async with ctx.db.transaction() as session:
        await session.execute(
            update(Order).where(Order.id == order_id).values(next_attempt_at=utcnow())
        )


# -- A malformed order id ---------------------------------------------------------------


@pytest.mark.parametrize("answer", MALFORMED_IDS.values(), ids=MALFORMED_IDS.keys())
async def test_a_malformed_order_id_sends_only_its_own_order_to_review(
    api: Api,
    ctx: AppContext,
    settings: Settings,
    make_user: MakeUser,
    healthy: tuple[str, int],
    bad: tuple[ScriptedProvider, int],
    answer: str,
) -> None:
    (healthy_url, healthy_service), (provider, bad_service) = healthy, bad
    provider.add_answer = (200, answer)
    user = await make_user(balance="10")
    good = [await place(api, user.key, healthy_service, n) for n in range(2)]
    garbled = await place(api, user.key, bad_service, 2)
    good += [await place(api, user.key, healthy_service, n) for n in range(3, 6)]
    await run_jobs(settings, ctx)

    orders = await orders_by_id(ctx)
    # The healthy provider's orders are sent with their ids and what it bills for them.
    assert {(orders[i].upstream_state, orders[i].status) for i in good} == {("sent", "In progress")}
    assert sorted(orders[i].provider_order_id or "" for i in good) == ["1", "2", "3", "4", "5"]
    assert {orders[i].provider_charge for i in good} == {Decimal("0.04")}
    # The garbled answer is an unknown outcome for its own order: review, nothing stored.
    bad_order = orders[garbled]
    assert (bad_order.upstream_state, bad_order.status, bad_order.provider_order_id) == (
        "review",
        "Pending",
        None,
    )
    assert bad_order.last_error is not None
    assert bad_order.last_error.startswith("add: unreadable order id ")
    assert bad_order.last_error.isprintable()
    assert await events(ctx, garbled) == [("add", "attempt"), ("add", "ProviderUnknownOutcome")]
    # Never resent blindly, never refunded.
    await call_job(settings, ctx, "sweep")
    await run_jobs(settings, ctx)
    assert len(provider.adds) == 1
    assert (await sandbox_stats(healthy_url))["add_calls"] == {"1": 5}
    assert await refunds(ctx) == {}
    assert await api(user.key, "balance") == {"balance": "9.46000", "currency": "USD"}
    await ledger_ok(ctx)


async def test_answers_recorded_together_each_touch_only_their_own_order(
    api: Api,
    ctx: AppContext,
    settings: Settings,
    make_user: MakeUser,
    healthy: tuple[str, int],
    bad: tuple[ScriptedProvider, int],
) -> None:
    """The relay's record step with one batch holding a healthy provider's answers and a
    garbled one (through the public steps: claim, send, record)."""
    (_, healthy_service), (provider, bad_service) = healthy, bad
    provider.add_answer = (200, MALFORMED_IDS["65 characters"])
    user = await make_user(balance="10")
    ids = [await place(api, user.key, healthy_service, n) for n in range(3)]
    garbled = await place(api, user.key, bad_service, 3)
    ids.append(await place(api, user.key, healthy_service, 4))
    claims = sorted(await relay.claim_due(ctx.db, 10), key=lambda c: c.id)
    assert [c.id for c in claims] == sorted([*ids, garbled])
    http = build_http_client(allow_private=True)
    try:
        answers = [
            (claim, await relay.send(claim, client_for(claim.provider, settings.secret_key, http)))
            for claim in claims
        ]
    finally:
        await http.aclose()
    outcomes = {o.order_id: o.outcome for o in await relay.record(ctx.db, settings, answers)}
    assert outcomes == {**{i: "sent" for i in ids}, garbled: "review"}
    orders = await orders_by_id(ctx)
    assert [orders[i].provider_order_id for i in ids] == ["1", "2", "3", "4"]
    assert (orders[garbled].upstream_state, orders[garbled].provider_order_id) == ("review", None)
    await ledger_ok(ctx)


async def test_record_never_stores_an_answer_that_is_not_an_order_id(
    api: Api,
    ctx: AppContext,
    settings: Settings,
    make_user: MakeUser,
    bad: tuple[ScriptedProvider, int],
) -> None:
    """The record step checks again what it is given (the client already refuses such
    answers): a value that is not an order id goes to review on its own."""
    provider, service_id = bad
    user = await make_user(balance="10")
    ids = [await place(api, user.key, service_id, n) for n in range(4)]
    claims = sorted(await relay.claim_due(ctx.db, 10), key=lambda c: c.id)
    raw: list[relay.Answer] = ["101", "x" * 65, "5\x00", "102"]
    outcomes = await relay.record(ctx.db, settings, list(zip(claims, raw, strict=True)))
    assert {o.order_id: o.outcome for o in outcomes} == {
        ids[0]: "sent",
        ids[1]: "review",
        ids[2]: "review",
        ids[3]: "sent",
    }
    orders = await orders_by_id(ctx)
    assert [(orders[i].upstream_state, orders[i].provider_order_id) for i in ids] == [
        ("sent", "101"),
        ("review", None),
        ("review", None),
        ("sent", "102"),
    ]
    assert all((orders[i].last_error or "").isprintable() for i in ids)
    assert provider.adds == []  # nothing was sent: the answers were given
    await ledger_ok(ctx)


# -- An order named with an error ------------------------------------------------------


@pytest.mark.parametrize(
    ("status_code", "body"), ORDER_AND_ERROR.values(), ids=ORDER_AND_ERROR.keys()
)
async def test_an_order_named_with_an_error_is_never_refunded_nor_sent_again(
    api: Api,
    ctx: AppContext,
    settings: Settings,
    make_user: MakeUser,
    bad: tuple[ScriptedProvider, int],
    status_code: int,
    body: str,
) -> None:
    provider, service_id = bad
    provider.add_answer = (status_code, body)
    user = await make_user(balance="10")
    order_id = await place(api, user.key, service_id, 0)
    await run_jobs(settings, ctx)
    order = (await orders_by_id(ctx))[order_id]
    assert (order.upstream_state, order.status, order.provider_order_id) == (
        "review",
        "Pending",
        None,
    )
    assert (order.last_error or "").startswith("add: answer names order ")
    assert await events(ctx, order_id) == [("add", "attempt"), ("add", "ProviderUnknownOutcome")]
    await call_job(settings, ctx, "sweep")
    await run_jobs(settings, ctx)
    assert len(provider.adds) == 1  # the provider received it once
    assert await refunds(ctx) == {}
    assert await api(user.key, "balance") == {"balance": "9.91000", "currency": "USD"}
    await ledger_ok(ctx)


@pytest.mark.parametrize(
    "answer",
    [(200, MALFORMED_IDS["an object"]), ORDER_AND_ERROR["HTTP 400 naming an order"]],
    ids=["a malformed id", "HTTP 400 naming an order"],
)
async def test_a_provider_taking_request_ids_gets_the_order_again_with_its_request_id(
    api: Api,
    ctx: AppContext,
    settings: Settings,
    make_user: MakeUser,
    bad_with_request_ids: tuple[ScriptedProvider, int],
    answer: tuple[int, str],
) -> None:
    provider, service_id = bad_with_request_ids
    provider.add_answer = answer
    user = await make_user(balance="10")
    order_id = await place(api, user.key, service_id, 0)
    await run_jobs(settings, ctx)
    order = (await orders_by_id(ctx))[order_id]
    # Unknown: queued again with its request id, due after the backoff; not in review.
    assert (order.upstream_state, order.status, order.provider_order_id) == (
        "queued",
        "Pending",
        None,
    )
    assert len(provider.adds) == 1
    # The provider answers properly now: the same request id places it once.
    provider.add_answer = None
    await due_now(ctx, order_id)
    assert await call_job(settings, ctx, "relay_due_orders") == {"sent": 1}
    order = (await orders_by_id(ctx))[order_id]
    assert (order.upstream_state, order.provider_order_id) == ("sent", "1")
    request_ids = {sent["request_id"] for sent in provider.adds}
    assert len(provider.adds) == 2 and request_ids == {order.upstream_request_id}
    assert await refunds(ctx) == {}
    await ledger_ok(ctx)


# -- One upstream id, two orders -------------------------------------------------------


@pytest.mark.parametrize("request_ids", [False, True], ids=["standard", "request ids"])
async def test_an_upstream_id_given_twice_holds_the_second_order_for_the_operator(
    api: Api,
    client: httpx.AsyncClient,
    ctx: AppContext,
    settings: Settings,
    make_user: MakeUser,
    make_service: MakeService,
    request_ids: bool,
) -> None:
    async with scripted_provider(ctx, settings, request_ids=request_ids) as provider:
        service_id = await scripted_service(make_service, provider)
        provider.add_answer = (200, '{"order": 777}')
        user = await make_user(balance="10")
        first = await place(api, user.key, service_id, 0)
        await run_jobs(settings, ctx)
        before = anomalies_counted(provider.provider_id, "duplicate_order_id")
        second = await place(api, user.key, service_id, 1)
        await run_jobs(settings, ctx)

        orders = await orders_by_id(ctx)
        assert (orders[first].upstream_state, orders[first].provider_order_id) == ("sent", "777")
        held = orders[second]
        assert (held.upstream_state, held.status, held.provider_order_id) == (
            "review",
            "Pending",
            None,
        )
        assert held.anomaly == [{"kind": "duplicate_order_id", "field": "order", "value": "777"}]
        assert held.anomaly_at is not None
        assert held.last_error == f"provider order id 777 already belongs to order {first}"
        assert await events(ctx, second) == [("add", "attempt"), ("add", "anomaly")]
        assert anomalies_counted(provider.provider_id, "duplicate_order_id") == before + 1
        assert await order_alerts(client, second) == [("order_anomaly", True)]
        assert await order_alerts(client, first) == []
        flagged = (await client.get("/admin/v1/orders?anomaly=true", headers=AUTH)).json()
        assert [o["id"] for o in flagged] == [second]

        # The provider's report on 777 is the first order's only.
        provider.statuses["777"] = '{"status": "Partial", "remains": "40"}'
        http = build_http_client(allow_private=True)
        try:
            await sync.sync_all(ctx.db, http, settings)
        finally:
            await http.aclose()
        assert await refunds(ctx) == {first: Decimal("0.036")}

        # The operator cannot bind it to the same upstream order either.
        refused = await client.post(
            f"/admin/v1/review/{second}/mark-sent", headers=AUTH, json={"provider_order_id": "777"}
        )
        assert refused.status_code == 409, refused.text
        assert f"already belongs to order {first}" in refused.text
        # Sweeps never send it again, request id or not: the operator decides.
        await call_job(settings, ctx, "sweep")
        await run_jobs(settings, ctx)
        assert len(provider.adds) == 2
        assert (await orders_by_id(ctx))[second].upstream_state == "review"
        # The operator finds its real id upstream.
        marked = await client.post(
            f"/admin/v1/review/{second}/mark-sent", headers=AUTH, json={"provider_order_id": "778"}
        )
        assert marked.status_code == 200, marked.text
    assert await api(user.key, "balance") == {"balance": "9.85600", "currency": "USD"}
    await ledger_ok(ctx)


async def test_one_upstream_id_answered_twice_in_one_batch_binds_the_first_order_only(
    api: Api,
    ctx: AppContext,
    settings: Settings,
    make_user: MakeUser,
    healthy: tuple[str, int],
    bad: tuple[ScriptedProvider, int],
) -> None:
    (_, healthy_service), (provider, bad_service) = healthy, bad
    provider.add_answer = (200, '{"order": "A-1"}')
    user = await make_user(balance="10")
    good = await place(api, user.key, healthy_service, 0)
    first = await place(api, user.key, bad_service, 1)
    second = await place(api, user.key, bad_service, 2)
    claims = await relay.claim_due(ctx.db, 10)
    http = build_http_client(allow_private=True)
    try:
        answers = [
            (claim, await relay.send(claim, client_for(claim.provider, settings.secret_key, http)))
            for claim in sorted(claims, key=lambda c: -c.id)  # arrival order: newest first
        ]
    finally:
        await http.aclose()
    outcomes = {o.order_id: o.outcome for o in await relay.record(ctx.db, settings, answers)}
    assert outcomes == {good: "sent", first: "sent", second: "review"}
    orders = await orders_by_id(ctx)
    assert [orders[i].provider_order_id for i in (good, first, second)] == ["1", "A-1", None]
    assert orders[second].anomaly == [
        {"kind": "duplicate_order_id", "field": "order", "value": "A-1"}
    ]
    await ledger_ok(ctx)


async def lock_waits(ctx: AppContext) -> int:
    async with ctx.db.session() as session:
        waiting = await session.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        )
    return int(waiting or 0)


async def test_an_id_bound_meanwhile_elsewhere_holds_only_the_order_that_lost_it(
    api: Api,
    ctx: AppContext,
    settings: Settings,
    make_user: MakeUser,
    bad: tuple[ScriptedProvider, int],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Two records bind one upstream id at once: the unique index makes the later one
    wait, then refuses its batch; it records order by order, binds the others and holds
    the one that lost the id."""
    _, service_id = bad
    user = await make_user(balance="10")
    ids = [await place(api, user.key, service_id, n) for n in range(3)]
    first, *claims = sorted(await relay.claim_due(ctx.db, 10), key=lambda c: c.id)
    async with ctx.db.session() as elsewhere:
        await elsewhere.execute(SENT_SQL, sent_params([(first.id, "900")], {}))
        recording = asyncio.create_task(
            relay.record(ctx.db, settings, [(claims[0], "900"), (claims[1], "901")])
        )
        for _ in range(200):
            if await lock_waits(ctx) or recording.done():
                break
            await asyncio.sleep(0.05)
        assert not recording.done()  # waiting on the unique index
        with caplog.at_level("WARNING", logger="app.flows.relay"):
            await elsewhere.commit()
            outcomes = {o.order_id: o.outcome for o in await recording}
    (fallback,) = [r for r in caplog.records if "one by one" in r.getMessage()]
    assert "uq_orders_provider_order_id" in fallback.getMessage()
    assert outcomes == {ids[1]: "review", ids[2]: "sent"}
    orders = await orders_by_id(ctx)
    assert [(orders[i].upstream_state, orders[i].provider_order_id) for i in ids] == [
        ("sent", "900"),
        ("review", None),
        ("sent", "901"),
    ]
    assert orders[ids[1]].anomaly == [
        {"kind": "duplicate_order_id", "field": "order", "value": "900"}
    ]
    await ledger_ok(ctx)


# -- A Partial report without remains --------------------------------------------------

PARTIAL_WITHOUT_REMAINS = {
    "missing": ('{"status": "Partial"}', "(missing)"),
    "null": ('{"status": "Partial", "remains": null}', "null"),
    "Unknown": ('{"status": "Partial", "remains": "Unknown"}', "Unknown"),
    "empty": ('{"status": "Partial", "remains": ""}', ""),
}


async def sync_now(ctx: AppContext, settings: Settings) -> sync.SyncResult:
    http = build_http_client(allow_private=True)
    try:
        return await sync.sync_all(ctx.db, http, settings)
    finally:
        await http.aclose()


def wire_status(status: str, remains: str, start_count: str = "500") -> dict[str, Any]:
    return {
        "charge": "0.09000",
        "start_count": start_count,
        "status": status,
        "remains": remains,
        "currency": "USD",
    }


@pytest.mark.parametrize(
    ("report", "shown"), PARTIAL_WITHOUT_REMAINS.values(), ids=PARTIAL_WITHOUT_REMAINS.keys()
)
async def test_a_partial_report_without_remains_flags_the_order_and_waits_for_a_good_one(
    api: Api,
    client: httpx.AsyncClient,
    ctx: AppContext,
    settings: Settings,
    make_user: MakeUser,
    bad: tuple[ScriptedProvider, int],
    report: str,
    shown: str,
) -> None:
    provider, service_id = bad
    user = await make_user(balance="10")
    order_id = await place(api, user.key, service_id, 0)
    await run_jobs(settings, ctx)
    provider.statuses["1"] = '{"status": "In progress", "start_count": "500", "remains": "40"}'
    await sync_now(ctx, settings)
    assert await api(user.key, "status", order=order_id) == wire_status("In progress", "40")

    before = anomalies_counted(provider.provider_id, "unreadable_remains")
    provider.statuses["1"] = report
    result = await sync_now(ctx, settings)
    assert (result.changed, result.anomalies) == (0, 1)
    order = (await orders_by_id(ctx))[order_id]
    # Not final, not refunded: the customer still sees what was delivered, 60 of 100.
    assert (order.status, order.remains, order.refunded) == ("In progress", 40, Decimal(0))
    assert order.anomaly == [{"kind": "unreadable_remains", "field": "remains", "value": shown}]
    assert await api(user.key, "status", order=order_id) == wire_status("In progress", "40")
    assert anomalies_counted(provider.provider_id, "unreadable_remains") == before + 1
    assert await order_alerts(client, order_id) == [("order_anomaly", True)]
    assert await refunds(ctx) == {}
    # The same report again: nothing new.
    await sync_now(ctx, settings)
    assert anomalies_counted(provider.provider_id, "unreadable_remains") == before + 1
    assert [e for e in await events(ctx, order_id) if e[1] == "anomaly"] == [("status", "anomaly")]

    # A readable report later ends it, refunded exactly once.
    provider.statuses["1"] = '{"status": "Partial", "remains": "30"}'
    result = await sync_now(ctx, settings)
    assert (result.changed, result.anomalies) == (1, 0)
    assert await api(user.key, "status", order=order_id) == wire_status("Partial", "30")
    assert await refunds(ctx) == {order_id: Decimal("0.027")}
    await sync_now(ctx, settings)
    assert await refunds(ctx) == {order_id: Decimal("0.027")}
    # Looked at: the operator clears the flag, and its alert closes with it.
    cleared = await client.post(f"/admin/v1/orders/{order_id}/anomaly/clear", headers=AUTH)
    assert cleared.status_code == 200
    assert await order_alerts(client, order_id) == [("order_anomaly", False)]
    assert await api(user.key, "balance") == {"balance": "9.93700", "currency": "USD"}
    await ledger_ok(ctx)


async def test_a_first_report_that_is_partial_without_remains_refunds_nothing_yet(
    api: Api,
    ctx: AppContext,
    settings: Settings,
    make_user: MakeUser,
    bad: tuple[ScriptedProvider, int],
) -> None:
    """Nothing reported before: the order shows nothing delivered, which is all it knows,
    and is neither closed nor refunded 0."""
    provider, service_id = bad
    user = await make_user(balance="10")
    order_id = await place(api, user.key, service_id, 0)
    await run_jobs(settings, ctx)
    provider.statuses["1"] = '{"status": "Partial", "remains": "Unknown", "start_count": "9"}'
    await sync_now(ctx, settings)
    shown = await api(user.key, "status", order=order_id)
    assert (shown["status"], shown["remains"]) == ("In progress", "100")
    assert await refunds(ctx) == {}
    provider.statuses["1"] = '{"status": "Canceled"}'
    await sync_now(ctx, settings)
    assert (await api(user.key, "status", order=order_id))["status"] == "Canceled"
    assert await refunds(ctx) == {order_id: CHARGE}
    await ledger_ok(ctx)


# -- The demo's sandbox after a restart ------------------------------------------------


async def test_a_restarted_demo_sandbox_gives_no_upstream_id_twice(
    api: Api,
    ctx: AppContext,
    settings: Settings,
    make_user: MakeUser,
    bad: tuple[ScriptedProvider, int],
) -> None:
    """`smm-panel run` keeps its database but its sandbox forgets: it starts its ids past
    those it gave, so new orders are not held as duplicates of old ones."""
    provider, service_id = bad
    user = await make_user(balance="10")
    for n in range(3):
        await place(api, user.key, service_id, n)
    await run_jobs(settings, ctx)  # upstream ids 1, 2, 3
    async with ctx.db.transaction() as session:
        await session.execute(
            update(Order).where(Order.provider_order_id == "2").values(provider_order_id="ab-7")
        )
        assert await runner.next_sandbox_order_id(session, provider.provider_id) == 4
    config = SandboxConfig(
        services=[SandboxService(1, "Followers", rate=Decimal("0.40"), min=10, max=100_000)],
        first_order_id=4,
    )
    async with sandbox(config) as (url, _), httpx.AsyncClient() as http:
        client = ProviderClient(f"{url}/api/v2", "sandbox-key", http)
        assert await client.add({"service": "1", "link": "https://x.y/", "quantity": "100"}) == "4"
