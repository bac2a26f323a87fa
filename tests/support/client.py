"""Customers of /client/v1 for the tests: signed in, with their session header."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass
class Customer:
    user_id: int
    key: str  # API v2 key
    email: str
    password: str
    token: str  # session token

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


class MakeCustomer(Protocol):
    """A verified user with a password and an API key, signed in to /client/v1."""

    async def __call__(self, balance: str = "0") -> Customer: ...
