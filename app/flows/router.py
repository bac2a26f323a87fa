"""Operator endpoints whose work crosses domains: opening and blocking accounts, changing a
service (its pricing rule applies at once, priced against its provider's rate), and the
review queue of orders whose upstream outcome is unknown (under /admin/v1)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response, status
from fastapi.responses import JSONResponse

from app.accounts import service as accounts
from app.accounts.schemas import BlockIn, BlockOut, UserCreated, UserIn, UserOut
from app.catalog import service as catalog
from app.catalog.schemas import ServiceOut, ServicePatch
from app.flows import listen, review, review_tickets
from app.flows.accounts import block_account, charge_back, open_account
from app.flows.evidence import evidence_pack
from app.flows.schemas import (
    BulkReviewIn,
    BulkReviewResult,
    ChargebackIn,
    ChargebackOut,
    MarkSentIn,
    ReviewOrder,
    ReviewResult,
)
from app.http.audit import Audit
from app.http.auth import require
from app.http.context import ServicesDep
from app.http.paths import PathId
from app.http.problems import Problem
from app.http.tx import Reader, Tx
from app.orders.history import last_sent_requests
from app.orders.schemas import SentRequestOut
from app.providers.catalog import change_service
from app.tickets import service as tickets
from app.tickets.router import admin_ticket
from app.tickets.schemas import ResolutionOut, ResolvedOut, ResolveIn

admin_router = APIRouter()

# Public: status events of the providers we registered our webhook with.
webhook_router = APIRouter(tags=["provider webhooks"])


@webhook_router.post(
    "/webhooks/provider/{provider_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="A provider's signed status event (Standard Webhooks)",
    description="Verified with the secret the provider gave when we registered; applied "
    "like a polled status (idempotent, a finished order never moves). 401 when the "
    "signature does not verify.",
    include_in_schema=True,
)
async def provider_webhook(
    request: Request, services: ServicesDep, provider_id: PathId
) -> Response:
    body = await request.body()
    try:
        await listen.hear(
            services.db, services.settings.secret_key, provider_id, body, request.headers
        )
    except listen.NotVerified as exc:
        raise Problem(401, "Signature not verified") from exc
    except ValueError as exc:
        raise Problem(422, "Event is not JSON") from exc
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@admin_router.post(
    "/users",
    dependencies=[require("users:write")],
    tags=["users"],
    summary="Create a user",
    description="Returns the user and an API key, shown this once (only its hash is stored).",
    status_code=status.HTTP_201_CREATED,
)
async def create_user(tx: Tx, audit: Audit, services: ServicesDep, body: UserIn) -> UserCreated:
    opened = await open_account(
        tx,
        services.settings,
        email=body.email,
        name=body.name,
        currency=accounts.check_currency(
            body.currency or services.settings.currency, services.settings.currency
        ),
        credit_limit=body.credit_limit,
        referral_code=body.referral_code,
        initial_balance=body.initial_balance,
        operator=audit.actor,
    )
    out = UserOut.model_validate(opened.user)
    await audit("user.create", "user", opened.user.id, after=out)
    return UserCreated(**out.model_dump(), api_key=opened.key.key)


@admin_router.post(
    "/users/{user_id}/block",
    dependencies=[require("users:write")],
    tags=["users"],
    summary="Block an account",
    description="Keys stop working, active orders are canceled, the balance is "
    "forfeited with a ledger entry (chargeback, fraud).",
)
async def block(
    tx: Tx, audit: Audit, services: ServicesDep, user_id: PathId, body: BlockIn
) -> BlockOut:
    before = UserOut.model_validate(await accounts.get_user(tx, user_id))
    result = await block_account(
        tx, services.jobs, user_id, operator=audit.actor, reason=body.reason
    )
    out = BlockOut(
        user_id=user_id,
        withdrawn=result.withdrawn,
        cancel_requested=result.cancel_requested,
        forfeited=result.forfeited,
    )
    await audit(
        "user.block",
        "user",
        user_id,
        before=before,
        after={**out.model_dump(mode="json"), "reason": body.reason},
    )
    return out


@admin_router.post(
    "/users/{user_id}/chargeback",
    dependencies=[require("users:write")],
    tags=["users"],
    summary="A payment was disputed or reversed: block, forfeit and cancel, once",
    description="ToS 4.6: the account is blocked, the balance forfeited with a ledger entry, "
    "active orders cancelled with the rules' refunds, and the disputed invoice's receipt "
    "cancelled (`invoice_id`, when known). Once per user: a repeat answers the first "
    "result with `repeated: true` and changes nothing.",
    responses={404: {"description": "no such user, or the invoice is not the user's"}},
)
async def chargeback(
    tx: Tx, audit: Audit, services: ServicesDep, user_id: PathId, body: ChargebackIn
) -> ChargebackOut:
    result = await charge_back(
        tx,
        services.jobs,
        services.settings,
        audit,
        user_id,
        reason=body.reason,
        invoice_id=body.invoice_id,
    )
    return ChargebackOut.model_validate(result)


@admin_router.get(
    "/users/{user_id}/evidence",
    dependencies=[require("users:read")],
    tags=["users"],
    summary="The evidence pack of a customer for a payment dispute (one JSON file)",
    description="The customer, the legal versions accepted (with their texts), when and "
    "from which address, the client addresses seen, every invoice with the gateway's "
    "notifications and its receipt, the ledger, the orders with their providers' reports, "
    "the tickets and the chargebacks. Collecting it is audited.",
    response_model=dict[str, Any],
)
async def evidence(tx: Tx, audit: Audit, user_id: PathId) -> JSONResponse:
    pack = await evidence_pack(tx, user_id)
    await audit("user.evidence", "user", user_id)
    named = f'attachment; filename="evidence-user-{user_id}.json"'
    return JSONResponse(pack, headers={"content-disposition": named})


# Services ---------------------------------------------------------------------------------


@admin_router.patch(
    "/services/{service_id}",
    dependencies=[require("catalog:write")],
    tags=["catalog"],
    summary="Change a service",
    description="Existing orders keep the terms they were placed with. A service mapped to "
    "a provider is priced by its rule at once, as the catalog sync would: `markup` follows "
    "the provider's rate (converted), and a rate under that cost takes the service off sale "
    "(`held`: below_cost, alerted) until a rule covers it again.",
)
async def patch_service(
    tx: Tx, audit: Audit, services: ServicesDep, service_id: PathId, body: ServicePatch
) -> ServiceOut:
    service = await catalog.get_service(tx, service_id)
    before = ServiceOut.model_validate(service)
    changes = body.model_dump(exclude_unset=True)
    await change_service(tx, services.settings, service, changes)
    out = ServiceOut.model_validate(service)
    await audit("service.update", "service", service_id, before=before, after=out)
    return out


# Review queue -----------------------------------------------------------------------------


@admin_router.get(
    "/review",
    dependencies=[require("orders:read")],
    tags=["review queue"],
    summary="Orders whose upstream outcome is unknown",
    description="They are never resent automatically: decide with resend, mark-sent or cancel.",
)
async def review_queue(session: Reader, limit: int = 100, offset: int = 0) -> list[ReviewOrder]:
    orders = await review.in_review(session, limit=min(max(limit, 1), 1000), offset=max(offset, 0))
    sent = await last_sent_requests(session, [o.id for o in orders])
    return [
        ReviewOrder(
            id=o.id,
            user_id=o.user_id,
            service_id=o.service_id,
            provider_id=o.provider_id,
            link=o.link,
            quantity=o.quantity,
            charge=o.charge,
            attempts=o.attempts,
            last_error=o.last_error,
            created_at=o.created_at,
            sent_request=SentRequestOut.of(sent.get(o.id)),
        )
        for o in orders
    ]


@admin_router.post(
    "/review/bulk",
    dependencies=[require("orders:write")],
    tags=["review queue"],
    summary="Resend or cancel every order in review of one provider in a time window",
    description="Selects the orders in review sent to `provider_id` and created in "
    "[`created_from`, `created_to`), at most 1000 per call (`limited` says more remain). "
    "`cancel` refunds each in full; `resend` sends each again, so use it only when the "
    "provider surely did not create them (compare each order's `sent_request` with the "
    "provider's panel). Each order is audited on its own. `dry_run` only lists them.",
)
async def review_bulk(
    tx: Tx, audit: Audit, services: ServicesDep, body: BulkReviewIn
) -> BulkReviewResult:
    selection = review.Selection(body.provider_id, body.created_from, body.created_to)
    ids = await review.run_bulk(tx, services.jobs, selection, body.action, dry_run=body.dry_run)
    if not body.dry_run:
        for order_id in ids:
            await audit(f"review.{body.action}", "order", order_id, after={"bulk": True})
    return BulkReviewResult(
        action=body.action,
        dry_run=body.dry_run,
        order_ids=ids,
        limited=len(ids) >= review.BULK_LIMIT,
    )


@admin_router.post(
    "/review/{order_id}/resend",
    dependencies=[require("orders:write")],
    tags=["review queue"],
    summary="Send the order upstream again",
    description="Only when you know the provider did not create it: a resend can double it.",
)
async def review_resend(
    tx: Tx, audit: Audit, services: ServicesDep, order_id: PathId
) -> ReviewResult:
    await review.resolve(tx, services.jobs, services.settings, order_id, review.RESEND)
    await audit("review.resend", "order", order_id)
    return ReviewResult(order_id=order_id, action="resend")


@admin_router.post(
    "/review/{order_id}/mark-sent",
    dependencies=[require("orders:write")],
    tags=["review queue"],
    summary="Attach the provider's order id (it was created upstream)",
)
async def review_mark_sent(
    tx: Tx, audit: Audit, services: ServicesDep, order_id: PathId, body: MarkSentIn
) -> ReviewResult:
    await review.resolve(
        tx, services.jobs, services.settings, order_id, review.MARK_SENT, body.provider_order_id
    )
    after = {"provider_order_id": body.provider_order_id}
    await audit("review.mark_sent", "order", order_id, after=after)
    return ReviewResult(order_id=order_id, action="mark_sent")


@admin_router.post(
    "/review/{order_id}/cancel",
    dependencies=[require("orders:write")],
    tags=["review queue"],
    summary="Cancel the order with a full refund",
)
async def review_cancel(
    tx: Tx, audit: Audit, services: ServicesDep, order_id: PathId
) -> ReviewResult:
    await review.resolve(tx, services.jobs, services.settings, order_id, review.CANCEL)
    await audit("review.cancel", "order", order_id)
    return ReviewResult(order_id=order_id, action="cancel")


@admin_router.post(
    "/tickets/{ticket_id}/resolve",
    dependencies=[require("reviews:resolve")],
    tags=["support"],
    summary="End an order's review under a ticket (ToS 2.5)",
    description="One decision per reviewed order: `no_action`, `resend` (sent upstream "
    "again), `refund` (`amount`, or the whole refundable rest; through the ledger, exactly "
    "once, the ticket named as the reason) or `complete`. The review ends and the ticket "
    "gets the answer (`message`, or a default one), mailed to the customer. A second "
    "resolution of the same order is refused (409).",
)
async def resolve_ticket_review(
    tx: Tx, audit: Audit, services: ServicesDep, ticket_id: PathId, body: ResolveIn
) -> ResolvedOut:
    done = await review_tickets.resolve_as(
        tx,
        services.jobs,
        tickets.Notify.of(services),
        audit.principal,
        ticket_id,
        order_id=body.order_id,
        action=body.action,
        amount=body.amount,
        message=body.message,
    )
    out = ResolvedOut(
        resolution=ResolutionOut.model_validate(done.resolution, from_attributes=True),
        ticket=await admin_ticket(tx, await tickets.get_ticket(tx, ticket_id)),
    )
    await audit("ticket.resolve", "ticket", ticket_id, after=out)
    return out
