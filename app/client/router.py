"""The customer API (/client/v1): signing up (signup.py), sign-in and profile from
app/customers, support (support.py), and ordering, money, referrals and privacy requests.
Every action is the command API v2 and the storefront run too (app/flows/commands), or
the one domain function behind it. Every route but registration and sign-in needs the
session token (`Authorization: Bearer`). Errors are problem JSON whose `detail` is the API
v2 message and whose `type` (/errors/<slug>) is stable per cause (app/errors.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select

from app.catalog import service as catalog
from app.client import signup, support
from app.client.schemas import (
    CanceledOut,
    DeletionOut,
    DepositIn,
    DepositOut,
    MassIn,
    MassLineOut,
    MassOut,
    MonthOut,
    OrderDetailOut,
    OrderIn,
    OrderOut,
    OrderPage,
    PayoutOut,
    PlacedOut,
    ReferralsOut,
    RefillMadeOut,
    RefillOut,
    RewardOut,
    ServiceOut,
    TransactionOut,
    TransactionPage,
    accepts_terms,
    order_fields,
)
from app.customers.router import CurrentCustomer
from app.customers.router import client_router as account
from app.db import MAX_ID
from app.errors import IncorrectRequest
from app.flows.commands import ordering
from app.http.context import ServicesDep
from app.http.forms import read_body
from app.http.paths import Cursor, PathId
from app.http.tx import Jobs, Reader, Tx
from app.ledger import service as ledger
from app.money import format_money, format_rate, plain, precision_for_rate
from app.orders import service as orders
from app.orders.models import STATUSES, Order
from app.orders.types import field_names
from app.payments import service as payments
from app.payments.models import Payment
from app.privacy import service as privacy
from app.receipts import service as receipts
from app.referrals import service as referrals
from app.referrals.models import ReferralPayout
from app.refills.models import Refill
from app.webhooks import service as webhooks
from app.webhooks.schemas import (
    DeliveryOut,
    WebhookIn,
    WebhookOut,
    WebhookSetOut,
    delivery_out,
    endpoint_out,
)

shop = APIRouter(tags=["client: ordering"])
money = APIRouter(tags=["client: money"])
mine = APIRouter(tags=["client: referrals and privacy"])

Page = Annotated[int, Query(ge=1, le=200, description="page size")]


@shop.get("/services", summary="The services you can order, at the rates you pay")
async def list_services(db: Reader, me: CurrentCustomer) -> list[ServiceOut]:
    return [
        ServiceOut(
            service=o.service.id,
            name=o.service.name,
            type=o.service.type,
            category=o.category,
            rate=format_rate(o.rate),
            min=o.service.min_quantity,
            max=o.service.max_quantity,
            refill=o.service.refill,
            cancel=o.service.cancel,
            dripfeed=o.service.dripfeed,
            description=o.service.description,
            fields=field_names(o.service.type),
        )
        for o in await catalog.list_offered(db, me.user_id)
    ]


@shop.post(
    "/orders",
    status_code=201,
    summary="Place an order (the fields and rules of API v2 `add`)",
    description="A JSON object or a form with `service` and the fields of the service's type "
    "(GET /client/v1/services lists them), each one string (or a whole number in JSON). "
    "A field no service type takes, or a list where one value belongs, is refused with "
    "problem JSON 422 naming it. Errors of the order carry the API v2 message in `detail`, "
    "e.g. `Not enough funds on balance` (type /errors/insufficient-funds).",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": OrderIn.model_json_schema()}},
        }
    },
)
async def place_order(
    request: Request, tx: Tx, jobs: Jobs, services: ServicesDep, me: CurrentCustomer
) -> PlacedOut:
    body = await read_body(request, services.settings.api_max_body_bytes)
    placed = await ordering.place_order(
        tx,
        jobs,
        me.user_id,
        order_fields(body),
        accept_terms=accepts_terms(body),
        ip=request.client.host if request.client else None,
    )
    return PlacedOut(order=placed.order_id)


@shop.post(
    "/orders/mass",
    summary="Place up to 500 orders, one per line `service_id|link|quantity`",
    description="Each line is placed on its own, in order: one line's error never undoes "
    "another, and the total charge never exceeds the balance.",
)
async def place_mass(tx: Tx, jobs: Jobs, me: CurrentCustomer, body: MassIn) -> MassOut:
    results = await ordering.place_mass(tx, jobs, me.user_id, body.lines)
    return MassOut(
        results=[MassLineOut(line=r.line, order=r.order, error=r.error) for r in results]
    )


def order_out(order: Order) -> OrderOut:
    places = precision_for_rate(order.rate)
    return OrderOut(
        id=order.id,
        service_id=order.service_id,
        type=order.type,
        link=order.link,
        quantity=order.quantity,
        charge=format_money(order.charge, places),
        refunded=format_money(order.refunded, places),
        status=order.status,
        start_count=order.start_count,
        remains=order.remains,
        runs=order.runs,
        interval=order.interval_minutes,
        created_at=order.created_at,
        updated_at=order.updated_at,
    )


@shop.get(
    "/orders",
    summary="Your orders, newest first",
    description="Filters: `status`, `service`, `link` (a substring), `from`/`to` (creation "
    "time, `to` exclusive). Pages follow `next_cursor`.",
)
async def list_orders(
    db: Reader,
    me: CurrentCustomer,
    status: Annotated[str | None, Query(description=", ".join(STATUSES))] = None,
    service: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    link: Annotated[str | None, Query(max_length=500)] = None,
    since: Annotated[datetime | None, Query(alias="from")] = None,
    until: Annotated[datetime | None, Query(alias="to")] = None,
    cursor: Cursor = None,
    limit: Page = 50,
) -> OrderPage:
    if status is not None and status not in STATUSES:
        raise IncorrectRequest("Incorrect status")
    where = orders.OrderFilter(status, service, link, since, until, cursor)
    rows = await orders.list_own_orders(db, me.user_id, where, limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return OrderPage(
        orders=[order_out(o) for o in rows], next_cursor=rows[-1].id if more and rows else None
    )


@shop.get("/orders/{order_id}", summary="An order with its refills and drip-feed runs")
async def get_order(db: Reader, me: CurrentCustomer, order_id: PathId) -> OrderDetailOut:
    order = await orders.get_own_order(db, me.user_id, order_id)
    made = await db.scalars(select(Refill).where(Refill.order_id == order.id).order_by(Refill.id))
    runs = await orders.runs_of(db, order.id)
    return OrderDetailOut(
        **order_out(order).model_dump(),
        params=order.params,
        refills=[RefillOut(id=r.id, status=r.status, created_at=r.created_at) for r in made],
        drip_feed_runs=[order_out(r) for r in runs],
    )


@shop.post("/orders/{order_id}/refill", summary="Ask for a refill (where the service allows)")
async def refill_order(tx: Tx, jobs: Jobs, me: CurrentCustomer, order_id: PathId) -> RefillMadeOut:
    made = await ordering.request_refill(tx, jobs, me.user_id, order_id)
    return RefillMadeOut(refill=made.refill_id)


@shop.post("/orders/{order_id}/cancel", summary="Cancel an order (where the service allows)")
async def cancel_order(tx: Tx, jobs: Jobs, me: CurrentCustomer, order_id: PathId) -> CanceledOut:
    await ordering.cancel_order(tx, jobs, me.user_id, order_id)
    return CanceledOut()


@money.get("/transactions", summary="Your balance movements (ledger entries), newest first")
async def transactions(
    db: Reader, me: CurrentCustomer, cursor: Cursor = None, limit: Page = 50
) -> TransactionPage:
    rows = await ledger.list_entries(
        db, limit=limit + 1, offset=0, user_id=me.user_id, before_id=cursor
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return TransactionPage(
        transactions=[
            TransactionOut(
                id=e.id,
                kind=e.kind,
                amount=format_money(e.amount),
                balance_after=format_money(e.balance_after),
                reason=e.reason,
                order_id=e.order_id,
                created_at=e.created_at,
            )
            for e in rows
        ],
        next_cursor=rows[-1].id if more and rows else None,
    )


def deposit_out(p: Payment, panel_currency: str, receipt_url: str | None = None) -> DepositOut:
    return DepositOut(
        payment=p.id,
        gateway=p.gateway,
        amount=f"{p.amount:.2f}",
        currency=p.currency,
        credit=format_money(p.credit_amount),
        credit_currency=panel_currency,
        status=p.status,
        pay_url=p.pay_url,
        created_at=p.created_at,
        paid_at=p.paid_at,
        receipt_url=receipt_url,
    )


@money.get("/deposits", summary="Your deposit invoices, newest first")
async def list_deposits(
    db: Reader, services: ServicesDep, me: CurrentCustomer, limit: Page = 50
) -> list[DepositOut]:
    rows = list(
        await db.scalars(
            select(Payment)
            .where(Payment.user_id == me.user_id)
            .order_by(Payment.id.desc())
            .limit(limit)
        )
    )
    links = await receipts.links_of(db, [p.id for p in rows])
    return [deposit_out(p, services.settings.currency, links.get(p.id)) for p in rows]


@money.post(
    "/deposits",
    status_code=201,
    summary="Create a deposit invoice (pay at the gateway's `pay_url`)",
    description="The rules of /payments/invoice: `gateway` (robokassa, freekassa, "
    "yookassa, where configured), `amount` in the panel's currency, at least MIN_DEPOSIT.",
)
async def create_deposit(
    request: Request, services: ServicesDep, me: CurrentCustomer, body: DepositIn
) -> DepositOut:
    payment = await payments.open_invoice(
        services.db,
        services.settings,
        services.http,
        user_id=me.user_id,
        gateway=body.gateway,
        amount=body.amount,
        ip=request.client.host if request.client else None,
    )
    return deposit_out(payment, services.settings.currency)


@mine.get("/referrals", summary="Your referral code and link, sign-ups and earnings")
async def my_referrals(db: Reader, services: ServicesDep, me: CurrentCustomer) -> ReferralsOut:
    got = await referrals.summary(db, me.user_id)
    base = services.settings.public_url.rstrip("/")
    return ReferralsOut(
        code=got.code,
        link=f"{base}/?ref={got.code}" if got.code else None,
        signups=got.signups,
        earnings=[MonthOut(month=m, earned=format_money(s)) for m, s in got.monthly],
        rewards=[
            RewardOut(
                id=r.id,
                referred_id=r.referred_id,
                deposit_amount=format_money(r.deposit_amount),
                amount=format_money(r.amount),
                status=r.status,
                created_at=r.created_at,
            )
            for r in got.rewards
        ],
        commission=plain(services.settings.referral_share),
        payouts_mode=services.settings.affiliate_payouts,
        min_payout=format_money(services.settings.affiliate_min_payout),
        available=format_money(got.available),
        payouts=[payout_out(p) for p in got.payouts],
    )


def payout_out(payout: ReferralPayout) -> PayoutOut:
    return PayoutOut(
        id=payout.id,
        amount=format_money(payout.amount),
        status=payout.status,
        created_at=payout.created_at,
        decided_at=payout.decided_at,
    )


@mine.post(
    "/referrals/payouts",
    status_code=201,
    summary="Ask for a payout of your referral earnings to your balance",
    description="Every reward earned and not yet requested, at once: credited now "
    "(AFFILIATE_PAYOUTS=request) or once the operator approves it (review). Refused below "
    "the minimum payout, while a request is under review, and when rewards are credited "
    "at once (balance).",
)
async def request_payout(tx: Tx, services: ServicesDep, me: CurrentCustomer) -> PayoutOut:
    rules = referrals.PayoutRules.of(services.settings)
    return payout_out(await referrals.request_payout(tx, rules, me.user_id))


@mine.get(
    "/privacy/export",
    summary="Everything the panel holds about you (the JSON of the operator's export)",
    response_model=dict[str, Any],
)
async def export(db: Reader, me: CurrentCustomer) -> JSONResponse:
    made = await privacy.own_export(db, me.user_id)
    return JSONResponse(made.content, headers={"Content-Disposition": made.disposition})


@mine.post(
    "/privacy/deletion",
    status_code=202,
    summary="Ask for your personal data to be deleted",
    description="The operator completes the request by its `deadline` (30 days); asking "
    "again answers the open request.",
)
async def request_deletion(tx: Tx, services: ServicesDep, me: CurrentCustomer) -> DeletionOut:
    made = await privacy.request_deletion(tx, me.user_id, services.settings.client_deletion_days)
    return DeletionOut(
        id=made.id,
        requested_at=made.requested_at,
        deadline=made.deadline,
        completed_at=made.completed_at,
    )


hooks = APIRouter(tags=["client: status webhook"])


@hooks.put(
    "/webhook",
    summary="Set your status webhook (an empty URL removes it)",
    description="Each status change of your orders and refills is POSTed to the URL as a "
    "JSON event signed per Standard Webhooks. The signing secret is in this answer only; "
    "setting the URL again makes a new one.",
)
async def put_webhook(
    tx: Tx, services: ServicesDep, me: CurrentCustomer, body: WebhookIn
) -> WebhookSetOut:
    done = await webhooks.set_endpoint(tx, services.settings, me.user_id, body.url)
    return WebhookSetOut(webhook=done.url, secret=done.secret)


@hooks.get("/webhook", summary="Your status webhook (its secret is never shown again)")
async def get_webhook(db: Reader, me: CurrentCustomer) -> WebhookOut:
    return endpoint_out(await webhooks.get_endpoint(db, me.user_id))


@hooks.get("/webhook/deliveries", summary="Your webhook events and their delivery, newest first")
async def webhook_deliveries(
    db: Reader, me: CurrentCustomer, limit: Page = 50
) -> list[DeliveryOut]:
    rows = await webhooks.deliveries(db, user_id=me.user_id, limit=limit)
    return [delivery_out(e) for e in rows]


# Every part of /client/v1 (the tests enumerate the routes of each).
PARTS = (signup.router, account, shop, money, mine, support.router, hooks)
router = APIRouter(prefix="/client/v1")
for part in PARTS:
    router.include_router(part)
