"""Operator endpoint of alerts: everything the panel raised for an operator, newest first."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.alerts import service as alerts
from app.alerts.models import Alert
from app.alerts.schemas import AlertOut
from app.http.audit import Audit
from app.http.auth import require
from app.http.paths import Limit, Offset, PathId, QueryId
from app.http.tx import Reader, Tx

admin_router = APIRouter(tags=["alerts"])


def alert_out(alert: Alert) -> AlertOut:
    return AlertOut(
        id=alert.id,
        kind=alert.kind,
        subject=alert.subject,
        subject_id=alert.subject_id,
        message=alert.message,
        detail=alert.detail,
        open=alert.open_key is not None,
        resolved_at=alert.resolved_at,
        acknowledged_at=alert.acknowledged_at,
        acknowledged_by=alert.acknowledged_by,
        created_at=alert.created_at,
    )


@admin_router.get(
    "/alerts",
    dependencies=[require("providers:read")],
    summary="Alerts, newest first",
    description=(
        "Kinds: " + ", ".join(alerts.KINDS) + ". Each is also a log line at error level and "
        "a count in `smm_alerts_total{kind}`. `open` alerts are raised once per episode and "
        "closed when the condition is over (a provider balance that recovered)."
    ),
)
async def list_alerts(
    session: Reader,
    limit: Limit = 100,
    offset: Offset = 0,
    kind: Annotated[str | None, Query(description="one of the kinds above")] = None,
    subject: Annotated[str | None, Query(description="provider, service or order")] = None,
    subject_id: QueryId | None = None,
) -> list[AlertOut]:
    found = await alerts.list_alerts(
        session, kind=kind, subject=subject, subject_id=subject_id, limit=limit, offset=offset
    )
    return [alert_out(a) for a in found]


@admin_router.post(
    "/alerts/{alert_id}/acknowledge",
    dependencies=[require("providers:write")],
    summary="Acknowledge an alert",
    description="It leaves the open alerts (the dashboard's count); the condition may last, "
    "and an alert raised once per episode is raised again only after it is resolved. "
    "Acknowledging twice keeps the first acknowledgement.",
)
async def acknowledge_alert(tx: Tx, audit: Audit, alert_id: PathId) -> AlertOut:
    before = alert_out(await alerts.get_alert(tx, alert_id))
    out = alert_out(await alerts.acknowledge(tx, alert_id, audit.actor))
    await audit("alert.acknowledge", "alert", alert_id, before=before, after=out)
    return out
