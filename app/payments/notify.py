"""What every gateway notification endpoint shares: the per-address rate limit, the log of
a notification that credited nothing (its payload bounded), crediting a verified payment
in one transaction with its log entry, and reading a JSON body safely. The endpoints are
payments.router's (Robokassa, Free-Kassa) and app/flows's (YooKassa, whose refunds reverse
a deposit across domains)."""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import Request

from app.http.context import Services
from app.http.security import RateLimited, check_rate
from app.metrics import DEPOSITS, PAYMENT_NOTIFICATIONS, PAYMENT_NOTIFICATIONS_TRUNCATED
from app.payments import gateways
from app.payments import service as payments

log = logging.getLogger(__name__)
TOO_MANY = "Too many requests, try again later"


def client_of(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def rate_limited(ctx: Services, request: Request, gateway: str) -> int | None:
    """Seconds to wait when this client IP sent too many notifications this minute."""
    try:
        await check_rate(
            ctx.jobs,
            ip=f"notify:{client_of(request)}",
            key=None,
            per_ip=ctx.settings.rate_limit_notify_per_ip,
            per_key=0,
        )
    except RateLimited as exc:
        PAYMENT_NOTIFICATIONS.labels(gateway, "rate_limited").inc()
        return exc.retry_after
    return None


async def record_refused(
    ctx: Services,
    gateway: str,
    outcome: str,
    payment_id: int | None,
    request: Request,
    payload: dict[str, Any],
) -> None:
    """Log a notification that credited nothing, its payload bounded."""
    PAYMENT_NOTIFICATIONS.labels(gateway, outcome).inc()
    payload, truncated = payments.bounded_payload(payload)
    if truncated:
        PAYMENT_NOTIFICATIONS_TRUNCATED.labels(gateway, outcome).inc()
    async with ctx.db.transaction() as session:
        await payments.log_notification(
            session,
            gateway=gateway,
            outcome=outcome,
            payment_id=payment_id,
            remote_addr=request.client.host if request.client else None,
            payload=payload,
        )


async def settle_logged(
    ctx: Services,
    request: Request,
    gateway: str,
    confirmed: gateways.Confirmed,
    payload: dict[str, Any],
) -> str:
    """Credit in one transaction with its log entry; Rejected leaves only the log entry."""
    async with ctx.db.transaction() as session:
        outcome = await payments.settle(session, ctx.settings, gateway, confirmed)
        await payments.log_notification(
            session,
            gateway=gateway,
            outcome=outcome,
            payment_id=confirmed.payment_id,
            remote_addr=request.client.host if request.client else None,
            payload=payload,
        )
    PAYMENT_NOTIFICATIONS.labels(gateway, outcome).inc()
    if outcome == "credited":
        DEPOSITS.labels(gateway).inc()
        log.info("deposit credited", extra={"gateway": gateway, "payment_id": confirmed.payment_id})
    return outcome


def json_body(raw: bytes) -> Any:
    """The notification's JSON, or None when unreadable: malformed, nested deep enough to
    exhaust the parser's stack, or holding NaN/Infinity (which PostgreSQL cannot store)."""

    def no_constants(name: str) -> Any:
        raise ValueError(name)

    try:
        return json.loads(raw, parse_constant=no_constants)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
