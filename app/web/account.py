"""The signed-in customer's pages beyond ordering: add funds, transactions, account
(profile, language, time zone, password, two-factor with a QR code drawn on the server,
sessions, API key, status webhook with its recent deliveries), affiliates, the API page
with the customer's key, privacy requests. Each action is the domain function /client/v1
calls too, in the request's transaction."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated

import segno
from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts import service as accounts
from app.accounts.models import ApiKey
from app.currencies import service as currencies
from app.customers import service as customers
from app.customers import signin
from app.customers.models import LANGUAGES
from app.customers.schemas import ZONES
from app.errors import DomainError
from app.http.context import ServicesDep
from app.http.tx import Reader, Tx
from app.ledger import service as ledger
from app.notifications import service as notifications
from app.payments import service as payments
from app.payments.gateways import METHODS, TITLES
from app.payments.models import GATEWAYS, PAYMENT_PENDING, Payment
from app.privacy import service as privacy
from app.receipts import service as receipts
from app.referrals import service as referrals
from app.web import apidoc, i18n
from app.web.forms import posted
from app.web.render import Visitor, page, redirect, signed_in
from app.webhooks import service as webhooks
from app.webhooks.schemas import endpoint_out

router = APIRouter()
Me = Annotated[Visitor, Depends(signed_in)]
PAGE_SIZE = 25
ZONE_LIST = sorted(ZONES)
# The currencies a customer may read amounts in besides the panel's own.
SHOWN_CURRENCIES = ("RUB",)
DELIVERIES_SHOWN = 10


async def funds_page(
    who: Visitor, db: AsyncSession, status: int = 200, **values: object
) -> Response:
    settings = who.services.settings
    deposits = list(
        await db.scalars(
            select(Payment)
            .where(Payment.user_id == who.me.user_id)
            .order_by(Payment.id.desc())
            .limit(20)
        )
    )
    usable = [g for g in GATEWAYS if payments.configured(settings, g)]
    return page(
        who,
        "funds.html",
        status,
        gateways=usable,
        titles=TITLES,
        methods=METHODS,
        deposits=deposits,
        receipt_links=await receipts.links_of(db, [p.id for p in deposits]),
        min_deposit=settings.min_deposit,
        pending=PAYMENT_PENDING,
        **values,
    )


@router.get("/funds")
async def funds(who: Me, db: Reader) -> Response:
    return await funds_page(who, db, form={})


@router.post("/funds")
async def add_funds(who: Me, db: Reader, services: ServicesDep) -> Response:
    """The invoice is opened as /client/v1/deposits opens it: committed on its own, then
    created at the gateway outside any transaction (payments.open_invoice). The amount is
    typed in the currency the customer reads (`5,5` or `5.5`); after a refusal the form
    keeps what was chosen."""
    fields = await posted(who)
    try:
        made = await payments.open_invoice(
            services.db,
            services.settings,
            services.http,
            user_id=who.me.user_id,
            gateway=fields.get("gateway", ""),
            amount=fields.get("amount", ""),
            entered_in=who.entry_currency,
            ip=who.request.client.host if who.request.client else None,
        )
    except payments.DepositTooSmall as exc:
        least = who._("Minimum deposit is %(min)s", min=who.money(exc.minimum))
        return await funds_page(who, db, 422, error=least, form=fields)
    except DomainError as exc:
        return await funds_page(who, db, 422, error=who.error(exc.message), form=fields)
    return page(who, "invoice.html", invoice=made, titles=TITLES, pending=PAYMENT_PENDING)


@router.get("/funds/return")
async def funds_return(who: Me) -> Response:
    return page(who, "funds_return.html")


@router.get("/funds/{payment_id}")
async def invoice(who: Me, db: Reader, payment_id: int) -> Response:
    """An invoice again: a pending one with its link to pay."""
    try:
        made = await payments.own_payment(db, who.me.user_id, payment_id)
    except DomainError as exc:
        return page(who, "message.html", 404, message=who.error(exc.message))
    receipt = (await receipts.links_of(db, [made.id])).get(made.id)
    return page(
        who,
        "invoice.html",
        invoice=made,
        titles=TITLES,
        pending=PAYMENT_PENDING,
        receipt_url=receipt,
    )


@router.get("/funds/{payment_id}/pay")
async def pay(who: Me, db: Reader, payment_id: int) -> Response:
    """To the gateway's payment page of a pending invoice (the pages link only to the
    panel; this is the one step out)."""
    try:
        made = await payments.own_payment(db, who.me.user_id, payment_id)
    except DomainError as exc:
        return page(who, "message.html", 404, message=who.error(exc.message))
    if made.status != PAYMENT_PENDING or not made.pay_url:
        return redirect(who, f"/web/funds/{made.id}")
    return RedirectResponse(made.pay_url, status_code=303)


@router.get("/transactions")
async def transactions(who: Me, db: Reader, before: int = 0) -> Response:
    rows = await ledger.list_entries(
        db, limit=PAGE_SIZE + 1, offset=0, user_id=who.me.user_id, before_id=before or None
    )
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    return page(
        who,
        "transactions.html",
        entries=rows,
        before=before,
        next_before=rows[-1].id if more and rows else None,
    )


async def account_page(
    who: Visitor, db: AsyncSession, status: int = 200, **values: object
) -> Response:
    user = await accounts.get_live_user(db, who.me.user_id)
    login = await customers.login_of(db, who.me.user_id)
    sessions = await customers.list_sessions(db, who.me.user_id)
    keys = list(
        await db.scalars(
            select(ApiKey).where(ApiKey.user_id == who.me.user_id, ApiKey.revoked_at.is_(None))
        )
    )
    hook = endpoint_out(await webhooks.get_endpoint(db, who.me.user_id))
    notify = await notifications.settings_of(db, who.me.user_id)
    deliveries = await webhooks.deliveries(db, user_id=who.me.user_id, limit=DELIVERIES_SHOWN)
    return page(
        who,
        "account.html",
        status,
        user=user,
        login=login,
        sessions=sessions,
        keys=keys,
        languages=LANGUAGES,
        zones=ZONE_LIST,
        currencies=await readable_currencies(db, who),
        hook=hook,
        deliveries=deliveries,
        notify=notify,
        notify_below=i18n.number(notify.low_balance_below, who.language),
        telegram_on=notifications.bot_of(who.services.settings) is not None,
        **values,
    )


@router.get("/account")
async def account(who: Me, db: Reader, done: str = "") -> Response:
    return await account_page(who, db, done=done[:40])


async def readable_currencies(db: AsyncSession, who: Visitor) -> list[str]:
    """What a customer may read amounts in: the panel's currency, and roubles when the
    panel knows their rate."""
    shown = [who.currency]
    for code in SHOWN_CURRENCIES:
        if code in shown:
            continue
        try:
            await currencies.conversion_rate(db, who.services.settings, code)
        except currencies.NoConversionRate:
            continue
        shown.append(code)
    return shown


@router.post("/account/profile")
async def profile(who: Me, tx: Tx) -> Response:
    fields = await posted(who)
    language = fields.get("language", who.language)
    zone = fields.get("timezone", "UTC").strip()
    code = fields.get("currency", who.entry_currency).strip().upper()
    if language not in LANGUAGES:
        return await account_page(who, tx, 422, profile_error=who.error("Incorrect language"))
    if zone not in ZONES:
        return await account_page(who, tx, 422, profile_error=who.error("Incorrect timezone"))
    if code not in await readable_currencies(tx, who):
        return await account_page(who, tx, 422, profile_error=who.error("Incorrect currency"))
    await customers.update_profile(
        tx,
        who.me.user_id,
        name=fields.get("name", "")[:200],
        language=language,
        timezone=zone,
        display_currency="" if code == who.currency else code,
    )
    return redirect(who, "/web/account?done=profile")


@router.post("/account/password")
async def password(who: Me, tx: Tx) -> Response:
    fields = await posted(who)
    try:
        async with tx.begin_nested():
            await signin.confirmed(
                who.services,
                who.me.user_id,
                lambda: customers.change_password(
                    tx,
                    who.me.user_id,
                    current=fields.get("current", ""),
                    new=fields.get("new", ""),
                    keep_session=who.me.session_id,
                ),
            )
    except DomainError as exc:
        return await account_page(who, tx, 422, password_error=who.error(exc.message))
    return redirect(who, "/web/account?done=password")


@router.post("/account/2fa/setup")
async def totp_setup(who: Me, tx: Tx) -> Response:
    await posted(who)
    secret_key = who.services.settings.secret_key
    try:
        async with tx.begin_nested():
            made = await customers.setup_totp(tx, secret_key, who.me.user_id, who.email)
    except DomainError as exc:
        return await account_page(who, tx, 409, totp_error=who.error(exc.message))
    qr = segno.make(made.uri, error="m").svg_inline(scale=4, title="QR")
    return await account_page(who, tx, totp_secret=made.secret, totp_qr=qr)


@router.post("/account/2fa/enable")
async def totp_enable(who: Me, tx: Tx) -> Response:
    fields = await posted(who)
    secret_key = who.services.settings.secret_key
    try:
        code = fields.get("code", "")
        async with tx.begin_nested():
            codes = await signin.confirmed(
                who.services,
                who.me.user_id,
                lambda: customers.enable_totp(tx, secret_key, who.me.user_id, code),
            )
    except DomainError as exc:
        return await account_page(who, tx, 422, totp_error=who.error(exc.message))
    return await account_page(who, tx, recovery_codes=codes)


@router.post("/account/2fa/disable")
async def totp_disable(who: Me, tx: Tx) -> Response:
    fields = await posted(who)
    secret_key = who.services.settings.secret_key
    try:
        code = fields.get("code", "")
        async with tx.begin_nested():
            await signin.confirmed(
                who.services,
                who.me.user_id,
                lambda: customers.disable_totp(tx, secret_key, who.me.user_id, code),
            )
    except DomainError as exc:
        return await account_page(who, tx, 422, totp_error=who.error(exc.message))
    return redirect(who, "/web/account?done=2fa-off")


@router.post("/account/sessions/{session_id}/revoke")
async def revoke(who: Me, tx: Tx, session_id: int) -> Response:
    await posted(who)
    try:
        async with tx.begin_nested():
            await customers.revoke_session(tx, who.me.user_id, session_id)
    except DomainError as exc:
        return await account_page(who, tx, 404, sessions_error=who.error(exc.message))
    return redirect(who, "/web/account?done=session")


@router.post("/account/api-key")
async def rotate_key(who: Me, tx: Tx) -> Response:
    await posted(who)
    issued = await accounts.rotate_key(tx, who.me.user_id)
    # Shown once: the API page with the new key filled into its examples.
    return api_page(who, issued.key, issued.prefix)


@router.post("/account/webhook")
async def set_webhook(who: Me, tx: Tx) -> Response:
    """Set (or, with an empty URL, remove) the status webhook; a new signing secret is
    shown once, on this answer only."""
    fields = await posted(who)
    url = fields.get("url", "")
    try:
        async with tx.begin_nested():
            done = await webhooks.set_endpoint(tx, who.services.settings, who.me.user_id, url)
    except DomainError as exc:
        return await account_page(
            who, tx, 422, webhook_error=who.error(exc.message), webhook_url=url[:2000]
        )
    if done.secret is None:
        return redirect(who, "/web/account?done=webhook-removed#webhook-h")
    return await account_page(who, tx, webhook_secret=done.secret)


def checked(fields: dict[str, str], name: str) -> bool:
    return fields.get(name) == "on"


@router.post("/account/notifications")
async def choose_notifications(who: Me, tx: Tx) -> Response:
    fields = await posted(who)
    below = parse_amount(fields.get("low_balance_below", "") or "0")
    if below is None:
        return await account_page(
            who, tx, 422, notify_error=who.error("Enter an amount, such as 5 or 5,50")
        )
    choices = notifications.Choices(
        order_completed=checked(fields, "order_completed"),
        order_partial=checked(fields, "order_partial"),
        order_canceled=checked(fields, "order_canceled"),
        low_balance=checked(fields, "low_balance"),
        low_balance_below=below,
        by_mail=checked(fields, "by_mail"),
    )
    await notifications.choose(tx, who.me.user_id, choices)
    return redirect(who, "/web/account?done=notifications#notify-h")


def parse_amount(text: str) -> Decimal | None:
    """A non-negative amount as people type it (a decimal point or comma)."""
    try:
        value = Decimal(text.strip().replace(",", ".").replace(" ", ""))
    except InvalidOperation:
        return None
    if not value.is_finite() or value < 0 or value >= 10**12:
        return None
    return value.quantize(Decimal("0.00000001"))


@router.post("/account/telegram/link")
async def link_telegram(who: Me, tx: Tx) -> Response:
    """A one-time code for the panel's bot (and a link to it, once the worker has read
    the bot's name)."""
    await posted(who)
    code = await notifications.new_link_code(tx, who.me.user_id)
    name = await notifications.bot_username(tx)
    return await account_page(who, tx, telegram_code=code, bot_name=name)


@router.post("/account/telegram/unlink")
async def unlink_telegram(who: Me, tx: Tx) -> Response:
    await posted(who)
    await notifications.unlink(tx, who.me.user_id)
    return redirect(who, "/web/account?done=telegram-off#telegram-h")


def api_page(who: Visitor, key: str | None, prefix: str | None) -> Response:
    """API v2 documented with the customer's key and the panel's own address."""
    base = who.services.settings.public_url.rstrip("/")
    order_statuses, refill_statuses = apidoc.statuses()
    return page(
        who,
        "api.html",
        base=base,
        key=key,
        prefix=prefix,
        actions=apidoc.ACTIONS,
        types=apidoc.type_fields(),
        order_statuses=order_statuses,
        refill_statuses=refill_statuses,
        refusals=apidoc.REFUSALS,
    )


@router.get("/api")
async def api(who: Me, db: Reader) -> Response:
    prefix = await db.scalar(
        select(ApiKey.prefix)
        .where(ApiKey.user_id == who.me.user_id, ApiKey.revoked_at.is_(None))
        .order_by(ApiKey.id.desc())
        .limit(1)
    )
    return api_page(who, None, prefix)


async def affiliates_page(
    who: Visitor, db: AsyncSession, status: int = 200, **values: object
) -> Response:
    settings = who.services.settings
    got = await referrals.summary(db, who.me.user_id)
    base = settings.public_url.rstrip("/")
    link = f"{base}/?ref={got.code}" if got.code else None
    return page(
        who,
        "affiliates.html",
        status,
        summary=got,
        link=link,
        commission=i18n.percent(settings.referral_share, who.language),
        rules=referrals.PayoutRules.of(settings),
        **values,
    )


@router.get("/affiliates")
async def affiliates(who: Me, db: Reader, done: str = "") -> Response:
    return await affiliates_page(who, db, done=done[:40])


@router.post("/affiliates/payouts")
async def request_payout(who: Me, tx: Tx) -> Response:
    """The payout /client/v1/referrals/payouts asks for."""
    await posted(who)
    rules = referrals.PayoutRules.of(who.services.settings)
    try:
        async with tx.begin_nested():
            made = await referrals.request_payout(tx, rules, who.me.user_id)
    except DomainError as exc:
        return await affiliates_page(who, tx, 422, payout_error=who.error(exc.message))
    return redirect(who, f"/web/affiliates?done={made.status}#payouts-h")


@router.get("/privacy-requests")
async def privacy_page(who: Me, done: str = "") -> Response:
    return page(who, "privacy.html", done=done[:40])


@router.get("/privacy-requests/export")
async def privacy_export(who: Me, db: Reader) -> Response:
    made = await privacy.own_export(db, who.me.user_id)
    return JSONResponse(made.content, headers={"Content-Disposition": made.disposition})


@router.post("/privacy-requests/deletion")
async def privacy_deletion(who: Me, tx: Tx) -> Response:
    await posted(who)
    days = who.services.settings.client_deletion_days
    made = await privacy.request_deletion(tx, who.me.user_id, days)
    return page(who, "privacy.html", deletion=made)
