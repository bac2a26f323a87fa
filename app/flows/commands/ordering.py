"""Ordering: place an order (the rules of API v2 `add`), a mass order of up to MAX_LINES
lines, cancel orders and ask for refills, as every front end offers them.

Jobs follow the commit: an order due upstream now is relayed, a cancel of an order already
sent goes upstream, a refill of a sent order is relayed. Drip-feed runs due later are
enqueued by the sweeper when they fall due, so nothing waits in Redis that the database
does not also know.

A mass order places its lines in order, in groups (app/orders/group.py: one statement
places up to MAX_GROUP lines, each against the balance the lines before it left, as one
`add` after the other would), so the total charge can never exceed the balance: a line the
balance no longer covers gets `Not enough funds on balance` and the others stand. Its
services and the user's rates are read once for all its lines. A line the statement
cannot place (a free order, a drip-feed the panel runs, a service changed meanwhile, a
target under review) is placed by `place_order` in its turn.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog import service as catalog
from app.catalog.service import OfferedService
from app.db import utcnow
from app.errors import DomainError, IncorrectRequest, IncorrectServiceId
from app.http.tx import AfterCommitJobs
from app.legal import service as legal
from app.legal.models import ACTION_ORDER
from app.orders import group, hot
from app.orders import service as orders
from app.orders.hot import CachedService, FastAdd, GroupItem
from app.orders.models import UP_QUEUED
from app.orders.types import parse_int
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
    lines = parse_lines(text)
    asked: list[tuple[int, dict[str, str] | DomainError]] = []
    for number, line in lines:
        try:
            asked.append((number, line_fields(line)))
        except DomainError as exc:
            asked.append((number, exc))
    wanted = {_service_id(f) for _, f in asked if isinstance(f, dict)}
    offered = await catalog.get_offered_many(tx, user_id, {i for i in wanted if i is not None})
    results: dict[int, LineResult] = {}
    batch: list[tuple[int, dict[str, str], GroupItem]] = []
    for number, fields in asked:
        try:
            if isinstance(fields, DomainError):
                raise fields
            item = _judged(offered, fields)
        except DomainError as exc:
            results[number] = LineResult(number, error=exc.message)
            continue
        if item is not None:
            batch.append((number, fields, item))
            continue
        results.update(await _place_batch(tx, jobs, user_id, batch))  # those before it first
        batch = []
        results[number] = await _place_line(tx, jobs, user_id, number, fields)
    results.update(await _place_batch(tx, jobs, user_id, batch))
    if any(r.order is not None for r in results.values()):
        await legal.record(tx, user_id, ACTION_ORDER, ip=None)  # once per version
    return [results[number] for number, _ in lines]


def _service_id(fields: Mapping[str, str]) -> int | None:
    try:
        return parse_int(fields.get("service"), IncorrectServiceId())
    except DomainError:
        return None


def _judged(
    offered: Mapping[int, tuple[OfferedService, str]], fields: Mapping[str, str]
) -> GroupItem | None:
    """A line as a group's item (its refusal raised, as `place_order` raises it), or None
    for a line `place_order` places."""
    found = offered.get(_service_id(fields) or 0)
    if found is None:
        raise IncorrectServiceId()
    service, version = found
    prepared = hot.prepare(service.service, service.rate, fields)
    if prepared is None:
        return None
    return GroupItem(CachedService(service.service, version), service.rate, prepared, None, None)


async def _place_batch(
    tx: AsyncSession,
    jobs: AfterCommitJobs,
    user_id: int,
    batch: Sequence[tuple[int, dict[str, str], GroupItem]],
) -> dict[int, LineResult]:
    """The lines of `batch` placed in order, in groups; a line no group could settle by
    `place_order`, after them."""
    if not batch:
        return {}
    outcomes = await group.place_in_order(
        group.InTransaction(tx), None, user_id, [item for _, _, item in batch]
    )
    results: dict[int, LineResult] = {}
    for (number, fields, _), outcome in zip(batch, outcomes, strict=True):
        if isinstance(outcome, FastAdd):
            if outcome.queued:
                jobs.relay_order(outcome.order_id)
            results[number] = LineResult(number, order=outcome.order_id)
        elif isinstance(outcome, DomainError):
            results[number] = LineResult(number, error=outcome.message)
        else:
            results[number] = await _place_line(tx, jobs, user_id, number, fields)
    return results


async def _place_line(
    tx: AsyncSession, jobs: AfterCommitJobs, user_id: int, number: int, fields: dict[str, str]
) -> LineResult:
    try:
        placed = await place_order(tx, jobs, user_id, fields)
    except DomainError as exc:
        return LineResult(number, error=exc.message)
    return LineResult(number, order=placed.order_id)


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
    """Each order's cancel on its own, in the order given: its result or its refusal.
    The locks are taken first, in the global order (the owner, then the orders and their
    runs by ascending id), not in the order given."""
    await orders.lock_owners(tx, order_ids, user_id=user_id, with_runs=True)
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
