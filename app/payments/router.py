"""Gateway notification endpoints, invoice creation for users, and the operator's view.

Every notification is logged with its outcome, accepted or not. A notification is only
acknowledged once its payment is credited (or was credited before: gateways resend until
they are acknowledged, so a replay is answered as the first one was, and credits nothing).
Anyone can send a notification, so they are rate-limited per client IP, and what is kept of
a refused one is bounded (an accepted one is kept whole).
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from app.accounts import service as accounts
from app.accounts.service import authenticate
from app.errors import DomainError
from app.http.audit import Audit
from app.http.auth import require
from app.http.context import ServicesDep, get_services
from app.http.forms import read_fields
from app.http.paths import Limit, Offset, PathId, QueryId
from app.http.tx import Reader, Tx
from app.ledger.schemas import MovementOut
from app.money import format_money
from app.payments import gateways, notify
from app.payments import service as payments
from app.payments.schemas import NotificationOut, PaymentDetail, PaymentOut, TopupIn

log = logging.getLogger(__name__)
router = APIRouter(prefix="/payments", tags=["payments"])
admin_router = APIRouter(tags=["payments"])


async def _form_notification(request: Request, gateway: str, verify: Any, answer: Any) -> Response:
    ctx = get_services(request)
    retry_after = await notify.rate_limited(ctx, request, gateway)
    if retry_after is not None:
        return PlainTextResponse(
            notify.TOO_MANY, status_code=429, headers={"Retry-After": str(retry_after)}
        )
    try:
        fields = await read_fields(request, ctx.settings.api_max_body_bytes)
    except DomainError:
        return PlainTextResponse("bad request", status_code=400)
    payload: dict[str, Any] = dict(fields)
    confirmed: gateways.Confirmed | None = None
    try:
        confirmed = verify(ctx.settings, fields)
        assert confirmed is not None
        await notify.settle_logged(ctx, request, gateway, confirmed, payload)
    except gateways.Rejected as exc:
        payment_id = confirmed.payment_id if confirmed is not None else None
        await notify.record_refused(ctx, gateway, exc.outcome, payment_id, request, payload)
        log.warning(
            "payment notification rejected",
            extra={"gateway": gateway, "outcome": exc.outcome, "payment_id": payment_id},
        )
        return PlainTextResponse(f"rejected: {exc.outcome}", status_code=400)
    return PlainTextResponse(answer(confirmed))


@router.get(
    "/robokassa/result",
    operation_id="robokassa_result_get",
    summary="Robokassa ResultURL",
    description="Signed with Password#2; answers `OK<InvId>` once the deposit is credited.",
    response_class=PlainTextResponse,
)
@router.post(
    "/robokassa/result",
    operation_id="robokassa_result_post",
    summary="Robokassa ResultURL",
    description="Signed with Password#2; answers `OK<InvId>` once the deposit is credited.",
    response_class=PlainTextResponse,
)
async def robokassa_result(request: Request) -> Response:
    return await _form_notification(
        request, "robokassa", gateways.robokassa_verify, lambda c: f"OK{c.payment_id}"
    )


@router.get(
    "/freekassa/notify",
    operation_id="freekassa_notify_get",
    summary="Free-Kassa notification",
    description="Signed with the second secret word; answers `YES` once credited.",
    response_class=PlainTextResponse,
)
@router.post(
    "/freekassa/notify",
    operation_id="freekassa_notify_post",
    summary="Free-Kassa notification",
    description="Signed with the second secret word; answers `YES` once credited.",
    response_class=PlainTextResponse,
)
async def freekassa_notify(request: Request) -> Response:
    return await _form_notification(
        request, "freekassa", gateways.freekassa_verify, lambda c: "YES"
    )


@router.get(
    "/invoice",
    operation_id="create_invoice_get",
    summary="Create a deposit invoice (API v2 style: `key`, `gateway`, `amount`)",
    description="`amount` is in the panel's currency; the answer gives the price in the "
    'gateway\'s currency and the link to pay. Errors are `{"error": …}` with HTTP 200, as on '
    "/api/v2.",
)
@router.post(
    "/invoice",
    operation_id="create_invoice_post",
    summary="Create a deposit invoice (API v2 style: `key`, `gateway`, `amount`)",
    description="`amount` is in the panel's currency; the answer gives the price in the "
    'gateway\'s currency and the link to pay. Errors are `{"error": …}` with HTTP 200, as on '
    "/api/v2.",
)
async def create_invoice(request: Request) -> JSONResponse:
    ctx = get_services(request)
    try:
        fields = await read_fields(request, ctx.settings.api_max_body_bytes)
        async with ctx.db.session() as session:
            who = await authenticate(session, fields.get("key"))
        payment = await payments.open_invoice(
            ctx.db,
            ctx.settings,
            ctx.http,
            user_id=who.user_id,
            gateway=fields.get("gateway") or "",
            amount=fields.get("amount"),
            ip=notify.client_of(request),
        )
    except DomainError as exc:
        return JSONResponse({"error": exc.message})
    return JSONResponse(
        {
            "payment": payment.id,
            "gateway": payment.gateway,
            "amount": f"{payment.amount:.2f}",
            "currency": payment.currency,
            "credit": format_money(payment.credit_amount),
            "credit_currency": ctx.settings.currency,
            "pay_url": payment.pay_url,
        }
    )


# Operator's view --------------------------------------------------------------------------


@admin_router.post(
    "/users/{user_id}/topup",
    dependencies=[require("balances:topup")],
    tags=["users"],
    summary="Top up a balance",
    description="With `payment_ref`, a replay of the same top-up credits nothing.",
)
async def topup(
    tx: Tx, audit: Audit, services: ServicesDep, user_id: PathId, body: TopupIn
) -> MovementOut:
    user = await accounts.get_live_user(tx, user_id)
    movement = await payments.manual_topup(
        tx,
        services.settings,
        user_id=user_id,
        amount=body.amount,
        reason=body.reason,
        operator=audit.actor,
        payment_ref=body.payment_ref,
    )
    if movement is None:
        await tx.refresh(user)
        return MovementOut(user_id=user_id, balance=user.balance, duplicate=True)
    await audit("user.topup", "user", user_id, after=body)
    return MovementOut(user_id=user_id, balance=movement.balance_after)


@admin_router.get(
    "/payments", dependencies=[require("payments:read")], summary="Gateway payments, newest first"
)
async def list_payments(
    session: Reader,
    user_id: QueryId | None = None,
    status: Annotated[str | None, Query(pattern="^(pending|paid|failed)$")] = None,
    gateway: Annotated[str | None, Query(pattern="^(robokassa|freekassa|yookassa)$")] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[PaymentOut]:
    where = payments.PaymentSearch(user_id=user_id, status=status, gateway=gateway)
    found = await payments.search_payments(session, where, limit=limit, offset=offset)
    return [PaymentOut.model_validate(p) for p in found]


@admin_router.get(
    "/payments/{payment_id}",
    dependencies=[require("payments:read")],
    summary="A payment with every notification received for it",
)
async def get_payment(session: Reader, payment_id: PathId) -> PaymentDetail:
    payment, notes = await payments.payment_with_notifications(session, payment_id)
    return PaymentDetail(
        **PaymentOut.model_validate(payment).model_dump(),
        notifications=[NotificationOut.model_validate(n) for n in notes],
    )
