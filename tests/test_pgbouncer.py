"""The production shape on existing engines: API processes and a worker on one PostgreSQL
behind PgBouncer in transaction mode (DB_POOLER=transaction), where consecutive statements
of one connection may run on different server sessions."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app.catalog.models import Category, Service
from app.context import AppContext
from app.db import Database, driver_url
from app.embedded import free_port
from app.sandbox import SandboxConfig, SandboxService
from app.settings import Settings
from tests.support.accounts import open_reseller
from tests.support.cli import ROOT, command_env
from tests.support.env import ADMIN_TOKEN, SECRET_KEY
from tests.support.ledger import ledger_ok
from tests.support.pgbouncer import pgbouncer, pools, through
from tests.support.upstream import register_provider, sandbox, sandbox_stats

STATEMENT = "SELECT CAST(:n AS integer) + 1"


@asynccontextmanager
async def server_taken(url: str) -> AsyncIterator[None]:
    """Another client holds a transaction open on the pooler, pinning the server session
    that is idle now (the only one so far): the next transaction gets another."""
    other = await asyncpg.connect(driver_url(url), statement_cache_size=0)
    try:
        async with other.transaction():
            await other.execute("SELECT 1")
            yield
    finally:
        await other.close()


async def twice_across_sessions(db: Database, url: str) -> list[int]:
    """The same statement twice on one connection of each pool, the second time on another
    server session than the first (as a transaction pooler does whenever it likes)."""
    answers = []
    pool = await db.driver()
    for turn in (1, 2):
        async with db.transaction() as session:
            answers.append(int(await session.scalar(text(STATEMENT), {"n": turn})))
        async with pool.acquire() as conn:
            answers.append(int(await conn.fetchval("SELECT $1::integer * 10", turn)))
        if turn == 1:
            async with server_taken(url):
                async with db.transaction() as session:
                    answers.append(int(await session.scalar(text(STATEMENT), {"n": 2})))
                async with pool.acquire() as conn:
                    answers.append(int(await conn.fetchval("SELECT $1::integer * 10", 2)))
    return answers


async def test_statements_pass_a_transaction_pooler_only_when_told_it_is_one(
    database_url: str, tmp_path: Path
) -> None:
    with pgbouncer(database_url, tmp_path, pool_size=2) as port:
        url = through(database_url, port)
        # One connection per pool, so each statement is the same connection's again.
        unaware = Database(url, pool_size=1, max_overflow=0, driver_pool_size=1)
        try:
            with pytest.raises(DBAPIError, match="prepared statement"):
                await twice_across_sessions(unaware, url)
        finally:
            await unaware.dispose()
    with pgbouncer(database_url, tmp_path, pool_size=2) as port:
        url = through(database_url, port)
        told = Database(url, pool_size=1, max_overflow=0, driver_pool_size=1, pooler="transaction")
        try:
            assert await twice_across_sessions(told, url) == [2, 10, 3, 20, 3, 20]
            assert told.feed("smm_pricing") is None  # no session to LISTEN on
        finally:
            await told.dispose()


# Upstream: service 1 delivers 60 % (Partial), 2 cancels, 3 refuses orders for good.
UPSTREAM = SandboxConfig(
    services=[
        SandboxService(1, "Partial", rate=Decimal("0.40"), behaviour="partial", partial_percent=60),
        SandboxService(2, "Canceled", rate=Decimal("0.40"), behaviour="cancel"),
        SandboxService(3, "Refused", rate=Decimal("0.40"), behaviour="reject"),
    ],
    seconds_to_start=0,
    seconds_to_complete=0,
)


async def _catalog(ctx: AppContext, settings: Settings, sandbox_url: str) -> list[int]:
    """Three services at 1.00 per 1000, relayed to the sandbox's services 1, 2, 3."""
    provider_id = await register_provider(ctx, settings, sandbox_url)
    async with ctx.db.transaction() as session:
        category = Category(name="Through PgBouncer")
        session.add(category)
        await session.flush()
        services = [
            Service(
                category_id=category.id,
                name=f"Upstream {n}",
                rate=Decimal("1.00"),
                min_quantity=10,
                max_quantity=100_000,
                provider_id=provider_id,
                provider_service_id=str(n),
            )
            for n in (1, 2, 3)
        ]
        session.add_all(services)
        await session.flush()
        return [service.id for service in services]


@asynccontextmanager
async def _panel_processes(env: dict[str, str], port: int) -> AsyncIterator[str]:
    """`smm-panel serve --workers 2` and `smm-panel worker`, stopped on leaving."""
    argv = (sys.executable, "-m", "app.cli")
    started = [
        await asyncio.create_subprocess_exec(
            *argv, *command, cwd=ROOT, env=env, stdout=asyncio.subprocess.DEVNULL
        )
        for command in (("serve", "--workers", "2", "--port", str(port)), ("worker",))
    ]
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as client:
            for _ in range(600):
                assert all(p.returncode is None for p in started), "a panel process exited"
                try:
                    if (await client.get(f"{url}/readyz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
        yield url
    finally:
        for process in started:
            process.terminate()
        for process in started:
            await asyncio.wait_for(process.wait(), timeout=60)


async def _final_statuses(
    client: httpx.AsyncClient, url: str, key: str, ids: list[int]
) -> dict[str, Any]:
    """`status` of every order, once none is active any more (the worker relays, syncs
    and refunds in the background)."""
    orders = ",".join(map(str, ids))
    for _ in range(300):
        answer = await client.post(
            f"{url}/api/v2", data={"key": key, "action": "status", "orders": orders}
        )
        found: dict[str, Any] = answer.json()
        if all(s["status"] in ("Partial", "Canceled", "Completed") for s in found.values()):
            return found
        await asyncio.sleep(0.2)
    raise AssertionError(f"orders still active: {found}")


async def test_api_processes_and_a_worker_place_relay_and_refund_through_pgbouncer(
    ctx: AppContext, settings: Settings, tmp_path: Path
) -> None:
    database_url = settings.database_url or ""
    async with sandbox(UPSTREAM) as (sandbox_url, _):
        partial, canceled, refused = await _catalog(ctx, settings, sandbox_url)
        reseller = await open_reseller(ctx, "20", "bouncer@example.com")
        with pgbouncer(database_url, tmp_path, pool_size=4) as bouncer:
            env = command_env(
                DATABASE_URL=through(database_url, bouncer),
                DB_POOLER="transaction",
                REDIS_URL=settings.redis_url or "",
                QUEUE_NAME=settings.queue_name,
                SECRET_KEY=SECRET_KEY,
                ADMIN_TOKEN=ADMIN_TOKEN,
                RATE_LIMIT_PER_IP="0",
                RATE_LIMIT_PER_KEY="0",
                STATUS_SYNC_SECONDS="1",
                DB_POOL_SIZE="3",
                DB_DRIVER_POOL_SIZE="3",
                LOG_LEVEL="WARNING",
                PROVIDER_ALLOW_PRIVATE="true",
            )
            async with (
                _panel_processes(env, free_port()) as url,
                httpx.AsyncClient(limits=httpx.Limits(max_keepalive_connections=0)) as client,
            ):

                async def add(service: int, n: int) -> int:
                    answer = await client.post(
                        f"{url}/api/v2",
                        data={
                            "key": reseller.key,
                            "action": "add",
                            "service": str(service),
                            "link": f"https://instagram.com/bouncer{service}-{n}",
                            "quantity": "1000",
                        },
                    )
                    order: int = answer.json()["order"]
                    return order

                placed = await asyncio.gather(
                    *(add(service, n) for service in (partial, canceled, refused) for n in range(4))
                )
                statuses = await _final_statuses(client, url, reseller.key, placed)
                balance = await client.post(
                    f"{url}/api/v2", data={"key": reseller.key, "action": "balance"}
                )
                listed = await client.post(
                    f"{url}/api/v2", data={"key": reseller.key, "action": "services"}
                )
                figures = pools(bouncer, urlsplit(database_url).path.lstrip("/"))
        upstream = await sandbox_stats(sandbox_url)

    by_status = {str(n): s["status"] for n, s in statuses.items()}
    assert sorted(by_status.values()) == ["Canceled"] * 8 + ["Partial"] * 4
    assert {statuses[str(n)]["remains"] for n in placed[:4]} == {"400"}
    # 12 orders at 1.00; refunds: 4 × 0.40 (Partial 60 %), 4 × 1.00 canceled upstream,
    # 4 × 1.00 refused upstream (never sent).
    assert balance.json() == {"balance": "17.60000", "currency": "USD"}
    assert len(listed.json()) == 3
    assert upstream["add_calls"] == {"1": 4, "2": 4, "3": 4}
    await ledger_ok(ctx)
    # It all went through PgBouncer, the processes' connections sharing its few.
    assert figures["transactions"] > 100
    assert figures["servers"] <= 4 < figures["clients"]
