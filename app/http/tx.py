"""The request's transaction, injected: `tx: Tx` in a handler is an AsyncSession inside one
transaction, committed when the handler returns (before the response is sent, so a failed
commit is the caller's error, never a silent loss) and rolled back when it raises.

`jobs: Jobs` is that transaction's after-commit queue: the background jobs a command asks
for (relay an order, its cancel, a refill) are enqueued once the transaction has committed
and never when it rolls back (`app.db.after_commit`). A front end that opens its own
transaction (API v2's direct route) makes the same queue with `AfterCommitJobs(session,
queue)`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import after_commit
from app.http.context import get_services
from app.jobs import JobQueue


async def transaction(request: Request) -> AsyncIterator[AsyncSession]:
    async with get_services(request).db.transaction() as session:
        yield session


async def read_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A session for handlers that only read (no transaction held open by intent)."""
    async with get_services(request).db.session() as session:
        yield session


# scope="function": the commit happens when the handler returns, before the response.
Tx = Annotated[AsyncSession, Depends(transaction, scope="function")]
Reader = Annotated[AsyncSession, Depends(read_session, scope="function")]


class AfterCommitJobs:
    """The jobs of one transaction, enqueued after its commit. Job arguments are ids of
    rows the transaction wrote, so a job never looks for a row that is not committed; and
    each job is derivable from those rows, so one lost with Redis is found by the sweeper."""

    def __init__(self, session: AsyncSession, queue: JobQueue) -> None:
        self.session = session
        self.queue = queue

    def relay_order(self, order_id: int) -> None:
        """The order is due upstream now."""
        after_commit(self.session, partial(self.queue.relay_order, order_id))

    def relay_cancel(self, order_id: int) -> None:
        """The order's cancel is due upstream."""
        after_commit(self.session, partial(self.queue.relay_cancel, order_id))

    def relay_refill(self, refill_id: int) -> None:
        """The refill is due upstream."""
        after_commit(self.session, partial(self.queue.relay_refill, refill_id))


def after_commit_jobs(request: Request, tx: Tx) -> AfterCommitJobs:
    return AfterCommitJobs(tx, get_services(request).jobs)


Jobs = Annotated[AfterCommitJobs, Depends(after_commit_jobs)]
