"""The evidence pack of a customer, for a payment dispute (ToS 4.6, ToU 3.5): who the
customer is, which versions of the legal texts they accepted (with the texts themselves),
when and from which address, every client address the panel saw, every invoice with the
gateway's notifications and its receipt, the ledger, every order with what its provider
reported, the tickets, and the chargebacks. One JSON document, money as exact strings."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.customers.models import CustomerSession
from app.db import utcnow
from app.legal import service as legal
from app.legal.models import LegalAcceptance, LegalVersion
from app.orders.models import Order, UpstreamEvent
from app.payments.models import Chargeback, Payment, PaymentNotification
from app.privacy import service as privacy
from app.receipts.models import Receipt


def _row(obj: Any, columns: tuple[str, ...]) -> dict[str, Any]:
    return {c: getattr(obj, c) for c in columns}


async def evidence_pack(session: AsyncSession, user_id: int) -> dict[str, Any]:
    """The pack as JSON values (`privacy.export_json`)."""
    held = await privacy.export_user(session, user_id)  # NotFound for an unknown user
    accepted = await legal.acceptances(session, user_id)
    pack: dict[str, Any] = {
        "generated_at": utcnow(),
        "user": held["user"],
        "acceptances": [vars(a) for a in accepted],
        "legal_versions": await _versions(session, user_id),
        "client_addresses": await _addresses(session, user_id),
        "invoices": await _invoices(session, user_id),
        "ledger": held["ledger"],
        "orders": await _orders(session, user_id, held["orders"]),
        "tickets": held["support_tickets"],
        "chargebacks": [
            _row(c, ("id", "payment_id", "reason", "source", "forfeited", "created_at"))
            for c in await session.scalars(
                select(Chargeback).where(Chargeback.user_id == user_id).order_by(Chargeback.id)
            )
        ],
        "audit_log": held["audit_log"],
    }
    return dict(privacy.export_json(pack))


async def _versions(session: AsyncSession, user_id: int) -> list[dict[str, Any]]:
    """The versions the customer accepted, with their words."""
    ids = select(LegalAcceptance.version_id).where(LegalAcceptance.user_id == user_id)
    rows = await session.scalars(
        select(LegalVersion).where(LegalVersion.id.in_(ids)).order_by(LegalVersion.id)
    )
    return [_row(v, ("id", "document", "language", "published_at", "text")) for v in rows]


async def _addresses(session: AsyncSession, user_id: int) -> list[dict[str, Any]]:
    """Every client address seen: sign-ins (with the browser) and acceptances."""
    seen: list[dict[str, Any]] = [
        {"ip": s.ip, "user_agent": s.user_agent, "at": s.created_at, "by": "sign-in"}
        for s in await session.scalars(
            select(CustomerSession)
            .where(CustomerSession.user_id == user_id)
            .order_by(CustomerSession.id)
        )
        if s.ip
    ]
    for a in await legal.acceptances(session, user_id):
        if a.ip:
            seen.append({"ip": a.ip, "user_agent": None, "at": a.at, "by": a.action})
    return sorted(seen, key=lambda s: s["at"])


async def _invoices(session: AsyncSession, user_id: int) -> list[dict[str, Any]]:
    out = []
    for p in await session.scalars(
        select(Payment).where(Payment.user_id == user_id).order_by(Payment.id)
    ):
        invoice = _row(
            p,
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
        )
        invoice["notifications"] = [
            _row(n, ("outcome", "remote_addr", "payload", "created_at"))
            for n in await session.scalars(
                select(PaymentNotification)
                .where(PaymentNotification.payment_id == p.id)
                .order_by(PaymentNotification.id)
            )
        ]
        receipt = await session.scalar(select(Receipt).where(Receipt.payment_id == p.id))
        invoice["receipt"] = (
            None
            if receipt is None
            else _row(receipt, ("status", "url", "external_id", "registered_at", "cancelled_at"))
        )
        out.append(invoice)
    return out


async def _orders(
    session: AsyncSession, user_id: int, orders: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The orders with what their providers reported (the upstream events)."""
    ids = select(Order.id).where(Order.user_id == user_id)
    reports: dict[int, list[dict[str, Any]]] = {}
    for e in await session.scalars(
        select(UpstreamEvent).where(UpstreamEvent.order_id.in_(ids)).order_by(UpstreamEvent.id)
    ):
        assert e.order_id is not None
        reports.setdefault(e.order_id, []).append(
            _row(e, ("action", "outcome", "detail", "created_at"))
        )
    return [{**o, "upstream_reports": reports.get(o["id"], [])} for o in orders]
