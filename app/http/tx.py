"""The request's transaction, injected: `tx: Tx` in a handler is an AsyncSession inside one
transaction, committed when the handler returns (before the response is sent, so a failed
commit is the caller's error, never a silent loss) and rolled back when it raises. Jobs
registered with `app.db.after_commit(tx, …)` are enqueued after the commit."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.http.context import get_services


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
