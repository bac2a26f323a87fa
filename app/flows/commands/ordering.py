"""Ordering: place an order (the rules of API v2 `add`), a mass order of up to MAX_LINES
lines, cancel orders and ask for refills, as every front end offers them.

Jobs follow the commit: an order due upstream now is relayed, a cancel of an order already
sent goes upstream, a refill of a sent order is relayed. Drip-feed runs due later are
enqueued by the sweeper when they fall due, so nothing waits in Redis that the database
does not also know.

A mass order places its lines in order, each through the same conditional debit as `add`,
so the total charge can never exceed the balance: a line the balance no longer covers gets
`Not enough funds on balance` and the others stand.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from app.db import utcnow
from app.errors import DomainError, IncorrectRequest
from app.http.tx import AfterCommitJobs
from app.legal import service as legal
from app.legal.models import ACTION_ORDER
from app.orders import service as orders
from app.orders.models import UP_QUEUED
from app.refills import service as refills

MAX_LINES = 500

T = TypeVar("T")

WRAPS = (
    orders.place_order,
    orders.cancel_order,
    refills.request_refill,
    legal.record,
    legal.confirm_for_order,
)


class TooManyLines(DomainError):
    http_status = 422
    message = f"Too many lines (at most {MAX_LINES})"


@dataclass(frozen=True)
class Placed:
    order_id: int


@dataclass(frozen=True)
class LineResult:
    """One line of a mass order: the order it placed, or the refusal's message."""

    line: int
    order: int | None = None
    error: str | None = None


@dataclass(frozen=True)
class CancelRequested:
    order_id: int
    # The orders (the order itself, or its drip-feed runs) whose cancel goes upstream;
    # whatever was not sent yet is canceled and refunded already.
    upstream: tuple[int, ...]


@dataclass(frozen=True)
class RefillRequested:
    refill_id: int


async def place_order(
    tx: AsyncSession,
    jobs: AfterCommitJobs,
    user_id: int,
    fields: Mapping[str, str],
    *,
    accept_terms: bool | None = None,
    ip: str | None = None,
) -> Placed:
    """One order from the fields of API v2 `add` (service, link, quantity, the fields of
    the service's type, runs and interval, request_id), charged in `tx`.

    Ordering accepts the legal texts in force (recorded once per user and version). A
    front end that shows the customer a page passes `accept_terms`: a version published
    since the customer's last acceptance must then be ticked (TermsNotAccepted). API v2
    passes None: its callers are scripts, and ordering is the acceptance."""
    async with tx.begin_nested():
        if accept_terms is not None:
            await legal.confirm_for_order(tx, user_id, accepted=accept_terms, ip=ip)
        placed = await orders.place_order(tx, user_id, fields)
        await legal.record(tx, user_id, ACTION_ORDER, ip=ip)
    now = utcnow()
    for order_id, due in placed.relays:
        if due <= now:
            jobs.relay_order(order_id)
    return Placed(placed.order_id)


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
    tx: AsyncSession, jobs: AfterCommitJobs, user_id: int, text: str
) -> list[LineResult]:
    """Every line `service_id|link|quantity` of `text` placed on its own, in order."""
    results: list[LineResult] = []
    for number, line in parse_lines(text):
        try:
            placed = await place_order(tx, jobs, user_id, line_fields(line))
        except DomainError as exc:
            results.append(LineResult(number, error=exc.message))
            continue
        results.append(LineResult(number, order=placed.order_id))
    return results


async def cancel_order(
    tx: AsyncSession, jobs: AfterCommitJobs, user_id: int, order_id: int
) -> CancelRequested:
    """The user's cancel of one of their orders (where the service allows it and no review
    holds the order)."""
    async with tx.begin_nested():
        upstream = await orders.cancel_order(tx, user_id, order_id)
    for due in upstream:
        jobs.relay_cancel(due)
    return CancelRequested(order_id, tuple(upstream))


async def cancel_orders(
    tx: AsyncSession, jobs: AfterCommitJobs, user_id: int, order_ids: Sequence[int]
) -> list[CancelRequested | DomainError]:
    """Each order's cancel on its own, in the order given: its result or its refusal."""
    return [await _each(cancel_order(tx, jobs, user_id, order_id)) for order_id in order_ids]


async def request_refill(
    tx: AsyncSession, jobs: AfterCommitJobs, user_id: int, order_id: int
) -> RefillRequested:
    """A refill of one of the user's orders (where the service and the order allow it)."""
    async with tx.begin_nested():
        refill = await refills.request_refill(tx, user_id, order_id)
    if refill.upstream_state == UP_QUEUED:
        jobs.relay_refill(refill.id)
    return RefillRequested(refill.id)


async def request_refills(
    tx: AsyncSession, jobs: AfterCommitJobs, user_id: int, order_ids: Sequence[int]
) -> list[RefillRequested | DomainError]:
    """Each order's refill on its own, in the order given: its result or its refusal."""
    return [await _each(request_refill(tx, jobs, user_id, order_id)) for order_id in order_ids]


async def _each(command: Awaitable[T]) -> T | DomainError:
    try:
        return await command
    except DomainError as exc:
        return exc
