"""YooKassa's notifications (/payments/yookassa/notify): a succeeded payment is credited,
a succeeded refund reverses the deposit. Each is read back from YooKassa's API by its id
before anything happens (the notification itself is not signed). A reversal is the
chargeback command an operator runs (app/flows/accounts.py): block, forfeit, cancel the
active orders with their refunds and the deposit's receipt, once per user; the gateway is
named in the audit log."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import select

from app.flows.accounts import charge_back
from app.http.audit import Auditor
from app.http.auth import Principal
from app.http.context import Services, get_services
from app.payments import gateways, notify
from app.payments import service as payments
from app.payments.models import Payment

log = logging.getLogger(__name__)
router = APIRouter(prefix="/payments", tags=["payments"])
GATEWAY = "yookassa"
PAYMENT_SUCCEEDED = "payment.succeeded"
REFUND_SUCCEEDED = "refund.succeeded"
# Who a gateway's reversal is audited as.
YOOKASSA = Principal(f"gateway:{GATEWAY}", "gateway", frozenset())


@router.post(
    "/yookassa/notify",
    summary="YooKassa HTTP notification",
    description="`payment.succeeded` is credited only after YooKassa's API confirms the "
    "payment by its id; `refund.succeeded` (a reversed deposit) blocks the account and "
    "forfeits its balance once, after YooKassa's API confirms the refund; 503 when it "
    "cannot be asked (YooKassa notifies again later).",
)
async def yookassa_notify(request: Request) -> Response:
    ctx = get_services(request)
    retry_after = await notify.rate_limited(ctx, request, GATEWAY)
    if retry_after is not None:
        return JSONResponse(
            {"error": notify.TOO_MANY}, status_code=429, headers={"Retry-After": str(retry_after)}
        )
    body = notify.json_body(await request.body())
    payload: dict[str, Any] = body if isinstance(body, dict) else {}
    payment_id: int | None = None
    try:
        event, object_id = gateways.yookassa_payment_ref(body)
        if event not in (PAYMENT_SUCCEEDED, REFUND_SUCCEEDED):
            await notify.record_refused(ctx, GATEWAY, "ignored", None, request, payload)
            return JSONResponse({})
        external_id = object_id
        if event == REFUND_SUCCEEDED:
            external_id = await gateways.yookassa_refund(ctx.settings, ctx.http, object_id)
        payment_id = await _payment_of(ctx, external_id)
        if event == PAYMENT_SUCCEEDED:
            confirmed = await gateways.yookassa_confirm(
                ctx.settings, ctx.http, external_id, payment_id
            )
            await notify.settle_logged(ctx, request, GATEWAY, confirmed, payload)
        else:
            await _reverse(ctx, request, payment_id, object_id, payload)
    except gateways.Rejected as exc:
        await notify.record_refused(ctx, GATEWAY, exc.outcome, payment_id, request, payload)
        log.warning(
            "payment notification rejected",
            extra={"gateway": GATEWAY, "outcome": exc.outcome, "payment_id": payment_id},
        )
        return JSONResponse({"error": exc.outcome}, status_code=400)
    except gateways.Unavailable as exc:
        await notify.record_refused(ctx, GATEWAY, "unavailable", payment_id, request, payload)
        log.warning("YooKassa could not confirm a notification", extra={"reason": str(exc)})
        return JSONResponse({"error": "try again later"}, status_code=503)
    return JSONResponse({})


async def _payment_of(ctx: Services, external_id: str) -> int:
    async with ctx.db.session() as session:
        payment_id = await session.scalar(
            select(Payment.id).where(Payment.gateway == GATEWAY, Payment.external_id == external_id)
        )
    if payment_id is None:
        raise gateways.Rejected("unknown_payment")
    return int(payment_id)


async def _reverse(
    ctx: Services, request: Request, payment_id: int, refund_id: str, payload: dict[str, Any]
) -> None:
    """The refunded deposit's chargeback, with its log entry, in one transaction."""
    async with ctx.db.transaction() as session:
        payment = await session.get(Payment, payment_id)
        assert payment is not None
        if payment.ledger_entry_id is None:
            raise gateways.Rejected("not_credited", "the refunded payment was never credited")
        result = await charge_back(
            session,
            ctx.jobs,
            ctx.settings,
            Auditor(session, YOOKASSA),
            payment.user_id,
            reason=f"Payment refunded at YooKassa (refund {refund_id})",
            invoice_id=payment_id,
        )
        outcome = "reversal_replay" if result.repeated else "reversed"
        await payments.log_notification(
            session,
            gateway=GATEWAY,
            outcome=outcome,
            payment_id=payment_id,
            remote_addr=request.client.host if request.client else None,
            payload=payload,
        )
    log.warning("deposit reversed", extra={"gateway": GATEWAY, "payment_id": payment_id})
