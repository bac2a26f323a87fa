"""Status webhooks (SPEC §4): a user's endpoint, and delivering the outbox.

Delivery is at least once and in order per order: an event is tried only when no earlier
event of the same order is still undelivered, so a retried event holds back the later
ones of its order (never those of other orders). Each attempt is claimed (its next
attempt moved past a lease) and committed before the POST, so two workers never send it
at once; the outcome is recorded after. A failed attempt is retried with exponential
backoff (`webhook_retry_base_seconds`, doubling, at most an hour apart); an event still
undelivered after `webhook_give_up_hours` is given up, its endpoint disabled and the user
told by mail. Requests are signed per Standard Webhooks (`webhook-id`,
`webhook-timestamp`, `webhook-signature`), the id stable across retries. Events go out
through `delivery_client`, guarded by app/netguard.py: only to globally routable
addresses (unless WEBHOOK_ALLOW_PRIVATE), connecting to the address that was checked.
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import and_, exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from standardwebhooks import Webhook

from app import keyring, netguard
from app.accounts.models import User
from app.db import Database, utcnow
from app.errors import DomainError
from app.mail import service as mail
from app.settings import Settings
from app.webhooks.models import WebhookEndpoint, WebhookEvent

log = logging.getLogger(__name__)

PURPOSE = "webhook-secrets"
LEASE = timedelta(minutes=5)  # a claimed attempt never recorded is tried again after this
MAX_BACKOFF = timedelta(hours=1)
BATCH = 100
TIMEOUT = 10.0


class WebhookUrlRefused(DomainError):
    http_status = 422
    message = "Incorrect webhook URL"


class WebhookUrlPrivate(WebhookUrlRefused):
    http_status = 422
    message = "Webhook URL must not point to a private or loopback address"


# --- the endpoint -------------------------------------------------------------------------


def policy(settings: Settings) -> netguard.AddressPolicy:
    return netguard.AddressPolicy(allow_private=settings.webhook_allow_private)


async def check_url(url: str, settings: Settings) -> str:
    """The URL, if a webhook may target it: http(s) with a host; unless private targets are
    allowed, every address the host resolves to must be globally routable (app/netguard.py;
    checked again before each delivery, and where the delivery connects)."""
    try:
        return await netguard.check_url(url, policy(settings))
    except netguard.UrlRefused as exc:
        raise WebhookUrlRefused() from exc
    except netguard.AddressRefused as exc:
        if not exc.address:  # the name resolves to nothing
            raise WebhookUrlRefused() from exc
        raise WebhookUrlPrivate() from exc


def delivery_client(settings: Settings) -> httpx.AsyncClient:
    """The client that posts events: guarded (app/netguard.py), no redirects."""
    return netguard.GuardedClient(
        policy(settings),
        timeout=httpx.Timeout(TIMEOUT),
        limits=httpx.Limits(max_connections=20, max_keepalive_connections=20),
        headers={"User-Agent": "smm-panel webhooks"},
    )


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


@dataclass(frozen=True)
class EndpointSet:
    url: str
    secret: str | None  # shown once; None when the endpoint was removed


async def _give_up_pending(session: AsyncSession, user_id: int, why: str) -> None:
    """The user's events neither delivered nor given up yet are given up (`why`)."""
    await session.execute(
        update(WebhookEvent)
        .where(
            WebhookEvent.user_id == user_id,
            WebhookEvent.delivered_at.is_(None),
            WebhookEvent.failed_at.is_(None),
        )
        .values(failed_at=utcnow(), last_error=why)
    )


async def set_endpoint(
    session: AsyncSession, settings: Settings, user_id: int, url: str
) -> EndpointSet:
    """Set the user's webhook (a new signing secret each time), or remove it (empty URL).
    Events not yet delivered to a removed endpoint are given up."""
    if not url.strip():
        await _give_up_pending(session, user_id, "webhook removed")
        endpoint = await session.get(WebhookEndpoint, user_id)
        if endpoint is not None:
            await session.delete(endpoint)
        return EndpointSet("", None)
    checked = await check_url(url, settings)
    secret = new_secret()
    endpoint = await session.get(WebhookEndpoint, user_id, with_for_update=True)
    if endpoint is None:
        endpoint = WebhookEndpoint(user_id=user_id)
        session.add(endpoint)
    endpoint.url = checked
    endpoint.secret_encrypted = keyring.encrypt(settings.secret_key, PURPOSE, secret)
    endpoint.enabled = True
    endpoint.disabled_at = None
    endpoint.disabled_reason = None
    await session.flush()
    return EndpointSet(checked, secret)


async def get_endpoint(session: AsyncSession, user_id: int) -> WebhookEndpoint | None:
    return await session.get(WebhookEndpoint, user_id)


async def deliveries(
    session: AsyncSession, *, user_id: int | None, limit: int, offset: int = 0
) -> list[WebhookEvent]:
    """The delivery log, newest first (a user's, or everyone's)."""
    query = select(WebhookEvent).order_by(WebhookEvent.id.desc()).limit(limit).offset(offset)
    if user_id is not None:
        query = query.where(WebhookEvent.user_id == user_id)
    return list(await session.scalars(query))


# --- delivery -----------------------------------------------------------------------------


def backoff(settings: Settings, attempts: int) -> timedelta:
    seconds = settings.webhook_retry_base_seconds * (2 ** max(0, attempts - 1))
    return min(timedelta(seconds=seconds), MAX_BACKOFF)


@dataclass(frozen=True)
class Attempt:
    event_id: int
    user_id: int
    url: str
    secret_encrypted: str
    body: str


def body_of(payload: dict[str, Any]) -> str:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


def signed_headers(secret: str, event_id: int, body: str) -> dict[str, str]:
    msg_id = f"msg_{event_id}"
    now = utcnow()
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, now, body),
    }


async def _claim(db: Database, limit: int) -> list[Attempt]:
    """Due events, each the oldest undelivered one of its order, whose endpoint is
    enabled; their next attempt moved past the lease, committed before any POST."""
    now = utcnow()
    earlier = aliased(WebhookEvent)
    due = (
        select(WebhookEvent.id)
        .join(WebhookEndpoint, WebhookEndpoint.user_id == WebhookEvent.user_id)
        .where(
            WebhookEvent.delivered_at.is_(None),
            WebhookEvent.failed_at.is_(None),
            WebhookEvent.next_attempt_at <= now,
            WebhookEndpoint.enabled,
            ~exists().where(
                and_(
                    earlier.order_id == WebhookEvent.order_id,
                    earlier.id < WebhookEvent.id,
                    earlier.delivered_at.is_(None),
                    earlier.failed_at.is_(None),
                )
            ),
        )
        .order_by(WebhookEvent.id)
        .limit(limit)
        .with_for_update(of=WebhookEvent, skip_locked=True)
    )
    async with db.transaction() as session:
        ids = list(await session.scalars(due))
        if not ids:
            return []
        rows = (
            await session.execute(
                update(WebhookEvent)
                .where(WebhookEvent.id.in_(ids))
                .values(next_attempt_at=now + LEASE)
                .returning(
                    WebhookEvent.id,
                    WebhookEvent.user_id,
                    WebhookEvent.payload,
                )
            )
        ).all()
        endpoints = {
            e.user_id: e
            for e in await session.scalars(
                select(WebhookEndpoint).where(
                    WebhookEndpoint.user_id.in_({r.user_id for r in rows})
                )
            )
        }
    return sorted(
        (
            Attempt(
                r.id,
                r.user_id,
                endpoints[r.user_id].url,
                endpoints[r.user_id].secret_encrypted,
                body_of(r.payload),
            )
            for r in rows
        ),
        key=lambda a: a.event_id,
    )


async def _post(
    http: httpx.AsyncClient, settings: Settings, attempt: Attempt
) -> tuple[int | None, str | None]:
    """(HTTP status, error) of one signed POST."""
    try:
        await check_url(attempt.url, settings)
        secret = keyring.decrypt(settings.secret_key, PURPOSE, attempt.secret_encrypted)
        response = await http.post(
            attempt.url,
            content=attempt.body.encode(),
            headers=signed_headers(secret, attempt.event_id, attempt.body),
            timeout=TIMEOUT,
            follow_redirects=False,
        )
    except DomainError as exc:
        return None, exc.message
    except (httpx.HTTPError, OSError) as exc:
        if netguard.refused(exc) is not None:  # the name changed since the check above
            return None, WebhookUrlPrivate.message
        return None, f"{type(exc).__name__}"
    if 200 <= response.status_code < 300:
        return response.status_code, None
    return response.status_code, f"HTTP {response.status_code}"


async def _record(
    db: Database,
    settings: Settings,
    mailer: mail.Mailer,
    attempt: Attempt,
    status: int | None,
    error: str | None,
) -> bool:
    now = utcnow()
    async with db.transaction() as session:
        event = await session.get(WebhookEvent, attempt.event_id, with_for_update=True)
        if event is None or event.delivered_at is not None or event.failed_at is not None:
            return False
        event.attempts += 1
        event.last_status = status
        event.last_error = error
        if error is None:
            event.delivered_at = now
            return True
        if now - event.created_at >= timedelta(hours=settings.webhook_give_up_hours):
            event.failed_at = now
            await _disable(session, mailer, event.user_id, f"undelivered since {event.created_at}")
            return False
        event.next_attempt_at = now + backoff(settings, event.attempts)
    return False


async def _disable(session: AsyncSession, mailer: mail.Mailer, user_id: int, why: str) -> None:
    """Persistent failure: the endpoint stops receiving (its pending events are given up)
    and the user is told by mail."""
    endpoint = await session.get(WebhookEndpoint, user_id, with_for_update=True)
    if endpoint is None or not endpoint.enabled:
        return
    endpoint.enabled = False
    endpoint.disabled_at = utcnow()
    endpoint.disabled_reason = why[:500]
    await _give_up_pending(session, user_id, "webhook disabled")
    email = await session.scalar(select(User.email).where(User.id == user_id))
    if email:
        await mail.queue(
            session,
            mailer,
            mail.Mail(
                to=email,
                subject="Your status webhook was disabled",
                body=(
                    f"We could not deliver status events to {endpoint.url} for "
                    f"{why}. The webhook is disabled; set it again to resume."
                ),
            ),
        )


@dataclass
class DeliveryRun:
    delivered: int = 0
    failed: int = 0


async def deliver_due(
    db: Database, http: httpx.AsyncClient, settings: Settings, mailer: mail.Mailer
) -> DeliveryRun:
    """Deliver what is due, batch after batch, until nothing is (a delivered event may
    free the next one of its order at once)."""
    run = DeliveryRun()
    while True:
        attempts = await _claim(db, BATCH)
        if not attempts:
            return run
        progressed = False
        for attempt in attempts:  # in id order: one attempt per order per batch
            status, error = await _post(http, settings, attempt)
            if await _record(db, settings, mailer, attempt, status, error):
                run.delivered += 1
                progressed = True
            else:
                run.failed += 1
        if not progressed:
            return run
