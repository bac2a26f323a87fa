"""Signed status webhooks (SPEC §4): set by API v2 or /client/v1, events written with
every status change whatever statement made it, delivered signed (verified here with
the `standardwebhooks` package), retried after failures, in status order per order,
logged, and disabled with a mail after persistent failure."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from sqlalchemy import select, text, update
from standardwebhooks import Webhook

from app.context import AppContext
from app.db import utcnow
from app.mail.models import OutgoingMail
from app.orders.service import StatusReport, apply_status
from app.settings import Settings
from app.webhooks.models import WebhookEndpoint, WebhookEvent
from tests.support.api import Api, MakeService, MakeUser, order_id_of
from tests.support.client import MakeCustomer
from tests.support.env import AUTH
from tests.support.upstream import call_job, serve_app

LINK = "https://instagram.com/hooked"
PRIVATE = {"error": "Webhook URL must not point to a private or loopback address"}


@dataclass
class Receiver:
    url: str
    fail_first: int = 0  # answer 500 to this many requests first
    received: list[tuple[dict[str, str], bytes, int]] = field(default_factory=list)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    app = FastAPI()
    box = Receiver("")

    async def hook(request: Request) -> Response:
        body = await request.body()
        code = 500 if len(box.received) < box.fail_first else 204
        box.received.append((dict(request.headers), body, code))
        return Response(status_code=code)

    app.add_api_route("/hook", hook, methods=["POST"])
    async with serve_app(app) as url:
        box.url = f"{url}/hook"
        yield box


@pytest.fixture
def allow_private(ctx: AppContext, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The panel and its worker allow loopback targets (the receiver is on 127.0.0.1)."""
    monkeypatch.setattr(ctx.settings, "webhook_allow_private", True)
    return ctx.settings.model_copy(
        update={"webhook_allow_private": True, "webhook_retry_base_seconds": 0}
    )


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.1/hook",
        "http://169.254.169.254/latest",
        "http://[::1]/hook",
        "http://0.0.0.0/hook",
        "http://localhost/hook",
        "http://100.64.0.1/hook",  # shared address space (a cloud metadata address lives there)
        "http://100.100.100.200/latest",
        "http://[2002:7f00:1::]/hook",  # 6to4 form of 127.0.0.1
        "http://[::ffff:127.0.0.1]/hook",
        "http://[64:ff9b::a9fe:a9fe]/latest",  # NAT64 form of 169.254.169.254
        "http://224.0.0.1/hook",
    ],
)
async def test_private_and_loopback_targets_are_refused(
    api: Api, make_user: MakeUser, url: str
) -> None:
    user = await make_user()
    assert await api(user.key, "webhook", url=url) == PRIVATE


@pytest.mark.parametrize("url", ["ftp://example.com/x", "example.com", "http://", "http://a:x/"])
async def test_malformed_targets_are_refused(api: Api, make_user: MakeUser, url: str) -> None:
    user = await make_user()
    assert await api(user.key, "webhook", url=url) == {"error": "Incorrect webhook URL"}


async def _events(ctx: AppContext, user_id: int) -> list[WebhookEvent]:
    async with ctx.db.session() as session:
        return list(
            await session.scalars(
                select(WebhookEvent)
                .where(WebhookEvent.user_id == user_id)
                .order_by(WebhookEvent.id)
            )
        )


async def test_events_are_signed_retried_and_in_status_order(
    ctx: AppContext,
    api: Api,
    make_user: MakeUser,
    make_service: MakeService,
    receiver: Receiver,
    allow_private: Settings,
) -> None:
    user = await make_user(balance="10")
    sid = await make_service()
    answer = await api(user.key, "webhook", url=receiver.url)
    assert answer["webhook"] == receiver.url and answer["secret"].startswith("whsec_")
    secret = answer["secret"]
    first = order_id_of(
        await api(user.key, "add", service=sid, link=LINK, quantity=100, request_id="hook-1")
    )
    second = order_id_of(await api(user.key, "add", service=sid, link=LINK + "2", quantity=100))
    for order_id, report in [
        (first, StatusReport("In progress", 5, 100)),
        (second, StatusReport("Completed", 5, 0)),
        (first, StatusReport("Partial", 5, 40)),
    ]:
        async with ctx.db.transaction() as session:
            await apply_status(session, order_id, report, source="test")
    receiver.fail_first = 2
    await call_job(allow_private, ctx, "deliver_webhooks")  # 500 to both orders' first
    await call_job(allow_private, ctx, "deliver_webhooks")  # then all, in order
    seen = []
    for headers, body, code in receiver.received:
        payload = Webhook(secret).verify(body, headers)
        seen.append((headers["webhook-id"], payload["order"], payload["status"], code))
    events = await _events(ctx, user.user_id)
    ids = [f"msg_{e.id}" for e in events]
    assert seen[:2] == [(ids[0], first, "In progress", 500), (ids[1], second, "Completed", 500)]
    # Order by order: the first order's Partial only after its In progress.
    delivered = [(s[1], s[2]) for s in seen if s[3] == 204]
    assert [d for d in delivered if d[0] == first] == [(first, "In progress"), (first, "Partial")]
    assert [d for d in delivered if d[0] == second] == [(second, "Completed")]
    assert len(delivered) == 3
    assert all(e.delivered_at is not None for e in events)
    partial = Webhook(secret).verify(receiver.received[-1][1], receiver.received[-1][0])
    assert partial == {
        "type": "order.status",
        "order": first,
        "request_id": "hook-1",
        "status": "Partial",
        "start_count": "5",
        "remains": "40",
        "charge": "0.09000",
        "currency": "USD",
        "at": partial["at"],
    }
    assert [e.attempts for e in events] == [2, 2, 1]
    # Each retry carried the same webhook id.
    assert [s[0] for s in seen] == [ids[0], ids[1], ids[0], ids[1], ids[2]]


async def test_bulk_sql_status_changes_write_events_too(
    ctx: AppContext,
    api: Api,
    make_user: MakeUser,
    make_service: MakeService,
    receiver: Receiver,
    allow_private: Settings,
) -> None:
    user = await make_user(balance="10")
    sid = await make_service()
    await api(user.key, "webhook", url=receiver.url)
    order_id = order_id_of(await api(user.key, "add", service=sid, link=LINK, quantity=100))
    async with ctx.db.transaction() as session:
        await session.execute(
            text("UPDATE orders SET status = 'Processing' WHERE id = :id"), {"id": order_id}
        )
        await session.execute(
            text("UPDATE orders SET remains = 3 WHERE id = :id"), {"id": order_id}
        )
    assert [e.payload["status"] for e in await _events(ctx, user.user_id)] == ["Processing"]
    # A user without a webhook gets no events.
    other = await make_user(balance="10")
    other_order = order_id_of(await api(other.key, "add", service=sid, link=LINK, quantity=100))
    async with ctx.db.transaction() as session:
        await apply_status(session, other_order, StatusReport("Completed", 1, 0), source="test")
    assert await _events(ctx, other.user_id) == []


async def test_persistent_failure_disables_the_webhook_and_mails_the_user(
    ctx: AppContext,
    api: Api,
    client: httpx.AsyncClient,
    make_customer: MakeCustomer,
    make_service: MakeService,
    receiver: Receiver,
    allow_private: Settings,
) -> None:
    who = await make_customer(balance="10")
    sid = await make_service()
    put = await client.put("/client/v1/webhook", headers=who.auth, json={"url": receiver.url})
    assert put.status_code == 200 and put.json()["secret"].startswith("whsec_")
    order_id = order_id_of(await api(who.key, "add", service=sid, link=LINK, quantity=100))
    async with ctx.db.transaction() as session:
        await apply_status(session, order_id, StatusReport("Completed", 1, 0), source="test")
    receiver.fail_first = 1000
    await call_job(allow_private, ctx, "deliver_webhooks")
    async with ctx.db.transaction() as session:
        await session.execute(
            update(WebhookEvent)
            .where(WebhookEvent.user_id == who.user_id)
            .values(created_at=utcnow() - timedelta(hours=73))
        )
    await call_job(allow_private, ctx, "deliver_webhooks")
    shown = (await client.get("/client/v1/webhook", headers=who.auth)).json()
    assert shown["enabled"] is False and shown["webhook"] == receiver.url
    log = (await client.get("/client/v1/webhook/deliveries", headers=who.auth)).json()
    assert [(d["attempts"], d["last_status"]) for d in log] == [(2, 500)]
    assert log[0]["failed_at"] is not None and log[0]["delivered_at"] is None
    admin = await client.get(
        "/admin/v1/webhooks/deliveries", headers=AUTH, params={"user_id": who.user_id}
    )
    assert [d["id"] for d in admin.json()] == [d["id"] for d in log]
    async with ctx.db.session() as session:
        mails = list(
            await session.scalars(
                select(OutgoingMail.subject).where(OutgoingMail.recipient == who.email)
            )
        )
    assert "Your status webhook was disabled" in mails
    # Removing it answers an empty webhook; setting it again enables it with a new secret.
    removed = await client.put("/client/v1/webhook", headers=who.auth, json={"url": ""})
    assert removed.json() == {"webhook": "", "secret": None}
    async with ctx.db.session() as session:
        assert await session.get(WebhookEndpoint, who.user_id) is None


async def test_the_secret_is_stored_encrypted(
    ctx: AppContext, api: Api, make_user: MakeUser, allow_private: Settings, receiver: Receiver
) -> None:
    user = await make_user()
    answer: dict[str, Any] = await api(user.key, "webhook", url=receiver.url)
    async with ctx.db.session() as session:
        stored = await session.get(WebhookEndpoint, user.user_id)
    assert stored is not None and answer["secret"] not in stored.secret_encrypted
    assert await api(user.key, "webhook", url="") == {"webhook": ""}
