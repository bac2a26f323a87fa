"""Raising and resolving alerts, in the caller's transaction.

Every alert is a row (listed by `GET /admin/v1/alerts`), a log line at error level and a
count in `smm_alerts_total{kind}`; it is open until its condition is resolved or an
operator acknowledges it (who and when are kept). An alert raised with `once=True` holds
its `open_key` (kind, subject, id) while the condition lasts: raising it again is a no-op
until `resolve` clears it (a provider balance that recovered), so one condition, one
alert.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import ColumnElement, and_, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.alerts.models import Alert
from app.db import after_commit, utcnow
from app.errors import NotFound
from app.metrics import ALERTS

log = logging.getLogger(__name__)

# The kinds of alert, as listed and counted.
SYNC_FAILED = "catalog_sync_failed"
BELOW_COST = "service_below_cost"
TYPE_CHANGED = "service_type_changed"
SERVICE_REMOVED = "service_removed_upstream"
BALANCE_LOW = "provider_balance_low"
STUCK_ORDER = "order_stuck"
ORDER_ANOMALY = "order_anomaly"
KINDS = (
    SYNC_FAILED,
    BELOW_COST,
    TYPE_CHANGED,
    SERVICE_REMOVED,
    BALANCE_LOW,
    STUCK_ORDER,
    ORDER_ANOMALY,
)


def open_key(kind: str, subject: str, subject_id: int) -> str:
    return f"{kind}:{subject}:{subject_id}"


async def raise_alert(
    session: AsyncSession,
    kind: str,
    subject: str,
    subject_id: int,
    message: str,
    *,
    detail: dict[str, Any] | None = None,
    once: bool = False,
) -> bool:
    """Record an alert; with `once`, only if the same one is not open. Whether it was
    raised (the log line and the metric follow the commit)."""
    assert kind in KINDS, kind
    values = {
        "kind": kind,
        "subject": subject,
        "subject_id": subject_id,
        "message": message[:2000],
        "detail": detail or {},
        "open_key": open_key(kind, subject, subject_id) if once else None,
    }
    stmt = pg_insert(Alert).values(**values)
    if once:
        stmt = stmt.on_conflict_do_nothing(index_elements=[Alert.open_key])
    alert_id = await session.scalar(stmt.returning(Alert.id))
    if alert_id is None:
        return False

    async def announce() -> None:
        ALERTS.labels(kind).inc()
        log.error(
            message,
            extra={"alert": kind, "alert_id": alert_id, subject + "_id": subject_id},
        )

    after_commit(session, announce)
    return True


async def resolve(session: AsyncSession, kind: str, subject: str, subject_id: int) -> bool:
    """The condition is over: the next time it happens, it is alerted again."""
    resolved = await session.scalar(
        update(Alert)
        .where(Alert.open_key == open_key(kind, subject, subject_id))
        .values(open_key=None, resolved_at=utcnow())
        .returning(Alert.id)
    )
    return resolved is not None


class AlertNotFound(NotFound):
    http_status = 404
    message = "Alert not found"


async def get_alert(session: AsyncSession, alert_id: int) -> Alert:
    alert = await session.get(Alert, alert_id)
    if alert is None:
        raise AlertNotFound()
    return alert


async def acknowledge(session: AsyncSession, alert_id: int, operator: str) -> Alert:
    """An operator has seen the alert: it is no longer open. Its condition may last (a
    balance still low); the alert raised once per episode is not raised again until the
    condition is resolved. Acknowledging twice keeps the first acknowledgement."""
    alert = await session.get(Alert, alert_id, with_for_update=True)
    if alert is None:
        raise AlertNotFound()
    if alert.acknowledged_at is None:
        alert.acknowledged_at, alert.acknowledged_by = utcnow(), operator
        await session.flush()
    return alert


def is_open() -> ColumnElement[bool]:
    """Alerts an operator has yet to look at: neither resolved nor acknowledged."""
    return and_(Alert.resolved_at.is_(None), Alert.acknowledged_at.is_(None))


async def open_count(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count(Alert.id)).where(is_open())) or 0)


async def list_alerts(
    session: AsyncSession,
    *,
    kind: str | None = None,
    subject: str | None = None,
    subject_id: int | None = None,
    open_only: bool = False,
    limit: int = 100,
    offset: int = 0,
) -> list[Alert]:
    stmt = select(Alert).order_by(Alert.id.desc()).limit(limit).offset(offset)
    if open_only:
        stmt = stmt.where(is_open())
    if kind is not None:
        stmt = stmt.where(Alert.kind == kind)
    if subject is not None:
        stmt = stmt.where(Alert.subject == subject)
    if subject_id is not None:
        stmt = stmt.where(Alert.subject_id == subject_id)
    return list(await session.scalars(stmt))
