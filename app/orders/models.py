"""Orders and their upstream history."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, Money, sql_list, utcnow

PENDING = "Pending"
IN_PROGRESS = "In progress"
PROCESSING = "Processing"
COMPLETED = "Completed"
PARTIAL = "Partial"
CANCELED = "Canceled"
STATUSES = (PENDING, IN_PROGRESS, PROCESSING, COMPLETED, PARTIAL, CANCELED)
ACTIVE_STATUSES = (PENDING, IN_PROGRESS, PROCESSING)
FINAL_STATUSES = (COMPLETED, PARTIAL, CANCELED)

# Where an order stands towards its provider.
UP_MANUAL = "manual"  # no provider: the operator fulfils it
UP_QUEUED = "queued"  # waiting to be sent
UP_SENDING = "sending"  # attempt recorded, outcome not yet recorded
UP_SENT = "sent"  # provider accepted it; provider_order_id is known
UP_REVIEW = "review"  # outcome unknown: an operator decides, never a blind resend
UP_REJECTED = "rejected"  # provider refused it for good
UP_WITHDRAWN = "withdrawn"  # canceled before it was ever sent
UP_DRIPFEED = "dripfeed"  # runs are child orders the panel sends one by one
UPSTREAM_STATES = (
    UP_MANUAL,
    UP_QUEUED,
    UP_SENDING,
    UP_SENT,
    UP_REVIEW,
    UP_REJECTED,
    UP_WITHDRAWN,
    UP_DRIPFEED,
)


ACTIVE_SQL = f"status IN ({sql_list(ACTIVE_STATUSES)})"

# What an upstream event records (`UpstreamEvent.action`: the call it is about) and where a
# status report came from (its `detail.source`).
EVENT_ADD, EVENT_STATUS = "add", "status"
SOURCE_PROVIDER = "provider"


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        CheckConstraint(f"status IN ({sql_list(STATUSES)})", name="status"),
        CheckConstraint(f"upstream_state IN ({sql_list(UPSTREAM_STATES)})", name="upstream_state"),
        CheckConstraint("quantity > 0", name="quantity"),
        CheckConstraint("charge >= 0 AND refunded >= 0 AND refunded <= charge", name="money"),
        # No duplicate active orders: same user, service and normalised link.
        Index(
            "uq_orders_active_link",
            "user_id",
            "service_id",
            "link_normalized",
            unique=True,
            postgresql_where=text(f"{ACTIVE_SQL} AND parent_id IS NULL"),
        ),
        # A client's request id names one order of theirs (optional extension of `add`):
        # a retry waits here for the first request and then finds its order.
        Index(
            "uq_orders_request_id",
            "user_id",
            "request_id",
            unique=True,
            postgresql_where=text("request_id IS NOT NULL"),
        ),
        # An upstream order id names one order of its provider: a report on it moves
        # one order (app/orders/anomalies.py holds a second one for the operator).
        Index(
            "uq_orders_provider_order_id",
            "provider_id",
            "provider_order_id",
            unique=True,
            postgresql_where=text("provider_order_id IS NOT NULL"),
        ),
        Index("ix_orders_user_id_id", "user_id", "id"),
        Index(
            "ix_orders_due",
            "next_attempt_at",
            postgresql_where=text(f"upstream_state = '{UP_QUEUED}'"),
        ),
        Index(
            "ix_orders_syncing",
            "provider_id",
            "id",
            postgresql_where=text(f"upstream_state = '{UP_SENT}' AND {ACTIVE_SQL}"),
        ),
        Index("ix_orders_parent_id", "parent_id", postgresql_where=text("parent_id IS NOT NULL")),
        Index("ix_orders_created_at", "created_at"),
        Index("ix_orders_anomaly", "id", postgresql_where=text("anomaly IS NOT NULL")),
        # Orders under a Support review (ToS 2.5), by target: a new order there is refused.
        Index(
            "ix_orders_under_review",
            "user_id",
            "service_id",
            "link_normalized",
            postgresql_where=text("review_ticket_id IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id"))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"))
    type: Mapped[str] = mapped_column(String(40))
    link: Mapped[str] = mapped_column(Text, default="", server_default="")
    link_normalized: Mapped[str] = mapped_column(Text, default="", server_default="")
    # Units charged for (for drip-feed: runs × quantity per run).
    quantity: Mapped[int] = mapped_column(BigInteger)
    runs: Mapped[int | None] = mapped_column(Integer)
    interval_minutes: Mapped[int | None] = mapped_column(Integer)
    # Type-specific fields as the user sent them (comments, usernames, …).
    params: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default="{}")
    rate: Mapped[Decimal] = mapped_column(Money)
    charge: Mapped[Decimal] = mapped_column(Money)
    refunded: Mapped[Decimal] = mapped_column(Money, default=Decimal(0), server_default="0")
    start_count: Mapped[int | None] = mapped_column(BigInteger)
    remains: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default=PENDING, server_default=PENDING)
    upstream_state: Mapped[str] = mapped_column(String(16))
    provider_id: Mapped[int | None] = mapped_column(ForeignKey("providers.id"))
    provider_service_id: Mapped[str | None] = mapped_column(String(64))
    provider_order_id: Mapped[str | None] = mapped_column(String(64))
    # What the provider bills for this order, in its currency, and the conversion rate into
    # the panel's currency when it was sent (for margin reports).
    provider_charge: Mapped[Decimal | None] = mapped_column(Money)
    provider_currency: Mapped[str | None] = mapped_column(String(3))
    fx_rate: Mapped[Decimal | None] = mapped_column(Money)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    sending_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    cancel_requested_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cancel_state: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=text("now()")
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow, server_default=text("now()")
    )
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The last provider report that could not be applied (out-of-range numbers, a status
    # we cannot act on), as [{kind, field, value}], and when it came: for the operator.
    # None is SQL NULL (not JSON null): the flag's index and filter test IS NULL.
    anomaly: Mapped[list[dict[str, str]] | None] = mapped_column(JSONB(none_as_null=True))
    anomaly_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The Support ticket reviewing this order (ToS 2.5): while set, the order is neither
    # canceled nor refilled and no new order goes to the same link and service.
    review_ticket_id: Mapped[int | None] = mapped_column(
        ForeignKey("tickets.id", ondelete="SET NULL")
    )
    # The client's request id of the `add` that placed it, and the digest of that add's
    # parameters (a retry with other parameters is refused).
    request_id: Mapped[str | None] = mapped_column(String(64))
    request_digest: Mapped[str | None] = mapped_column(String(64))
    # The request id our `add` to the provider carries (set when the first attempt is
    # claimed for a provider that takes request ids, then kept): an attempt whose outcome
    # is unknown is safely sent again with it.
    upstream_request_id: Mapped[str | None] = mapped_column(String(64))


class UpstreamEvent(Base):
    """What was asked of a provider about an order or refill, and what came back."""

    __tablename__ = "upstream_events"
    __table_args__ = (
        Index("ix_upstream_events_order_id_id", "order_id", "id"),
        Index("ix_upstream_events_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    order_id: Mapped[int | None] = mapped_column(BigInteger)
    refill_id: Mapped[int | None] = mapped_column(BigInteger)
    action: Mapped[str] = mapped_column(String(32))
    outcome: Mapped[str] = mapped_column(String(32))
    detail: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default="{}")
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=text("now()")
    )
