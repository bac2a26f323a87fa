"""What the customer API reads and shows of services, orders, money, referrals and privacy
requests. Money is an exact decimal string, never a float. Every body it reads is a
ClientInput: an unknown field, or a list where one value belongs, is refused (422)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from fastapi.exceptions import RequestValidationError
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    ValidationError,
)

from app.errors import IncorrectRequest
from app.http.schemas import ClientInput, example


class ServiceOut(BaseModel):
    service: int
    name: str
    type: str
    category: str
    rate: str = Field(description="what this user pays per 1000")
    min: int
    max: int
    refill: bool
    cancel: bool
    dripfeed: bool
    description: str | None
    fields: list[str] = Field(description="the fields POST /client/v1/orders takes for this type")


# One value of an order field: text, or a whole number in a JSON body (never a list, an
# object, a boolean or a fraction). Read as text, then parsed by the rules of API v2 `add`.
OrderValue = StrictStr | StrictInt | None


class OrderIn(ClientInput):
    """The body of POST /client/v1/orders: `service` and the fields of API v2 `add` for the
    service's type (GET /client/v1/services lists them per service)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"service": "1", "link": "https://x.com/a", "quantity": "100"}]
        }
    )
    service: StrictStr | StrictInt
    request_id: OrderValue = None
    link: OrderValue = None
    quantity: OrderValue = None
    runs: OrderValue = None
    interval: OrderValue = None
    comments: OrderValue = None
    usernames: OrderValue = None
    hashtags: OrderValue = None
    hashtag: OrderValue = None
    username: OrderValue = None
    media: OrderValue = None
    answer_number: OrderValue = None
    groups: OrderValue = None
    country: OrderValue = None
    device: OrderValue = None
    type_of_traffic: OrderValue = None
    google_keyword: OrderValue = None
    referring_url: OrderValue = None
    min: OrderValue = None
    max: OrderValue = None
    posts: OrderValue = None
    old_posts: OrderValue = None
    delay: OrderValue = None
    expiry: OrderValue = None
    # Not an order field: true accepts a legal text published since the last acceptance.
    accept_terms: bool | None = None

    def fields(self) -> dict[str, str]:
        """The given fields as API v2 `add` reads them: text."""
        given = self.model_dump(exclude_none=True, exclude={"accept_terms"})
        return {name: str(value) for name, value in given.items()}


def order_fields(pairs: Sequence[tuple[str, Any]]) -> dict[str, str]:
    """The fields of a POST /client/v1/orders body (a JSON object's members or a form's
    pairs), as strict as an operator's body: a field OrderIn does not know, or a list (or
    a form's repeated name) where one value belongs, raises RequestValidationError, which
    answers problem JSON 422 naming the field."""
    grouped: dict[str, list[Any]] = {}
    for name, value in pairs:
        grouped.setdefault(name, []).append(value)
    given = {name: values[0] if len(values) == 1 else values for name, values in grouped.items()}
    try:
        fields = OrderIn.model_validate(given).fields()
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        raise RequestValidationError(errors) from None
    if any("\x00" in value for value in fields.values()):
        raise IncorrectRequest()  # NUL cannot be stored or relayed
    return fields


def accepts_terms(pairs: Sequence[tuple[str, Any]]) -> bool:
    """Whether the body ticks `accept_terms` (JSON true, or a form's "true" or "1")."""
    return any(name == "accept_terms" and value in (True, "true", "1") for name, value in pairs)


class PlacedOut(BaseModel):
    order: int


class OrderOut(BaseModel):
    id: int
    service_id: int
    type: str
    link: str
    quantity: int
    charge: str
    refunded: str
    status: str
    start_count: int | None
    remains: int | None
    runs: int | None
    interval: int | None
    created_at: datetime
    updated_at: datetime


class OrderPage(BaseModel):
    orders: list[OrderOut]
    next_cursor: int | None = Field(description="pass as `cursor` for the next (older) page")


class RefillOut(BaseModel):
    id: int
    status: str
    created_at: datetime


class OrderDetailOut(OrderOut):
    params: dict[str, Any]
    refills: list[RefillOut]
    drip_feed_runs: list[OrderOut]


class RefillMadeOut(BaseModel):
    refill: int


class CanceledOut(BaseModel):
    cancel: int = 1


class MassIn(ClientInput):
    model_config = example(lines="1|https://example.com/a|100\n2|https://example.com/b|500")
    lines: str = Field(max_length=200_000, description="`service_id|link|quantity` per line")


class MassLineOut(BaseModel):
    line: int
    order: int | None = None
    error: str | None = None


class MassOut(BaseModel):
    results: list[MassLineOut]


class TransactionOut(BaseModel):
    id: int
    kind: str
    amount: str
    balance_after: str
    reason: str
    order_id: int | None
    created_at: datetime


class TransactionPage(BaseModel):
    transactions: list[TransactionOut]
    next_cursor: int | None


class DepositIn(ClientInput):
    model_config = example(gateway="yookassa", amount="10.00")
    gateway: str = Field(max_length=32)
    amount: str = Field(max_length=40, description="in the panel's currency")


class DepositOut(BaseModel):
    payment: int
    gateway: str
    amount: str
    currency: str
    credit: str
    credit_currency: str
    status: str
    pay_url: str | None
    created_at: datetime
    paid_at: datetime | None
    receipt_url: str | None = Field(default=None, description="the tax receipt, once registered")


class MonthOut(BaseModel):
    month: str
    earned: str


class RewardOut(BaseModel):
    id: int
    referred_id: int | None
    deposit_amount: str
    amount: str
    status: str
    created_at: datetime


class PayoutOut(BaseModel):
    id: int
    amount: str
    status: str  # pending | paid | rejected
    created_at: datetime
    decided_at: datetime | None


class ReferralsOut(BaseModel):
    code: str | None
    link: str | None
    signups: int
    earnings: list[MonthOut]
    rewards: list[RewardOut]
    commission: str = Field(description="share of a referred user's deposits, e.g. 0.05")
    payouts_mode: str = Field(
        description="`balance`: rewards reach the balance at once; `request`: on a payout "
        "request; `review`: when the operator approves the request"
    )
    min_payout: str
    available: str = Field(description="rewards earned and not yet requested")
    payouts: list[PayoutOut]


class DeletionOut(BaseModel):
    id: int
    requested_at: datetime
    deadline: datetime
    completed_at: datetime | None
