"""A PostgreSQL notification channel as a change counter with a fence.

`epoch` grows each time a notification arrives on the channel, and each time the listening
connection is opened or lost (changes may have gone unnoticed meanwhile). `fence()` answers
the epoch that counts every change committed before it was called, after one round trip on
the listening connection sent after the call:

- a committing session signals the listening sessions before it acknowledges the commit,
  and a listening session sends the notifications it was signalled before the answer of its
  next command (PostgreSQL does so on the way back to idle), so the answer of a command sent
  after the commit comes after the commit's notification;
- asyncpg hands a notification to its listener with `call_soon` when it reads it, and wakes
  the command's caller later, through the command's future: the count is up to date when
  the round trip returns.

So a fact read by a statement, tagged with the epoch read before that statement, is still
true while `fence()` answers the same epoch: any change committed since would have raised
the epoch. Calls that arrive while a fence is in flight share the next one, so under load
one round trip answers many calls; a quiet process pays one small round trip per call.

`fence()` answers None when the feed is off or down; the caller then reads the database as
if nothing were cached. A lost connection is reopened on a later call, at most once per
`retry_seconds`.
"""

from __future__ import annotations

import asyncio
import logging
import time

import asyncpg

log = logging.getLogger(__name__)

# Sent as the fence: the simple query protocol, no statement to prepare.
FENCE = "SELECT 1"


class ChangeFeed:
    def __init__(
        self, dsn: str, channel: str, *, retry_seconds: float = 1.0, timeout: float = 5.0
    ) -> None:
        self.dsn = dsn
        self.channel = channel
        self.retry_seconds = retry_seconds
        self.timeout = timeout
        self.epoch = 0
        self.round_trips = 0  # fences sent
        self._conn: asyncpg.Connection | None = None
        self._opening: asyncio.Future[bool] | None = None
        self._retry_at = 0.0
        self._next: asyncio.Future[int | None] | None = None  # the fence still to send
        self._sender: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def live(self) -> bool:
        return self._conn is not None and not self._conn.is_closed()

    async def fence(self) -> int | None:
        """The epoch once every change committed before this call has been counted; None
        when the feed cannot tell (off, down, or the round trip failed)."""
        if not self.live and not await self._reopen():
            return None
        future = self._next
        if future is None:
            future = self._next = asyncio.get_running_loop().create_future()
            if self._sender is None:
                self._sender = asyncio.get_running_loop().create_task(self._send())
        return await asyncio.shield(future)

    async def close(self) -> None:
        self._closed = True
        conn, self._conn = self._conn, None
        if self._sender is not None:
            self._sender.cancel()
        if self._next is not None and not self._next.done():
            self._next.set_result(None)
        if conn is not None and not conn.is_closed():
            await conn.close(timeout=self.timeout)

    def _noticed(self, *_: object) -> None:
        self.epoch += 1

    def _lost(self, conn: object) -> None:
        if conn is self._conn:
            self._conn = None
            self.epoch += 1

    async def _send(self) -> None:
        future: asyncio.Future[int | None] | None = None
        try:
            while self._next is not None:
                future, self._next = self._next, None
                conn = self._conn
                epoch: int | None = None
                if conn is not None:
                    try:
                        self.round_trips += 1
                        await conn.execute(FENCE, timeout=self.timeout)
                        epoch = self.epoch
                    except Exception as exc:
                        log.warning("change feed %s lost: %s", self.channel, type(exc).__name__)
                        self._drop(conn)
                if not future.done():
                    future.set_result(epoch if self._conn is conn else None)
        finally:
            self._sender = None
            # Closed (cancelled) with a fence in flight: its callers must not wait forever.
            if future is not None and not future.done():
                future.set_result(None)

    def _drop(self, conn: asyncpg.Connection) -> None:
        self._lost(conn)
        conn.terminate()
        self._retry_at = time.monotonic() + self.retry_seconds

    async def _reopen(self) -> bool:
        """Open the listening connection, once for all the calls waiting on it."""
        if self._closed or time.monotonic() < self._retry_at:
            return False
        if self._opening is not None:
            return await asyncio.shield(self._opening)
        opening = self._opening = asyncio.get_running_loop().create_future()
        opened = False
        try:
            await self._open()
            opened = True
        except Exception as exc:
            log.warning("change feed %s unavailable: %s", self.channel, type(exc).__name__)
            self._retry_at = time.monotonic() + self.retry_seconds
        finally:
            self._opening = None
            opening.set_result(opened)
        return opened

    async def _open(self) -> None:
        conn = await asyncpg.connect(
            self.dsn,
            timeout=self.timeout,
            server_settings={"application_name": f"smm-panel feed {self.channel}"},
        )
        try:
            await conn.add_listener(self.channel, self._noticed)
        except BaseException:
            conn.terminate()
            raise
        conn.add_termination_listener(self._lost)
        self._conn = conn
        self.epoch += 1  # whatever was cached before this connection may have missed a change
