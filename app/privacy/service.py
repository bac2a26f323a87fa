"""A user's data: export, erasure of personal fields, and purges after retention.

Erasure keeps the money records (orders' amounts, ledger, payments) for the legal retention
period, counted from the erasure; the purge removes them afterwards. Activity logs (audit
log, upstream history, gateway notifications) and closed support tickets are kept for
their own period, then purged. Support tickets go with an erased user at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, cast

from fastapi.encoders import jsonable_encoder
from sqlalchemy import CursorResult, delete, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.models import ApiKey, User
from app.accounts.service import revoke_keys
from app.alerts.models import Alert
from app.audit.models import AuditEntry
from app.audit.service import record
from app.customers import service as customers
from app.db import utcnow
from app.errors import Conflict, NotFound
from app.ledger import service as ledger
from app.ledger.models import LedgerEntry
from app.legal.models import LegalAcceptance
from app.money import plain
from app.notifications.models import NotificationSettings
from app.orders.models import ACTIVE_STATUSES, Order, UpstreamEvent
from app.payments.models import Chargeback, Payment, PaymentNotification
from app.privacy.models import DeletionRequest
from app.providers.models import CatalogChange
from app.receipts.models import Receipt
from app.referrals.models import ReferralPayout, ReferralReward
from app.refills.models import Refill
from app.tickets import service as tickets

PERSONAL_FIELDS = ("email", "name")


def _row(obj: Any, columns: tuple[str, ...]) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in columns}


async def export_user(session: AsyncSession, user_id: int) -> dict[str, Any]:
    """Everything the panel holds about a user (JSON-ready after encoding)."""
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound("User not found")

    async def rows(stmt: Any, columns: tuple[str, ...]) -> list[dict[str, Any]]:
        return [_row(obj, columns) for obj in await session.scalars(stmt)]

    uid = str(user_id)
    return {
        "user": _row(
            user,
            (
                "id",
                "email",
                "name",
                "status",
                "currency",
                "balance",
                "credit_limit",
                "discount_percent",
                "referral_code",
                "referred_by_id",
                "created_at",
                "blocked_at",
                "deleted_at",
            ),
        ),
        "api_keys": await rows(
            select(ApiKey).where(ApiKey.user_id == user_id).order_by(ApiKey.id),
            ("id", "prefix", "created_at", "revoked_at"),
        ),
        "orders": await rows(
            select(Order).where(Order.user_id == user_id).order_by(Order.id),
            (
                "id",
                "parent_id",
                "service_id",
                "type",
                "link",
                "quantity",
                "runs",
                "interval_minutes",
                "params",
                "rate",
                "charge",
                "refunded",
                "start_count",
                "remains",
                "status",
                "created_at",
                "finished_at",
            ),
        ),
        "refills": await rows(
            select(Refill).where(Refill.user_id == user_id).order_by(Refill.id),
            ("id", "order_id", "status", "created_at"),
        ),
        "ledger": await rows(
            select(LedgerEntry).where(LedgerEntry.user_id == user_id).order_by(LedgerEntry.id),
            (
                "id",
                "kind",
                "amount",
                "balance_after",
                "reason",
                "order_id",
                "payment_ref",
                "created_at",
            ),
        ),
        "payments": await rows(
            select(Payment).where(Payment.user_id == user_id).order_by(Payment.id),
            (
                "id",
                "gateway",
                "amount",
                "currency",
                "credit_amount",
                "status",
                "external_id",
                "created_at",
                "paid_at",
            ),
        ),
        "legal_acceptances": await rows(
            select(LegalAcceptance)
            .where(LegalAcceptance.user_id == user_id)
            .order_by(LegalAcceptance.id),
            ("document", "version_id", "action", "reference", "ip", "at"),
        ),
        "receipts": await rows(
            select(Receipt).where(Receipt.user_id == user_id).order_by(Receipt.id),
            ("id", "payment_id", "amount", "currency", "status", "url", "created_at"),
        ),
        "referral_rewards_earned": await rows(
            select(ReferralReward)
            .where(ReferralReward.referrer_id == user_id)
            .order_by(ReferralReward.id),
            ("id", "referred_id", "deposit_amount", "amount", "status", "created_at"),
        ),
        "audit_log": await rows(
            select(AuditEntry)
            .where(AuditEntry.entity == "user", AuditEntry.entity_id == uid)
            .order_by(AuditEntry.id),
            ("id", "actor", "action", "before", "after", "created_at"),
        ),
        "support_tickets": await tickets.export_of(session, user_id),
    }


@dataclass(frozen=True)
class OwnExport:
    """A user's export as they download it (/client/v1, the storefront)."""

    content: Any  # the JSON values of `export_json`
    disposition: str  # its Content-Disposition: an attachment named user-<id>.json


async def own_export(session: AsyncSession, user_id: int) -> OwnExport:
    data = await export_user(session, user_id)
    named = f'attachment; filename="user-{user_id}.json"'
    return OwnExport(export_json(data), named)


def export_json(data: dict[str, Any]) -> Any:
    """The export as JSON values: money stays exact, as plain decimal strings (never floats,
    never exponent notation). One rendering for the operator's and the user's own export."""
    return jsonable_encoder(data, custom_encoder={Decimal: plain})


@dataclass(frozen=True)
class Erased:
    user_id: int
    orders_scrubbed: int
    erased_at: datetime


async def erase_user(session: AsyncSession, user_id: int) -> Erased:
    """Erase personal fields now; money records stay until the retention period ends."""
    user = await session.scalar(select(User).where(User.id == user_id).with_for_update())
    if user is None:
        raise NotFound("User not found")
    if user.deleted_at is not None:
        raise Conflict("This user's data was already erased")
    active = await session.scalar(
        select(func.count())
        .select_from(Order)
        .where(Order.user_id == user_id, Order.status.in_(ACTIVE_STATUSES))
    )
    if active:
        raise Conflict(
            f"The user has {active} active order(s): cancel them or block the account first"
        )
    now = utcnow()
    await revoke_keys(session, user_id, at=now)
    await customers.forget_user(session, user_id)
    # The linked Telegram chat is theirs too; nothing is told to an erased account.
    await session.execute(
        delete(NotificationSettings).where(NotificationSettings.user_id == user_id)
    )
    user.email = None
    user.name = None
    user.referral_code = None
    user.deleted_at = now
    # Links, usernames, comments… are the user's personal data; amounts are money records.
    scrubbed = await session.execute(
        update(Order)
        .where(Order.user_id == user_id)
        .values(link="", link_normalized="", params={})
        .returning(Order.id)
    )
    orders_scrubbed = len(scrubbed.all())
    # The requests recorded with each attempt upstream carry the same links and fields.
    await session.execute(
        text(
            "UPDATE upstream_events SET detail = detail - 'request'"
            " WHERE order_id IN (SELECT id FROM orders WHERE user_id = :uid)"
        ),
        {"uid": user_id},
    )
    await session.execute(
        update(PaymentNotification)
        .where(
            PaymentNotification.payment_id.in_(select(Payment.id).where(Payment.user_id == user_id))
        )
        .values(payload={}, remote_addr=None)
    )
    # The audit log keeps what was done, not who the person was.
    await session.execute(
        text(
            "UPDATE audit_log SET"
            " before = CASE WHEN jsonb_typeof(before) = 'object'"
            " THEN before - ARRAY['email', 'name'] ELSE before END,"
            " after = CASE WHEN jsonb_typeof(after) = 'object'"
            " THEN after - ARRAY['email', 'name'] ELSE after END"
            " WHERE entity = 'user' AND entity_id = :uid"
        ),
        {"uid": str(user_id)},
    )
    # Support tickets are the user's words: they go, and the audit log keeps no text of them.
    await session.execute(
        text(
            "UPDATE audit_log SET"
            " before = CASE WHEN jsonb_typeof(before) = 'object'"
            " THEN before - 'body' ELSE before END,"
            " after = CASE WHEN jsonb_typeof(after) = 'object'"
            " THEN after - 'body' ELSE after END"
            " WHERE entity = 'ticket'"
            " AND entity_id IN (SELECT id::text FROM tickets WHERE user_id = :uid)"
        ),
        {"uid": user_id},
    )
    await tickets.erase_of(session, [user_id])
    await session.flush()
    return Erased(user_id=user_id, orders_scrubbed=orders_scrubbed, erased_at=now)


async def purge_erased_users(session: AsyncSession, cutoff: datetime) -> list[int]:
    """Remove every record of users erased before `cutoff`; returns their ids."""
    ids = list(
        await session.scalars(
            select(User.id).where(User.deleted_at.is_not(None), User.deleted_at < cutoff)
        )
    )
    if not ids:
        return []
    orders = select(Order.id).where(Order.user_id.in_(ids))
    refills = select(Refill.id).where(Refill.user_id.in_(ids))
    payments = select(Payment.id).where(Payment.user_id.in_(ids))
    await session.execute(
        delete(UpstreamEvent).where(
            UpstreamEvent.order_id.in_(orders) | UpstreamEvent.refill_id.in_(refills)
        )
    )
    await session.execute(delete(Refill).where(Refill.user_id.in_(ids)))
    await session.execute(delete(Order).where(Order.user_id.in_(ids), Order.parent_id.is_not(None)))
    await session.execute(delete(Order).where(Order.user_id.in_(ids)))
    await session.execute(
        delete(PaymentNotification).where(PaymentNotification.payment_id.in_(payments))
    )
    await session.execute(delete(Payment).where(Payment.user_id.in_(ids)))
    # Acceptances, receipts and disputes are kept as long as the money records.
    await session.execute(delete(LegalAcceptance).where(LegalAcceptance.user_id.in_(ids)))
    await session.execute(delete(Receipt).where(Receipt.user_id.in_(ids)))
    await session.execute(delete(Chargeback).where(Chargeback.user_id.in_(ids)))
    await session.execute(delete(ReferralReward).where(ReferralReward.referrer_id.in_(ids)))
    await session.execute(delete(ReferralPayout).where(ReferralPayout.user_id.in_(ids)))
    entries = await ledger.purge_entries(session, ids)
    await session.execute(
        delete(AuditEntry).where(
            AuditEntry.entity == "user", AuditEntry.entity_id.in_([str(i) for i in ids])
        )
    )
    # API keys and custom rates go with the user (ON DELETE CASCADE); users they referred
    # and rewards they generated for others lose the link (ON DELETE SET NULL).
    await session.execute(delete(User).where(User.id.in_(ids)))
    # The purge leaves its own trace (ids only: nothing personal is left to keep).
    await record(
        session,
        actor="retention",
        action="ledger.purge",
        entity="ledger",
        after={"user_ids": ids, "entries": entries, "erased_before": cutoff.isoformat()},
    )
    return ids


async def purge_activity(session: AsyncSession, cutoff: datetime) -> dict[str, int]:
    """Drop activity-log rows older than `cutoff`."""
    counts: dict[str, int] = {}
    for name, model in (
        ("audit_log", AuditEntry),
        ("upstream_events", UpstreamEvent),
        ("payment_notifications", PaymentNotification),
        ("alerts", Alert),
        ("catalog_changes", CatalogChange),
    ):
        result = await session.execute(delete(model).where(model.created_at < cutoff))
        counts[name] = cast(CursorResult[Any], result).rowcount
    counts["tickets"] = await tickets.purge_closed_before(session, cutoff)
    return counts


async def request_deletion(session: AsyncSession, user_id: int, days: int) -> DeletionRequest:
    """The user's open deletion request (made now, due in `days`, or the one already open)."""
    open_one = await session.scalar(
        select(DeletionRequest).where(
            DeletionRequest.user_id == user_id, DeletionRequest.completed_at.is_(None)
        )
    )
    if open_one is not None:
        return open_one
    now = utcnow()
    made = DeletionRequest(user_id=user_id, requested_at=now, deadline=now + timedelta(days=days))
    session.add(made)
    await session.flush()
    return made


async def open_deletion_requests(session: AsyncSession) -> list[DeletionRequest]:
    """Open requests, the nearest deadline first."""
    return list(
        await session.scalars(
            select(DeletionRequest)
            .where(DeletionRequest.completed_at.is_(None))
            .order_by(DeletionRequest.deadline, DeletionRequest.id)
        )
    )


async def overdue_deletion_requests(session: AsyncSession) -> int:
    count = await session.scalar(
        select(func.count(DeletionRequest.id)).where(
            DeletionRequest.completed_at.is_(None), DeletionRequest.deadline < func.now()
        )
    )
    return int(count or 0)


async def complete_deletion(
    session: AsyncSession, request_id: int, operator: str
) -> tuple[DeletionRequest, Erased]:
    """Run the erasure for an open request and close it (409 while orders are active)."""
    request = await session.scalar(
        select(DeletionRequest).where(DeletionRequest.id == request_id).with_for_update()
    )
    if request is None:
        raise NotFound("Deletion request not found")
    if request.completed_at is not None:
        raise Conflict("This deletion request is already completed")
    erased = await erase_user(session, request.user_id)
    request.completed_at = erased.erased_at
    request.completed_by = operator
    await session.flush()
    return request, erased
