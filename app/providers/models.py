"""Upstream providers: other panels speaking API v2."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import BigInteger, Boolean, DateTime, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, Money, utcnow

WEBHOOK_PURPOSE = "provider-webhook-secrets"


class Provider(Base):
    __tablename__ = "providers"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    url: Mapped[str] = mapped_column(String(500))
    # Encrypted with SECRET_KEY; never returned by any API.
    api_key_encrypted: Mapped[str] = mapped_column(Text)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    currency: Mapped[str] = mapped_column(String(3), default="USD", server_default="USD")
    last_balance: Mapped[Decimal | None] = mapped_column(Money)
    last_balance_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The optional extensions it speaks (SPEC §4): probed when it is added and at each
    # catalog import (`action=capabilities`), or set by the operator (then pinned: the
    # probe no longer changes them).
    cap_request_id: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=text("false")
    )
    cap_status_by_request_id: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=text("false")
    )
    cap_webhooks: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    capabilities_pinned: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=text("false")
    )
    capabilities_checked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Our endpoint registered with a provider that sends status webhooks: the signing
    # secret it gave us (encrypted with the keyring, purpose WEBHOOK_PURPOSE).
    webhook_secret_encrypted: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=text("now()")
    )
    # Alert when the balance read falls below this (in the provider's currency; None: never).
    balance_threshold: Mapped[Decimal | None] = mapped_column(Money)
    # Catalog sync: every this many minutes (0: only on demand), last run and its error.
    sync_minutes: Mapped[int] = mapped_column(Integer, default=60, server_default="60")
    last_sync_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_sync_error: Mapped[str | None] = mapped_column(Text)


# Kinds of catalog change: a field that changed upstream, or a service that came or went.
NEW, REMOVED = "new", "removed"
FIELD_CHANGES = ("rate", "min", "max", "type", "refill", "cancel", "dripfeed", "name", "category")
CHANGE_KINDS = (NEW, REMOVED, *FIELD_CHANGES)


class CatalogChange(Base):
    """One difference between a provider's catalog and what we held, as a sync found it."""

    __tablename__ = "catalog_changes"
    __table_args__ = (Index("ix_catalog_changes_provider_id_id", "provider_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id"))
    provider_service_id: Mapped[str] = mapped_column(String(64))
    service_id: Mapped[int | None] = mapped_column(BigInteger)  # ours, when mapped
    kind: Mapped[str] = mapped_column(String(20))
    before: Mapped[str | None] = mapped_column(Text)
    after: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=text("now()")
    )
