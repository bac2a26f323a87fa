"""Categories, services and per-user custom rates."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, Money, utcnow

FIXED = "fixed"
MARKUP = "markup"
PRICING_MODES = (FIXED, MARKUP)

SERVICE_TYPES = (
    "Default",
    "Package",
    "Custom Comments",
    "Custom Comments Package",
    "Mentions with Hashtags",
    "Mentions Custom List",
    "Mentions Hashtag",
    "Mentions User Followers",
    "Mentions Media Likers",
    "Comment Likes",
    "Poll",
    "Invites from Groups",
    "Subscriptions",
    "Web Traffic",
)


class Category(Base):
    __tablename__ = "categories"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    position: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))


class Service(Base):
    __tablename__ = "services"
    __table_args__ = (
        CheckConstraint("rate >= 0", name="rate"),
        CheckConstraint("min_quantity >= 1 AND max_quantity >= min_quantity", name="bounds"),
        CheckConstraint("step >= 1", name="step"),
        CheckConstraint("refill_days >= 0", name="refill_days"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    category_id: Mapped[int] = mapped_column(ForeignKey("categories.id"))
    name: Mapped[str] = mapped_column(String(300))
    description: Mapped[str | None] = mapped_column(Text)
    # What Russian-speaking customers read (the English ones where these are empty).
    name_ru: Mapped[str | None] = mapped_column(String(300))
    description_ru: Mapped[str | None] = mapped_column(Text)
    type: Mapped[str] = mapped_column(String(40), default="Default", server_default="Default")
    rate: Mapped[Decimal] = mapped_column(Money)
    min_quantity: Mapped[int] = mapped_column(BigInteger)
    max_quantity: Mapped[int] = mapped_column(BigInteger)
    step: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    refill: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    refill_days: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    cancel: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    dripfeed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    link_pattern: Mapped[str | None] = mapped_column(String(500))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    position: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Upstream mapping (None = fulfilled manually by the operator).
    provider_id: Mapped[int | None] = mapped_column(ForeignKey("providers.id"))
    provider_service_id: Mapped[str | None] = mapped_column(String(64))
    provider_rate: Mapped[Decimal | None] = mapped_column(Money)
    provider_dripfeed: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=text("false")
    )
    # Pricing rule (see PricingRule in app/catalog/pricing.py): "fixed" keeps `rate` as the
    # operator set it; "markup" = provider rate (converted) × multiplier + fixed, rounded up
    # to `price_step`.
    pricing: Mapped[str] = mapped_column(String(10), default=FIXED, server_default=FIXED)
    price_multiplier: Mapped[Decimal | None] = mapped_column(Money)
    price_fixed: Mapped[Decimal | None] = mapped_column(Money)
    price_step: Mapped[Decimal | None] = mapped_column(Money)
    # Why the catalog sync took the service off sale (None: it did not): removed upstream,
    # below cost, type changed (the upstream type waits in `pending_type` for an operator).
    held: Mapped[str | None] = mapped_column(String(40))
    pending_type: Mapped[str | None] = mapped_column(String(40))
    # The provider's entry for this service as the last import or sync read it: the next
    # sync compares the provider's answer with it (not with our own, edited, fields).
    upstream: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    # An active order with no upstream progress for this long is stuck (None: settings).
    stuck_after_seconds: Mapped[int | None] = mapped_column(Integer)
    # How long its recently completed orders took on average, in seconds (None: none yet);
    # measured by a cron (app/orders/average.py), so the catalog's change feed carries it.
    average_seconds: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=text("now()")
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow, server_default=text("now()")
    )
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ServiceBackup(Base):
    """A backup provider of a service, tried in `position` order when the ones before it
    refuse an order for good before accepting it (see app/flows/relay/failover.py)."""

    __tablename__ = "service_backups"
    __table_args__ = (CheckConstraint("provider_rate >= 0", name="provider_rate"),)

    service_id: Mapped[int] = mapped_column(
        ForeignKey("services.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id"))
    provider_service_id: Mapped[str] = mapped_column(String(64))
    provider_rate: Mapped[Decimal | None] = mapped_column(Money)


class UserRate(Base):
    """A custom rate for one user on one service (overrides the service's rate)."""

    __tablename__ = "user_rates"
    __table_args__ = (CheckConstraint("rate >= 0", name="rate"),)

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    service_id: Mapped[int] = mapped_column(
        ForeignKey("services.id", ondelete="CASCADE"), primary_key=True
    )
    rate: Mapped[Decimal] = mapped_column(Money)


class CatalogVersion(Base):
    """One row: a counter bumped by statement triggers (migration 3b1f0c7a9d21) in the
    same transaction as any change to categories, services or custom rates. Renderings of
    `services` are keyed by it, so none outlives the change it predates."""

    __tablename__ = "catalog_version"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    version: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
