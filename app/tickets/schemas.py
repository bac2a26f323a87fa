"""Tickets as the customer and the operator APIs show them: JSON only, text as given
(a `<script>` in a message comes back as the same string, never as markup)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.db import MAX_ID
from app.http.schemas import AdminInput, PlainDecimal, example
from app.orders.schemas import EventOut, OrderOut
from app.tickets.models import MESSAGE_MAX, ORDERS_MAX, SUBJECT_MAX

Text = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MESSAGE_MAX)
]
Subject = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=SUBJECT_MAX)
]
Category = Literal["order", "payment", "refill", "cancel", "other"]
Status = Literal["open", "answered", "closed"]
OrderId = Annotated[int, Field(ge=1, le=MAX_ID)]


class ClientInput(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TicketIn(ClientInput):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "subject": "Order 17 not delivered",
                    "category": "order",
                    "message": "Only half of the followers arrived.",
                    "orders": [17],
                }
            ]
        },
    )
    subject: Subject
    category: Category
    message: Text
    orders: list[OrderId] = Field(default=[], max_length=ORDERS_MAX)


class MessageIn(ClientInput):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"message": "…"}]})
    message: Text


class MessageOut(BaseModel):
    model_config = example(id=1, author="customer", body="Hello", created_at="2026-01-01T00:00:00Z")
    id: int
    author: str
    body: str
    created_at: datetime


class TicketOut(BaseModel):
    model_config = example(
        id=1,
        subject="Order 17 not delivered",
        category="order",
        status="open",
        orders=[17],
        under_review=[17],
        created_at="2026-01-01T00:00:00Z",
    )
    id: int
    subject: str
    category: str
    status: str
    orders: list[int]
    under_review: list[int] = Field(default=[], description="orders under review by this ticket")
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None = None


class TicketDetailOut(TicketOut):
    messages: list[MessageOut]


class TicketPage(BaseModel):
    tickets: list[TicketOut]
    next_cursor: int | None = None


# ---------------------------------------------------------------------------------------
# Operators
# ---------------------------------------------------------------------------------------


class AdminMessageOut(MessageOut):
    operator: str | None = None
    internal: bool = False


class AdminTicketOut(TicketOut):
    user_id: int
    assignee: str | None = None
    waiting_since: datetime | None = None
    first_response_at: datetime | None = None


class ReviewedOrderOut(OrderOut):
    review_ticket_id: int | None = None
    upstream_history: list[EventOut]


class ResolutionOut(BaseModel):
    model_config = example(order_id=17, action="refund", amount="0.45", operator="admin")
    id: int
    order_id: int
    action: str
    amount: PlainDecimal | None = None
    operator: str
    created_at: datetime


class AdminTicketDetailOut(AdminTicketOut):
    messages: list[AdminMessageOut]
    orders_detail: list[ReviewedOrderOut] = Field(
        description="the orders the ticket names, each with its full upstream history"
    )
    resolutions: list[ResolutionOut]


class AdminReplyIn(AdminInput):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"message": "Done."}, {"canned_id": 1}]}
    )
    message: Text | None = None
    canned_id: OrderId | None = Field(default=None, description="send this canned answer")


class NoteIn(AdminInput):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"message": "…"}]})
    message: Text


class AssignIn(AdminInput):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"assignee": "ann"}]})
    assignee: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] | None


class StatusIn(AdminInput):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"status": "closed"}]}
    )
    status: Status


class ResolveIn(AdminInput):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"order_id": 17, "action": "refund", "amount": "0.45"}],
        },
    )
    order_id: OrderId
    action: Literal["no_action", "resend", "refund", "complete"]
    amount: Decimal | None = Field(
        default=None, gt=0, max_digits=20, decimal_places=8, description="refund: omit for full"
    )
    message: Text | None = Field(default=None, description="the answer (a default one if omitted)")


class ResolvedOut(BaseModel):
    resolution: ResolutionOut
    ticket: AdminTicketOut


class CannedIn(AdminInput):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"title": "Refill", "body": "…"}]}
    )
    title: Subject
    body: Text


class CannedOut(BaseModel):
    model_config = example(id=1, title="Refill", body="…")
    id: int
    title: str
    body: str
    created_at: datetime
    updated_at: datetime


class SupportReportOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    created: int
    by_category: dict[str, int]
    open_now: int
    answered: int
    closed: int
    first_response_seconds_avg: float | None
    first_response_seconds_max: float | None
    resolution_seconds_avg: float | None
    resolution_seconds_max: float | None
