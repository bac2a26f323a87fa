"""One of everything the console shows, made through the domains' own functions, with the
ids a page address needs (`{user_id}`, `{order_id}`…): a customer with a deposit and an
order under review by a ticket, a service in a category, a provider that is never called
(its address refuses connections), an alert, a canned answer, a staff member with a token,
a deletion request, a referral reward and a payout request, a gateway payment with its
notification, an announcement."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import func, select

from app.alerts import service as alerts
from app.audit.models import AuditEntry
from app.catalog import service as catalog
from app.context import AppContext
from app.ledger.models import LedgerEntry
from app.mail.service import Mailer
from app.news import service as news
from app.news.schemas import NewsIn
from app.payments import service as payments
from app.payments.models import Payment, PaymentNotification
from app.privacy import service as privacy
from app.providers.service import create_provider
from app.referrals import service as referrals
from app.referrals.models import ReferralPayout, ReferralReward
from app.staff import service as staff
from app.tickets import service as tickets
from tests.support.api import Api, MakeService, MakeUser, order_id_of
from tests.support.staff import make_staff

NOWHERE = "http://127.0.0.1:9/api/v2"  # the discard port: nothing listens


@dataclass
class World:
    ids: dict[str, int | str] = field(default_factory=dict)
    changes: tuple[int, int] = (0, 0)  # audit and ledger entries once made


async def make_world(
    ctx: AppContext, api: Api, make_user: MakeUser, make_service: MakeService
) -> World:
    world = World()
    customer = await make_user("10", "world@shop.example")
    friend = await make_user("0", "friend@shop.example")
    service_id = await make_service()
    order_id = order_id_of(
        await api(customer.key, "add", service=service_id, link="https://x.com/w", quantity=1000)
    )
    member = await make_staff(ctx, "support", "world@staff.example")
    notify = tickets.Notify(Mailer(ctx.db, "console", "panel"), None)
    async with ctx.db.transaction() as session:
        ticket = await tickets.open_ticket(
            session,
            notify,
            customer.user_id,
            subject="Not delivered",
            category="order",
            message="Please look",
            order_ids=[order_id],
        )
        provider = await create_provider(
            session, secret=ctx.settings.secret_key, name="Quiet", url=NOWHERE, api_key="k"
        )
        await alerts.raise_alert(
            session, alerts.BALANCE_LOW, "provider", provider.id, "balance low", once=True
        )
        (alert,) = await alerts.list_alerts(session, limit=1)
        service = await catalog.get_service(session, service_id)
        canned = await tickets.save_canned(session, None, {"title": "Thanks", "body": "Thank you"})
        request = await privacy.request_deletion(session, friend.user_id, 30)
        await referrals.set_referrer(session, friend.user_id, await code_of(ctx, customer.user_id))
        await payments.manual_topup(
            session,
            ctx.settings,
            user_id=friend.user_id,
            amount=Decimal("20"),
            reason="Bank transfer",
            operator="world",
        )
        tokens = await staff.list_tokens(session, member.id)
        payout = ReferralPayout(user_id=customer.user_id, amount=Decimal("1"), status="pending")
        session.add(payout)
        announcement = await news.publish(
            session, NewsIn(title_en="Welcome", body_en="The panel is open."), "world"
        )
        # A gateway invoice as a notification found it (no gateway is configured in tests).
        payment = Payment(
            user_id=customer.user_id,
            gateway="robokassa",
            amount=Decimal("909.10"),
            currency="RUB",
            credit_amount=Decimal("10"),
        )
        session.add(payment)
        await session.flush()
        session.add(
            PaymentNotification(
                gateway="robokassa", payment_id=payment.id, outcome="bad_signature", payload={}
            )
        )
    async with ctx.db.session() as session:
        reward = await session.scalar(select(func.max(ReferralReward.id)))
    world.ids = {
        "user_id": customer.user_id,
        "order_id": order_id,
        "service_id": service_id,
        "category_id": service.category_id,
        "alert_id": alert.id,
        "ticket_id": ticket.id,
        "provider_id": provider.id,
        "canned_id": canned.id,
        "staff_id": member.id,
        "token_id": tokens[0].id,
        "session_id": 1,
        "request_id": request.id,
        "reward_id": int(reward or 1),
        "action": "resend",
        "payment_id": payment.id,
        "code": "EUR",
        "news_id": announcement.id,
        "payout_id": payout.id,
    }
    world.changes = await counts(ctx)
    return world


async def code_of(ctx: AppContext, user_id: int) -> str:
    from app.accounts.models import User

    async with ctx.db.session() as session:
        code = await session.scalar(select(User.referral_code).where(User.id == user_id))
    assert code is not None
    return code


async def counts(ctx: AppContext) -> tuple[int, int]:
    async with ctx.db.session() as session:
        audit = await session.scalar(select(func.count(AuditEntry.id)))
        ledger = await session.scalar(select(func.count(LedgerEntry.id)))
    return int(audit or 0), int(ledger or 0)
