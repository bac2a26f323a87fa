"""Database engine, session factory and the declarative base.

Transactions have one owner: the request (through the `Tx` dependency of app/http/tx.py,
which opens `Database.transaction()`) or the job. Work that must follow a commit (enqueueing
a job) is registered with `after_commit(session, work)` and runs only once the transaction
has committed; a rolled-back transaction drops it.
The hot paths of the public API (`add`, `status`) run single statements on a plain asyncpg
pool (`Database.driver()`) instead: one round trip, no ORM.

Behind a pooler in transaction mode (PgBouncer `pool_mode = transaction`, DB_POOLER=transaction)
consecutive transactions of one connection may run on different server sessions, so nothing
may outlive a transaction on the server: statements are prepared unnamed and parsed again
with every execution (asyncpg's statement cache off, SQLAlchemy's too), so no name can
collide or go missing and nothing is left behind to clean up; and no connection LISTENs (the
change feed is off: `services` reads the database on every call).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import asyncpg
from sqlalchemy import MetaData, Numeric
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase

from app.changefeed import ChangeFeed

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Every money column: exact, 8 fractional digits (rates may need more than cents).
Money = Numeric(20, 8)

# The largest id any table can hold (ids are PostgreSQL bigints): every id a request
# names is bounded by it, so an oversized one is refused before it reaches a statement.
MAX_ID = 2**63 - 1


AfterCommit = Callable[[], Awaitable[object]]
_AFTER_COMMIT = "after_commit"


def after_commit(session: AsyncSession, work: AfterCommit) -> None:
    """Run `work` once the session's transaction has committed (never if it rolls back)."""
    session.info.setdefault(_AFTER_COMMIT, []).append(work)


def sql_literal(word: str) -> str:
    """A constant of the code (a state name, a kind) as an SQL string literal, for the
    statements that restate a Python rule: they take their constants from Python."""
    if not word.replace(" ", "").replace("_", "").isalnum():
        raise ValueError(f"not a plain constant: {word!r}")
    return f"'{word}'"


def sql_list(words: Sequence[str]) -> str:
    """Constants of the code as the items of an SQL `IN (…)` list."""
    return ", ".join(sql_literal(word) for word in words)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def utcnow() -> datetime:
    return datetime.now(UTC)


def async_url(url: str) -> str:
    """Accept plain postgres:// URLs and point them at asyncpg."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    return url


def driver_url(url: str) -> str:
    """The same URL for asyncpg itself."""
    return "postgresql://" + async_url(url)[len("postgresql+asyncpg://") :]


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def _no_reset(conn: asyncpg.Connection) -> None:
    return None


POOLERS = ("none", "transaction")
# Behind a transaction pooler: no statement cache (asyncpg's nor SQLAlchemy's) and no
# statement name. asyncpg prepares an unnamed statement and, its cache being off, parses it
# again in the same message batch as every execution, which one server session receives.
UNNAMED_STATEMENTS: dict[str, object] = {
    "statement_cache_size": 0,
    "prepared_statement_cache_size": 0,
    "prepared_statement_name_func": lambda: "",
}


class Database:
    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 20,
        max_overflow: int = 20,
        driver_pool_size: int = 10,
        listen: bool = True,
        pooler: str = "none",
    ) -> None:
        if pooler not in POOLERS:
            raise ValueError(f"DB_POOLER is one of {', '.join(POOLERS)}, not {pooler!r}")
        self.url = async_url(url)
        self.driver_pool_size = driver_pool_size
        self.transaction_pooled = pooler == "transaction"
        # A transaction pooler keeps no session to LISTEN on.
        self.listen = listen and not self.transaction_pooled
        self._feeds: dict[str, ChangeFeed] = {}
        self._driver: asyncpg.Pool | None = None
        self._driver_lock = asyncio.Lock()
        connect_args: dict[str, object] = {"server_settings": {"timezone": "UTC"}}
        if self.transaction_pooled:
            connect_args.update(UNNAMED_STATEMENTS)
        self.engine: AsyncEngine = create_async_engine(
            self.url,
            pool_size=pool_size,
            max_overflow=max_overflow,
            pool_pre_ping=True,
            connect_args=connect_args,
        )
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session inside one transaction: committed on success, rolled back on error;
        the work registered with `after_commit` runs after the commit, in order."""
        async with self.sessionmaker() as session:
            async with session.begin():
                yield session
            pending: list[AfterCommit] = session.info.pop(_AFTER_COMMIT, [])
        for work in pending:
            await work()

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self.sessionmaker() as session:
            yield session

    async def driver(self) -> asyncpg.Pool:
        """The plain asyncpg pool, opened on first use."""
        if self._driver is None:
            async with self._driver_lock:
                if self._driver is None:
                    self._driver = await asyncpg.create_pool(
                        driver_url(self.url),
                        min_size=1,
                        max_size=self.driver_pool_size,
                        init=_init_connection,
                        # Only single statements run here (no session state to clear),
                        # so a released connection skips the reset round trip.
                        reset=_no_reset,
                        server_settings={"timezone": "UTC"},
                        statement_cache_size=0 if self.transaction_pooled else 100,
                    )
        return self._driver

    def feed(self, channel: str) -> ChangeFeed | None:
        """The change feed of a notification channel (app/changefeed.py), opened on first
        use; None when listening is off (e.g. behind a pooler that keeps no session)."""
        if not self.listen:
            return None
        feed = self._feeds.get(channel)
        if feed is None:
            feed = self._feeds[channel] = ChangeFeed(driver_url(self.url), channel)
        return feed

    async def dispose(self) -> None:
        feeds, self._feeds = list(self._feeds.values()), {}
        for feed in feeds:
            await feed.close()
        if self._driver is not None:
            await self._driver.close()
            self._driver = None
        await self.engine.dispose()
