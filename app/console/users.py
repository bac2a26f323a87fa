"""The console's customers: the list (search by email or id, status; pages; CSV), one
customer's page (balance and ledger, orders, tickets, sign-in and sessions, referrals,
custom rates) and what an operator does to them: top-up and adjustment with a reason,
discount and custom rates, block with the balance forfeited and unblock, two-factor reset,
ending sessions, the privacy export and erasure.

Every action calls the functions behind /admin/v1 (payments.manual_topup, ledger.adjust,
flows.accounts.block_account, privacy.erase_user…) in one transaction with the audit entry
naming the member, and needs the permission the same /admin/v1 route needs.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, Response

from app.accounts import service as accounts
from app.accounts.models import USER_ACTIVE, USER_BLOCKED
from app.accounts.schemas import BlockIn, BlockOut, UserOut, UserPatch
from app.catalog import service as catalog
from app.catalog.schemas import RateIn, RateOut
from app.console.listing import as_choice, as_id, shown, window
from app.console.render import (
    CONSOLE,
    N_,
    Failure,
    Permit,
    Who,
    csv_download,
    page,
    posted,
    redirect,
)
from app.customers import service as customers
from app.customers.models import CustomerLogin
from app.errors import DomainError, NotFound
from app.flows.accounts import block_account, charge_back
from app.flows.evidence import evidence_pack
from app.flows.schemas import ChargebackIn
from app.http.paths import PathId
from app.http.problems import Problem
from app.ledger import service as ledger
from app.ledger.schemas import AdjustIn
from app.orders import operator as orders
from app.pages.export import Cell
from app.payments import service as payments
from app.payments.schemas import TopupIn
from app.privacy import service as privacy
from app.privacy.schemas import ErasedOut
from app.referrals import service as referrals
from app.tickets import service as tickets

router = APIRouter()
Reader = Annotated[Who, Depends(Permit("users:read"))]
Writer = Annotated[Who, Depends(Permit("users:write"))]
ToppingUp = Annotated[Who, Depends(Permit("balances:topup"))]
Adjusting = Annotated[Who, Depends(Permit("balances:adjust"))]
Exporting = Annotated[Who, Depends(Permit("privacy:read"))]
Erasing = Annotated[Who, Depends(Permit("privacy:write"))]

STATUSES = (USER_ACTIVE, USER_BLOCKED)
DONE = {
    "topup": N_("The balance is topped up."),
    "topup-duplicate": N_("This payment reference was credited already: nothing changed."),
    "adjust": N_("The balance is adjusted."),
    "discount": N_("The discount is set."),
    "rate": N_("The custom rate is set."),
    "rate-removed": N_("The custom rate is removed."),
    "blocked": N_("The account is blocked."),
    "unblocked": N_("The account is unblocked."),
    "charged-back": N_("Chargeback recorded: the account is blocked and its balance forfeited."),
    "2fa": N_("Two-factor sign-in is turned off for this customer."),
    "sessions": N_("Every session of this customer is ended."),
    "erased": N_("The customer's personal data is erased."),
}
LEDGER_ROWS = 50
LIST_HEADER = ["ID", "Email", "Name", "Status", "Balance", "Discount %", "Created"]


@router.get("/users")
async def user_list(
    who: Reader,
    q: str = "",
    status: str = "",
    format: str = "",
) -> Response:
    at = window(who.request.query_params.get("page"), format)
    text = q.strip()[:320]
    where = accounts.UserSearch(
        status=as_choice(status, STATUSES),
        email=None if as_id(text) else text or None,
        user_id=as_id(text),
    )
    async with who.services.db.session() as session:
        found = await accounts.search_users(session, where, limit=at.limit, offset=at.offset)
    if at.csv:
        rows: list[list[Cell]] = [
            [u.id, u.email, u.name, u.status, u.balance, u.discount_percent, u.created_at]
            for u in found
        ]
        return csv_download(who, "customers", LIST_HEADER, rows)
    return page(
        who, "users.html", listed=shown(found, at), q=text, chosen=status, statuses=STATUSES
    )


async def user_page(
    who: Who, user_id: int, failure: Failure | None = None, done: str = ""
) -> Response:
    ledger_at = window(who.request.query_params.get("ledger_page"), None)
    async with who.services.db.session() as session:
        user = await accounts.get_user(session, user_id)
        entries = await ledger.list_entries(
            session,
            limit=LEDGER_ROWS + 1,
            offset=(ledger_at.page - 1) * LEDGER_ROWS,
            user_id=user_id,
        )
        recent = await orders.search_orders(
            session,
            orders.OrderSearch(user_id=user_id),
            limit=20,
            offset=0,
            stuck_after_seconds=who.services.settings.stuck_after_seconds,
        )
        values = {
            "user": user,
            "entries": entries[:LEDGER_ROWS],
            "ledger_page": ledger_at.page,
            "ledger_more": len(entries) > LEDGER_ROWS,
            "orders": recent,
            "tickets": await tickets.list_tickets(
                session, tickets.TicketFilter(user_id=user_id), limit=20, offset=0
            ),
            "login": await session.get(CustomerLogin, user_id),
            "sessions": await customers.list_sessions(session, user_id),
            "recovery_left": await customers.recovery_codes_left(session, user_id),
            "referrals": await referrals.summary(session, user_id, limit=20),
            "rates": await catalog.user_rates(session, user_id),
        }
    return page(
        who,
        "user.html",
        failure.status if failure else 200,
        error=failure.message if failure else "",
        done=who._(DONE[done]) if done in DONE else "",
        **values,
    )


@router.get("/users/{user_id}")
async def user_detail(who: Reader, user_id: PathId, done: str = "") -> Response:
    return await user_page(who, user_id, done=done)


def back(who: Who, user_id: int, done: str) -> Response:
    return redirect(who, f"{CONSOLE}/users/{user_id}?done={done}")


async def refused(who: Who, user_id: int, exc: Exception) -> Response:
    return await user_page(who, user_id, who.error(exc))


Refusals = (DomainError, Problem, ValueError)


@router.post("/users/{user_id}/topup")
async def topup(who: ToppingUp, user_id: PathId) -> Response:
    fields = await posted(who)
    try:
        body = TopupIn.model_validate(
            {
                "amount": fields.get("amount", ""),
                "reason": fields.get("reason") or "Top-up",
                "payment_ref": fields.get("payment_ref") or None,
            }
        )
        async with who.acting() as (tx, audit):
            await accounts.get_live_user(tx, user_id)
            movement = await payments.manual_topup(
                tx,
                who.services.settings,
                user_id=user_id,
                amount=body.amount,
                reason=body.reason,
                operator=audit.actor,
                payment_ref=body.payment_ref,
            )
            if movement is not None:
                await audit("user.topup", "user", user_id, after=body)
    except Refusals as exc:
        return await refused(who, user_id, exc)
    return back(who, user_id, "topup" if movement is not None else "topup-duplicate")


@router.post("/users/{user_id}/adjust")
async def adjust(who: Adjusting, user_id: PathId) -> Response:
    fields = await posted(who)
    try:
        body = AdjustIn.model_validate(
            {
                "amount": fields.get("amount", ""),
                "reason": fields.get("reason", ""),
                "allow_negative": fields.get("allow_negative") == "1",
            }
        )
        async with who.acting() as (tx, audit):
            await accounts.get_user(tx, user_id)
            await ledger.adjust(
                tx,
                user_id=user_id,
                amount=body.amount,
                kind="adjustment",
                reason=body.reason,
                operator=audit.actor,
                allow_negative=body.allow_negative,
            )
            await audit("user.adjust", "user", user_id, after=body)
    except Refusals as exc:
        return await refused(who, user_id, exc)
    return back(who, user_id, "adjust")


@router.post("/users/{user_id}/discount")
async def discount(who: Writer, user_id: PathId) -> Response:
    fields = await posted(who)
    try:
        body = UserPatch.model_validate({"discount_percent": fields.get("discount_percent", "")})
        async with who.acting() as (tx, audit):
            before = UserOut.model_validate(await accounts.get_live_user(tx, user_id))
            user = await accounts.update_user(
                tx,
                user_id,
                body.model_dump(exclude_unset=True),
                panel_currency=who.services.settings.currency,
            )
            await audit(
                "user.update", "user", user_id, before=before, after=UserOut.model_validate(user)
            )
    except Refusals as exc:
        return await refused(who, user_id, exc)
    return back(who, user_id, "discount")


@router.post("/users/{user_id}/rates")
async def set_rate(who: Writer, user_id: PathId) -> Response:
    fields = await posted(who)
    service_id = as_id(fields.get("service_id"))
    try:
        body = RateIn.model_validate({"rate": fields.get("rate", "")})
        if service_id is None:
            raise NotFound("Service not found")
        async with who.acting() as (tx, audit):
            await accounts.get_user(tx, user_id)
            await catalog.set_user_rate(tx, user_id, service_id, body.rate)
            after = RateOut(user_id=user_id, service_id=service_id, rate=body.rate)
            await audit("rate.set", "user", user_id, after=after)
    except Refusals as exc:
        return await refused(who, user_id, exc)
    return back(who, user_id, "rate")


@router.post("/users/{user_id}/rates/{service_id}/remove")
async def remove_rate(who: Writer, user_id: PathId, service_id: PathId) -> Response:
    await posted(who)
    async with who.acting() as (tx, audit):
        await catalog.remove_user_rate(tx, user_id, service_id)
        await audit("rate.delete", "user", user_id, before={"service_id": service_id})
    return back(who, user_id, "rate-removed")


@router.post("/users/{user_id}/block")
async def block(who: Writer, user_id: PathId) -> Response:
    fields = await posted(who)
    try:
        body = BlockIn.model_validate({"reason": fields.get("reason", "")})
        if fields.get("confirm") != "1":
            raise ValueError(N_("Tick the box to confirm: the balance is forfeited."))
        async with who.acting() as (tx, audit):
            before = UserOut.model_validate(await accounts.get_user(tx, user_id))
            result = await block_account(
                tx, who.services.jobs, user_id, operator=audit.actor, reason=body.reason
            )
            out = BlockOut(
                user_id=user_id,
                withdrawn=result.withdrawn,
                cancel_requested=result.cancel_requested,
                forfeited=result.forfeited,
            )
            after = {**out.model_dump(mode="json"), "reason": body.reason}
            await audit("user.block", "user", user_id, before=before, after=after)
    except Refusals as exc:
        return await refused(who, user_id, exc)
    return back(who, user_id, "blocked")


@router.post("/users/{user_id}/chargeback")
async def chargeback(who: Writer, user_id: PathId) -> Response:
    """A payment disputed: the chargeback command /admin/v1 and the gateways run (block,
    forfeit, cancel with refunds, the receipt cancelled), once per customer."""
    fields = await posted(who)
    try:
        invoice = fields.get("invoice_id", "").strip()
        body = ChargebackIn.model_validate(
            {"reason": fields.get("reason", ""), "invoice_id": invoice or None}
        )
        if fields.get("confirm") != "1":
            raise ValueError(N_("Tick the box to confirm: the balance is forfeited."))
        async with who.acting() as (tx, audit):
            await charge_back(
                tx,
                who.services.jobs,
                who.services.settings,
                audit,
                user_id,
                reason=body.reason,
                invoice_id=body.invoice_id,
            )
    except Refusals as exc:
        return await refused(who, user_id, exc)
    return back(who, user_id, "charged-back")


@router.post("/users/{user_id}/evidence")
async def evidence(who: Reader, user_id: PathId) -> Response:
    """The evidence pack of /admin/v1/users/{id}/evidence, as a file (audited)."""
    await posted(who)
    try:
        async with who.acting() as (tx, audit):
            pack = await evidence_pack(tx, user_id)
            await audit("user.evidence", "user", user_id)
    except Refusals as exc:
        return await refused(who, user_id, exc)
    named = f'attachment; filename="evidence-user-{user_id}.json"'
    return JSONResponse(pack, headers={"Content-Disposition": named})


@router.post("/users/{user_id}/unblock")
async def unblock(who: Writer, user_id: PathId) -> Response:
    await posted(who)
    try:
        async with who.acting() as (tx, audit):
            before = UserOut.model_validate(await accounts.get_user(tx, user_id))
            after = UserOut.model_validate(await accounts.unblock_user(tx, user_id))
            await audit("user.unblock", "user", user_id, before=before, after=after)
    except Refusals as exc:
        return await refused(who, user_id, exc)
    return back(who, user_id, "unblocked")


@router.post("/users/{user_id}/2fa-reset")
async def reset_two_factor(who: Writer, user_id: PathId) -> Response:
    await posted(who)
    try:
        async with who.acting() as (tx, audit):
            await accounts.get_user(tx, user_id)
            await customers.clear_totp(tx, user_id)
            await audit("user.2fa_reset", "user", user_id)
    except Refusals as exc:
        return await refused(who, user_id, exc)
    return back(who, user_id, "2fa")


@router.post("/users/{user_id}/sessions/revoke")
async def revoke_sessions(who: Writer, user_id: PathId) -> Response:
    await posted(who)
    try:
        async with who.acting() as (tx, audit):
            await accounts.get_user(tx, user_id)
            revoked = await customers.revoke_sessions(tx, user_id)
            await audit("user.sessions_revoke", "user", user_id, after={"revoked": revoked})
    except Refusals as exc:
        return await refused(who, user_id, exc)
    return back(who, user_id, "sessions")


@router.post("/users/{user_id}/export")
async def export(who: Exporting, user_id: PathId) -> Response:
    """Everything held about the customer, as /admin/v1's export (the export is audited)."""
    await posted(who)
    try:
        async with who.acting() as (tx, audit):
            data = await privacy.export_user(tx, user_id)
            await audit("user.export", "user", user_id)
    except Refusals as exc:
        return await refused(who, user_id, exc)
    return JSONResponse(
        privacy.export_json(data),
        headers={"Content-Disposition": f'attachment; filename="user-{user_id}.json"'},
    )


@router.post("/users/{user_id}/erase")
async def erase(who: Erasing, user_id: PathId) -> Response:
    fields = await posted(who)
    try:
        if fields.get("confirm") != "1":
            raise ValueError(N_("Tick the box to confirm: personal data cannot be restored."))
        async with who.acting() as (tx, audit):
            erased = await privacy.erase_user(tx, user_id)
            after = ErasedOut(
                user_id=user_id,
                orders_scrubbed=erased.orders_scrubbed,
                erased_at=erased.erased_at,
                purge_after=erased.erased_at + timedelta(days=who.services.settings.retention_days),
            )
            await audit("user.erase", "user", user_id, after=after)
    except Refusals as exc:
        return await refused(who, user_id, exc)
    return back(who, user_id, "erased")
