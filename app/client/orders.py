"""Ordering from the account: one order (the rules of API v2 `add`) or a mass order of
up to MAX_LINES lines, each placed on its own in a savepoint. Every line goes through the
same conditional debit as `add`, in line order, so the total charge can never exceed the
balance: a line the balance no longer covers gets `Not enough funds on balance` and the
others stand."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial

from sqlalchemy.ext.asyncio import AsyncSession

from app.db import after_commit, utcnow
from app.errors import DomainError, IncorrectRequest
from app.jobs import JobQueue
from app.orders import service as orders

MAX_LINES = 500


class TooManyLines(DomainError):
    http_status = 422
    message = f"Too many lines (at most {MAX_LINES})"


@dataclass(frozen=True)
class LineResult:
    line: int
    order: int | None = None
    error: str | None = None


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
