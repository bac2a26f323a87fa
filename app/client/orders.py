"""Ordering from the account: one order (its body read strictly by `order_fields`, then
the rules of API v2 `add`) or a mass order of
up to MAX_LINES lines, each placed on its own in a savepoint. Every line goes through the
same conditional debit as `add`, in line order, so the total charge can never exceed the
balance: a line the balance no longer covers gets `Not enough funds on balance` and the
others stand."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from app.client.schemas import OrderIn
from app.db import after_commit, utcnow
from app.errors import DomainError, IncorrectRequest
from app.jobs import JobQueue
from app.orders import service as orders

MAX_LINES = 500


class TooManyLines(DomainError):
    message = f"Too many lines (at most {MAX_LINES})"


@dataclass(frozen=True)
class LineResult:
    line: int
    order: int | None = None
    error: str | None = None


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


async def place(
    session: AsyncSession, jobs: JobQueue, user_id: int, fields: Mapping[str, str]
) -> int:
    placed = await orders.place_order(session, user_id, fields)
    now = utcnow()
    for order_id, due in placed.relays:
        if due <= now:
            after_commit(session, partial(jobs.relay_order, order_id))
    return placed.order_id


def parse_lines(text: str) -> list[tuple[int, str]]:
    """The non-empty lines with their 1-based numbers in the text."""
    numbered = [(n, line.strip()) for n, line in enumerate(text.splitlines(), start=1)]
    lines = [(n, line) for n, line in numbered if line]
    if len(lines) > MAX_LINES:
        raise TooManyLines()
    return lines


def line_fields(line: str) -> dict[str, str]:
    parts = line.split("|")
    if len(parts) != 3:
        raise IncorrectRequest("Incorrect line: use service_id|link|quantity")
    service, link, quantity = (p.strip() for p in parts)
    return {"service": service, "link": link, "quantity": quantity}


async def place_mass(
    session: AsyncSession, jobs: JobQueue, user_id: int, text: str
) -> list[LineResult]:
    results: list[LineResult] = []
    for number, line in parse_lines(text):
        try:
            fields = line_fields(line)
            async with session.begin_nested():
                order_id = await place(session, jobs, user_id, fields)
        except DomainError as exc:
            results.append(LineResult(number, error=exc.message))
            continue
        results.append(LineResult(number, order=order_id))
    return results
