"""The shapes of the fixtures that talk to the panel or fill it."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol


@dataclass
class Reseller:
    user_id: int
    key: str


class Api(Protocol):
    """POST /api/v2 with form fields; the decoded JSON (HTTP 200 asserted)."""

    async def __call__(self, key: str, action: str, **fields: Any) -> Any: ...


class MakeUser(Protocol):
    """A user with an API key and, optionally, a first deposit."""

    async def __call__(
        self, balance: str | Decimal = "0", email: str | None = None
    ) -> Reseller: ...


class MakeService(Protocol):
    """A service in a new category; keyword arguments override the Service columns."""

    async def __call__(self, **overrides: Any) -> int: ...


def order_id_of(answer: Any) -> int:
    """The id in an `add` answer, asserting the answer is exactly `{"order": <int>}`."""
    assert isinstance(answer, dict) and list(answer) == ["order"], answer
    order_id = answer["order"]
    assert type(order_id) is int and order_id > 0, answer
    return order_id
