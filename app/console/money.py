"""The console's money: gateway payments (invoices) with every notification their gateway
sent; the ledger filtered by customer, kind and order; conversion rates into the panel's
currency, set and removed; referral rewards, voided through the ledger; the margin report
per service or provider over a range of days. Every list pages and exports as CSV.

Each is read or changed through the functions behind /admin/v1 (payments, ledger,
currencies, referrals, reports), changes audited the same way, naming the member."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from app.console.listing import as_choice, as_day, as_id, shown, window
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
from app.currencies import service as currencies
from app.currencies.router import RateIn
from app.db import utcnow
from app.errors import DomainError
from app.http.paths import PathId
from app.http.problems import Problem
from app.ledger import service as ledger
from app.ledger.models import LedgerEntry
from app.pages.export import Cell
from app.payments import service as payments
from app.payments.models import GATEWAYS, PAYMENT_PAID, PAYMENT_PENDING
from app.referrals import service as referrals
from app.referrals.models import REWARD_STATUSES
from app.referrals.schemas import RewardOut, VoidIn
from app.reports.service import GroupBy, margin_report

router = APIRouter()
Payments = Annotated[Who, Depends(Permit("payments:read"))]
LedgerReader = Annotated[Who, Depends(Permit("ledger:read"))]
RatesReader = Annotated[Who, Depends(Permit("currencies:read"))]
RatesWriter = Annotated[Who, Depends(Permit("currencies:write"))]
Voiding = Annotated[Who, Depends(Permit("balances:adjust"))]
Reports = Annotated[Who, Depends(Permit("reports:read"))]
Refusals = (DomainError, Problem, ValueError)

KINDS = ("deposit", "charge", "refund", "adjustment", "forfeit")
DONE = {
    "rate": N_("The rate is set."),
    "rate-removed": N_("The rate is removed; the settings' default applies again."),
    "voided": N_("The reward is voided: taken back from the referrer."),
}


# Payments ---------------------------------------------------------------------------------

PAYMENT_HEADER = [
    "ID",
    "Customer",
    "Gateway",
    "Amount",
    "Currency",
    "Credit",
    "Status",
    "Created",
    "Paid",
]


@router.get("/payments")
async def payment_list(
    who: Payments, user_id: str = "", status: str = "", gateway: str = "", format: str = ""
) -> Response:
    at = window(who.request.query_params.get("page"), format)
    where = payments.PaymentSearch(
        user_id=as_id(user_id),
        status=as_choice(status, (PAYMENT_PENDING, PAYMENT_PAID)),
        gateway=as_choice(gateway, GATEWAYS),
    )
    async with who.services.db.session() as session:
        found = await payments.search_payments(session, where, limit=at.limit, offset=at.offset)
    if at.csv:
        rows: list[list[Cell]] = [
            [
                p.id,
                p.user_id,
                p.gateway,
                p.amount,
                p.currency,
                p.credit_amount,
                p.status,
                p.created_at,
                p.paid_at,
            ]
            for p in found
        ]
        return csv_download(who, "payments", PAYMENT_HEADER, rows)
    return page(
        who,
        "payments.html",
        listed=shown(found, at),
        given={"user_id": user_id[:30], "status": status, "gateway": gateway},
        gateways=GATEWAYS,
        statuses=(PAYMENT_PENDING, PAYMENT_PAID),
    )


@router.get("/payments/{payment_id}")
async def payment_detail(who: Payments, payment_id: PathId) -> Response:
    async with who.services.db.session() as session:
        payment, notes = await payments.payment_with_notifications(session, payment_id)
    return page(who, "payment.html", payment=payment, notes=notes)


# Ledger -----------------------------------------------------------------------------------

LEDGER_HEADER = [
    "ID",
    "When",
    "Customer",
    "Kind",
    "Amount",
    "Balance after",
    "Reason",
    "Order",
    "Who",
]


def ledger_rows(found: list[LedgerEntry]) -> list[list[Cell]]:
    return [
        [
            e.id,
            e.created_at,
            e.user_id,
            e.kind,
            e.amount,
            e.balance_after,
            e.reason,
            e.order_id,
            e.operator,
        ]
        for e in found
    ]


@router.get("/ledger")
async def ledger_list(
    who: LedgerReader, user_id: str = "", kind: str = "", order_id: str = "", format: str = ""
) -> Response:
    at = window(who.request.query_params.get("page"), format)
    async with who.services.db.session() as session:
        found = await ledger.list_entries(
            session,
            limit=at.limit,
            offset=at.offset,
            user_id=as_id(user_id),
            kind=as_choice(kind, KINDS),
            order_id=as_id(order_id),
        )
    if at.csv:
        return csv_download(who, "ledger", LEDGER_HEADER, ledger_rows(found))
    return page(
        who,
        "ledger.html",
        listed=shown(found, at),
        given={"user_id": user_id[:30], "kind": kind, "order_id": order_id[:30]},
        kinds=KINDS,
    )


# Conversion rates -------------------------------------------------------------------------


async def rates_page(who: Who, failure: Failure | None = None, done: str = "") -> Response:
    async with who.services.db.session() as session:
        rates = await currencies.list_rates(session, who.services.settings)
    return page(
        who,
        "currencies.html",
        failure.status if failure else 200,
        rates=rates,
        currency=who.services.settings.currency,
        error=failure.message if failure else "",
        done=who._(DONE[done]) if done in DONE else "",
    )


@router.get("/currencies")
async def rate_list(who: RatesReader, done: str = "") -> Response:
    return await rates_page(who, done=done)


def currency_code(text: str | None) -> str:
    code = (text or "").strip().upper()
    if len(code) != 3 or not code.isascii() or not code.isalpha():
        raise ValueError(N_("Enter a currency code of three letters, such as RUB."))
    return code


@router.post("/currencies")
async def set_rate(who: RatesWriter) -> Response:
    """A rate into the panel's currency; orders sent from now on use it."""
    fields = await posted(who)
    try:
        code = currency_code(fields.get("code"))
        body = RateIn.model_validate({"rate": fields.get("rate", "").strip()})
        async with who.acting() as (tx, audit):
            before = await currencies.set_operator_rate(tx, who.services.settings, code, body.rate)
            await audit(
                "currency.set",
                "currency",
                code,
                before=None if before is None else {"rate": str(before)},
                after={"rate": str(body.rate)},
            )
    except Refusals as exc:
        return await rates_page(who, who.error(exc))
    return redirect(who, f"{CONSOLE}/currencies?done=rate")


@router.post("/currencies/{code}/remove")
async def remove_rate(who: RatesWriter, code: str) -> Response:
    await posted(who)
    try:
        checked = currency_code(code)
        async with who.acting() as (tx, audit):
            await currencies.remove_operator_rate(tx, checked)
            await audit("currency.delete", "currency", checked)
    except Refusals as exc:
        return await rates_page(who, who.error(exc))
    return redirect(who, f"{CONSOLE}/currencies?done=rate-removed")


# Referral rewards -------------------------------------------------------------------------

REWARD_HEADER = [
    "ID",
    "Referrer",
    "Referred",
    "Deposit",
    "Share",
    "Reward",
    "Status",
    "Created",
    "Voided by",
]


async def rewards_page(who: Who, failure: Failure | None = None, done: str = "") -> Response:
    q = who.request.query_params
    at = window(q.get("page"), q.get("format"))
    given = {k: q.get(k, "")[:30] for k in ("referrer_id", "status")}
    async with who.services.db.session() as session:
        found = await referrals.list_rewards(
            session,
            referrer_id=as_id(given["referrer_id"]),
            status=as_choice(given["status"], REWARD_STATUSES),
            limit=at.limit,
            offset=at.offset,
        )
    if at.csv:
        rows: list[list[Cell]] = [
            [
                r.id,
                r.referrer_id,
                r.referred_id,
                r.deposit_amount,
                r.share,
                r.amount,
                r.status,
                r.created_at,
                r.voided_by,
            ]
            for r in found
        ]
        return csv_download(who, "referral-rewards", REWARD_HEADER, rows)
    return page(
        who,
        "referrals.html",
        failure.status if failure else 200,
        listed=shown(found, at),
        given=given,
        statuses=REWARD_STATUSES,
        error=failure.message if failure else "",
        done=who._(DONE[done]) if done in DONE else "",
    )


@router.get("/referrals")
async def reward_list(who: LedgerReader, done: str = "") -> Response:
    return await rewards_page(who, done=done)


@router.post("/referrals/{reward_id}/void")
async def void_reward(who: Voiding, reward_id: PathId) -> Response:
    """Take a reward back from the referrer with an adjustment entry, once."""
    fields = await posted(who)
    try:
        body = VoidIn.model_validate({"reason": fields.get("reason", "").strip()})
        async with who.acting() as (tx, audit):
            before = (await referrals.get_reward(tx, reward_id)).status
            reward = await referrals.void_reward(
                tx, reward_id, operator=audit.actor, reason=body.reason
            )
            out = RewardOut.model_validate(reward)
            await audit(
                "referral.void",
                "referral_reward",
                reward_id,
                before={"status": before},
                after=out,
            )
    except Refusals as exc:
        return await rewards_page(who, who.error(exc))
    return redirect(who, f"{CONSOLE}/referrals?done=voided")


# The margin report ------------------------------------------------------------------------

MARGIN_HEADER = [
    "Key",
    "Name",
    "Orders",
    "Revenue",
    "Cost",
    "Margin",
    "Margin %",
    "Unpriced orders",
]
MAX_DAYS = 3660


@router.get("/margin")
async def margin(
    who: Reports, start: str = "", end: str = "", group_by: str = "service", format: str = ""
) -> Response:
    """Margin per service or provider over [start, end] (UTC days, inclusive): revenue
    from the ledger, cost as the providers bill it, converted at each order's rate."""
    today = utcnow().date()
    first = as_day(start) or today - timedelta(days=29)
    last = as_day(end) or today
    error = ""
    if last < first or (last - first).days > MAX_DAYS or last >= date.max:
        error = who._("Choose a range of days: the first not after the last, at most ten years.")
        first, last = today - timedelta(days=29), today
    grouping: GroupBy = "provider" if group_by == "provider" else "service"
    async with who.services.db.session() as session:
        report = await margin_report(
            session,
            start=datetime.combine(first, time.min, tzinfo=UTC),
            end=datetime.combine(last + timedelta(days=1), time.min, tzinfo=UTC),
            group_by=grouping,
            currency=who.services.settings.currency,
        )
    rows = [*report.rows, report.total]
    if format == "csv":
        table: list[list[Cell]] = [
            [
                r.key,
                r.name,
                r.orders,
                r.revenue,
                r.cost,
                r.margin,
                r.margin_percent,
                r.unpriced_orders,
            ]
            for r in rows
        ]
        return csv_download(who, f"margin-{first}-{last}", MARGIN_HEADER, table)
    return page(
        who,
        "margin.html",
        422 if error else 200,
        report=report,
        first=first.isoformat(),
        last=last.isoformat(),
        grouping=grouping,
        error=error,
    )
