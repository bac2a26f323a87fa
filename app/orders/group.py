"""Group commit of one user's adds, within a process: the adds of a user that arrive while
a statement of theirs is in flight are queued and placed together by the next statement
(app/orders/sql.py ADD_ORDERS), which debits their sum once. Without it a user's adds
queue one by one on their balance row: a reseller's script (or a downstream panel) sending
orders on many connections at once would be served one round trip at a time.

What holds, and why:

- Each add is answered on its own: its order, or its own refusal (the one the full path
  gives), or None when the statement cannot decide (a stale copy: the full path does).
- Arrival order: a group's items are placed in the order they arrived, each against the
  balance the earlier ones left, so a later add the balance no longer covers fails alone.
- The rules hold inside a group as across groups: a group never holds two adds on one
  target (service and normalised link) or with one request id. The second waits for
  the next statement, which sees the first's order (the duplicate rule refuses it, the
  request id answers it) exactly as a later statement would. ADD_ORDERS itself refuses
  such a repeat, so no caller can place one twice.
- A first add with nothing in flight is placed at once (no waiting for company): a lone
  add costs what it did, ADD_ORDER's single statement.

Nothing is kept between groups: a user's queue exists only while a statement of theirs is
in flight.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import DomainError
from app.orders import hot
from app.orders.hot import FastAdd, GroupItem, Outcome, Undecided

# The most adds one statement places (a mass order's lines go in groups of this size too).
MAX_GROUP = 100


class Unsettled(Exception):
    """The statement could not settle this add (`why`): the full path decides."""

    def __init__(self, why: Undecided) -> None:
        super().__init__(why.value)
        self.why = why


@dataclass
class _Waiting:
    item: GroupItem
    answer: asyncio.Future[Outcome]


@dataclass
class _Queue:
    waiting: deque[_Waiting] = field(default_factory=deque)
    task: asyncio.Task[None] | None = None  # the statements' runner (referenced: kept alive)


def take_group(items: Iterable[GroupItem], limit: int = MAX_GROUP) -> int:
    """How many of `items`, from the first, form one group: at most `limit`, stopping
    before the first item that repeats an earlier one's target or request id."""
    targets: set[tuple[int, str]] = set()
    request_ids: set[str] = set()
    taken = 0
    for item in items:
        if taken == limit or item.target in targets or item.request_id in request_ids:
            break
        targets.add(item.target)
        if item.request_id is not None:
            request_ids.add(item.request_id)
        taken += 1
    return taken


async def place_group(
    db: hot.Fetcher, digest: str | None, user_id: int, items: list[GroupItem]
) -> list[Outcome]:
    """Place `items` (one group: see `take_group`) in one statement, each with its outcome
    (`Undecided.AGAIN` included: the caller places those later)."""
    return await hot.add_orders(db, digest, user_id, items)


class InTransaction:
    """The caller's transaction as the place a group's statement runs (a mass order's)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def fetch(self, query: str, *args: Any) -> list[Any]:
        connection = await self.session.connection()
        return list((await connection.exec_driver_sql(query, args)).mappings())


async def place_in_order(
    db: hot.Fetcher, digest: str | None, user_id: int, items: list[GroupItem]
) -> list[Outcome]:
    """Place `items` in the order given, in as few statements as the rules allow (a group
    ends before a repeated target or request id, or at MAX_GROUP items): each item's
    outcome, never `Undecided.AGAIN` (such an item is placed by the next statement)."""
    outcomes: list[Outcome | None] = [None] * len(items)
    pending = list(range(len(items)))
    while pending:
        size = take_group((items[i] for i in pending), MAX_GROUP)
        group, pending = pending[:size], pending[size:]
        placed = await place_group(db, digest, user_id, [items[i] for i in group])
        again = [i for i, o in zip(group, placed, strict=True) if o is Undecided.AGAIN]
        for index, outcome in zip(group, placed, strict=True):
            outcomes[index] = outcome
        pending = again + pending
    assert all(o is not None and o is not Undecided.AGAIN for o in outcomes)
    return [o for o in outcomes if o is not None]


class AddGroups:
    """The in-process group commit of each user's adds (see the module's docstring)."""

    def __init__(self, limit: int = MAX_GROUP) -> None:
        self.limit = limit
        self._queues: dict[tuple[int, str], _Queue] = {}
        self.statements = 0  # statements run (the tests count them)

    async def place(
        self, pool: asyncpg.Pool, digest: str, user_id: int, item: GroupItem
    ) -> FastAdd:
        """Place one add with the others of its user in flight: its order, or its refusal
        (raised); Unsettled when the full path must decide."""
        key = (user_id, digest)
        queue = self._queues.get(key)
        if queue is None:
            return _settled(await self._lead(pool, digest, user_id, item))
        waiting = _Waiting(item, asyncio.get_running_loop().create_future())
        queue.waiting.append(waiting)
        # Shielded: a caller that goes away does not cancel the answer the statement gives.
        return _settled(await asyncio.shield(waiting.answer))

    async def _lead(
        self, pool: asyncpg.Pool, digest: str, user_id: int, item: GroupItem
    ) -> Outcome:
        """A first add with nothing in flight for its user: placed at once, by the caller
        itself; the adds that arrive meanwhile are placed after it, together."""
        queue = self._queues[(user_id, digest)] = _Queue()
        try:
            return (await self._run(pool, digest, user_id, [item]))[0]
        finally:
            if queue.waiting:
                queue.task = asyncio.create_task(self._drain(pool, digest, user_id, queue))
            else:
                del self._queues[(user_id, digest)]

    async def _drain(self, pool: asyncpg.Pool, digest: str, user_id: int, queue: _Queue) -> None:
        """Run statements for this user until nobody waits: each takes a group from the
        head of the queue; those it could not place go back to the head, in order."""
        try:
            while queue.waiting:
                size = take_group((w.item for w in queue.waiting), self.limit)
                group = [queue.waiting.popleft() for _ in range(size)]
                try:
                    outcomes = await self._run(pool, digest, user_id, [w.item for w in group])
                except BaseException as exc:
                    for waiting in group:
                        _answer_error(waiting, exc)
                    if not isinstance(exc, Exception):
                        raise
                    continue
                again = [w for w, o in zip(group, outcomes, strict=True) if o is Undecided.AGAIN]
                for waiting, outcome in zip(group, outcomes, strict=True):
                    if outcome is not Undecided.AGAIN and not waiting.answer.done():
                        waiting.answer.set_result(outcome)
                queue.waiting.extendleft(reversed(again))
        finally:
            del self._queues[(user_id, digest)]
            for waiting in queue.waiting:  # only when cancelled: nobody is left waiting
                _answer_error(waiting, asyncio.CancelledError())

    async def _run(
        self, pool: asyncpg.Pool, digest: str, user_id: int, items: list[GroupItem]
    ) -> list[Outcome]:
        self.statements += 1
        if len(items) > 1:
            return await place_group(pool, digest, user_id, items)
        return [await _place_one(pool, digest, user_id, items[0])]


def _settled(outcome: Outcome) -> FastAdd:
    if isinstance(outcome, DomainError):
        raise outcome
    if isinstance(outcome, Undecided):
        raise Unsettled(outcome)
    return outcome


async def _place_one(pool: asyncpg.Pool, digest: str, user_id: int, item: GroupItem) -> Outcome:
    """A lone add: ADD_ORDER's single statement, its answers as a group's outcomes."""
    try:
        added = await hot.add_order(
            pool, digest, user_id, item.cached, item.rate, item.order, item.request_id, item.asked
        )
    except DomainError as exc:
        return exc
    if added.placed is None:
        return Undecided.STALE  # stale, or refused: the full path decides and says why
    return added.placed


def _answer_error(waiting: _Waiting, exc: BaseException) -> None:
    if waiting.answer.done():
        return
    if not isinstance(exc, Exception):
        waiting.answer.cancel()
        return
    waiting.answer.set_exception(exc)
    waiting.answer.exception()  # retrieved here: a waiter gone away must not warn
