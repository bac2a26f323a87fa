"""Several panels on one Redis database: each panel's queue, job ids, cron ids, health
check and limits carry its own prefix, so no panel takes another's work, skips a cron tick
another panel ran, or refuses a caller another panel counted (chained panels on one host
are exactly this set-up)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from app.context import AppContext
from app.orders.models import Order
from app.sandbox import SandboxConfig, SandboxService
from app.settings import Settings
from tests.support.panels import Panel, another_database, panel_settings, running_panel, working
from tests.support.upstream import sandbox, sandbox_stats

# How the operators of the two panels configured them (panel A, panel B): nothing at all,
# only the queue (which used to keep the relay apart but not the crons), or the prefix.
CONFIGURATIONS = {
    "defaults": ({}, {}),
    "queue names": ({"queue_name": "panel-a"}, {"queue_name": "panel-b"}),
    "prefixes": ({"redis_prefix": "shop-a"}, {"redis_prefix": "shop-b"}),
}
WATCH_SECONDS = 5


@pytest.fixture(scope="module")
async def second_database() -> AsyncIterator[str]:
    async with another_database() as url:
        yield url


@pytest.fixture
async def clean_second(second_database: str) -> str:
    from sqlalchemy.ext.asyncio import create_async_engine

    from app.db import async_url
    from tests.support.env import TABLES

    engine = create_async_engine(async_url(second_database))
    async with engine.begin() as conn:
        await conn.exec_driver_sql(f"TRUNCATE {TABLES} CASCADE")
    await engine.dispose()
    return second_database


def ticks(panel: Panel, cron: str) -> set[int]:
    """The seconds (Unix time) of the ticks of `cron` this panel's worker ran."""
    marker = f":cron:{cron}:"
    return {int(job_id.rsplit(":", 1)[1]) // 1000 for job_id in panel.ran if marker in job_id}


async def started_schedules(*panels: Panel) -> None:
    """Until each panel's worker has run its start-up sweep: its schedule is running."""
    for _ in range(200):
        if all(any(":cron:sweep:" in job_id for job_id in p.ran) for p in panels):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("a worker did not start its schedule")


async def upstream_state(panel: Panel, order_id: int) -> str:
    async with panel.ctx.db.session() as session:
        state = await session.scalar(select(Order.upstream_state).where(Order.id == order_id))
    assert state is not None
    return state


@pytest.mark.parametrize("configuration", list(CONFIGURATIONS))
async def test_two_panels_on_one_redis_run_every_tick_of_their_crons_and_only_their_jobs(
    ctx: AppContext, settings: Settings, clean_second: str, configuration: str
) -> None:
    config_a, config_b = CONFIGURATIONS[configuration]
    # Status sync every second: a tick skipped by either panel shows within the watch.
    a_settings = panel_settings(settings.database_url or "", status_sync_seconds=1, **config_a)
    b_settings = panel_settings(clean_second, status_sync_seconds=1, **config_b)
    assert a_settings.redis_namespace != b_settings.redis_namespace
    upstream = SandboxConfig(
        services=[SandboxService(1, "Followers", rate=Decimal("0.40"), min=10, max=100_000)],
        seconds_to_start=60,
    )
    async with (
        sandbox(upstream) as (sandbox_url, _),
        running_panel(a_settings) as a,
        running_panel(b_settings) as b,
    ):
        a_user, a_service = await a.reseller_on(sandbox_url, "10")
        b_user, b_service = await b.reseller_on(sandbox_url, "10")
        async with working(a, b):
            await started_schedules(a, b)
            started = time.time()
            # Each panel takes an order while both workers poll the one Redis.
            await asyncio.sleep(1.2)
            a_order = await a.add(a_user.key, a_service, "https://instagram.com/panel-a")
            b_order = await b.add(b_user.key, b_service, "https://instagram.com/panel-b")
            await asyncio.sleep(WATCH_SECONDS - 1.2)
            stopped = time.time()

        # Each order was relayed at once, by its own panel's worker (a job run by the other
        # panel's worker would have looked for it in the wrong database).
        assert await upstream_state(a, a_order) == "sent"
        assert await upstream_state(b, b_order) == "sent"
        assert (await sandbox_stats(sandbox_url))["add_calls"] == {"1": 2}

    # Every tick of the status sync ran on both panels, not on whichever enqueued first
    # (the last second is left out: its tick may still be starting).
    expected = set(range(int(started) + 1, int(stopped - 1)))
    assert len(expected) >= 3
    assert ticks(a, "sync_statuses") >= expected
    assert ticks(b, "sync_statuses") >= expected
    # No job crossed over: each worker ran only jobs under its own panel's prefix.
    for panel in (a, b):
        foreign = [j for j in panel.ran if not j.startswith(panel.settings.redis_namespace + ":")]
        assert foreign == []
        assert any(":relay:due:" in job_id for job_id in panel.ran)
    # Whatever was written to Redis carries one panel's prefix (arq's own job, retry and
    # in-progress keys carry the prefixed job id).
    redis = ctx.jobs.redis
    assert redis is not None
    for key in [k.decode() for k in await redis.keys("*")]:
        owned = key.split(":", 2)[2] if key.startswith("arq:") else key
        assert panel_of(owned, a, b), key


def panel_of(key: str, *panels: Panel) -> Panel | None:
    """The panel whose prefix `key` carries (the queue may be named as the prefix itself)."""
    for panel in panels:
        prefix = panel.settings.redis_namespace
        if key == prefix or key.startswith(prefix + ":"):
            return panel
    return None


async def _login(panel: Panel, email: str) -> int:
    response = await panel.http.post(
        "/client/v1/login", json={"email": email, "password": "not the password"}
    )
    return response.status_code


async def test_each_panel_counts_its_own_rate_limits_and_sign_in_locks(
    ctx: AppContext, settings: Settings, clean_second: str
) -> None:
    limits: dict[str, Any] = {"rate_limit_per_ip": 3, "client_attempts_per_ip": 1}
    a_settings = panel_settings(settings.database_url or "", **limits)
    b_settings = panel_settings(clean_second, **limits)
    async with running_panel(a_settings) as a, running_panel(b_settings) as b:
        # The limits count per calendar minute: start well inside one.
        if time.time() % 60 > 45:
            await asyncio.sleep(61 - time.time() % 60)
        # Three calls from this address to panel A use up A's limit for the minute...
        for _ in range(3):
            assert await a.call("no-such-key", "balance") == {"error": "Invalid API key"}
        # ...and none of B's: the same address calling B is counted by B alone.
        for _ in range(3):
            assert await b.call("no-such-key", "balance") == {"error": "Invalid API key"}
        refused = await a.http.post("/api/v2", data={"key": "no-such-key", "action": "balance"})
        assert refused.status_code == 429
        assert refused.json() == {"error": "Too many requests, try again later"}
        # A failed sign-in on A locks this address on A, not on B.
        assert await _login(a, "nobody@example.com") == 401
        assert await _login(a, "nobody@example.com") == 429
        assert await _login(b, "nobody@example.com") == 401
    redis = ctx.jobs.redis
    assert redis is not None
    keys = [k.decode() for k in await redis.keys("*")]
    owners = [panel_of(key, a, b) for key in keys]
    assert None not in owners and a in owners and b in owners


def test_the_prefix_is_redis_prefix_else_queue_name_else_the_database_name() -> None:
    url = "postgresql+asyncpg://panel:secret@db.internal:5432/shop_a?ssl=require"
    plain = Settings(database_url=url)
    assert (plain.redis_namespace, plain.arq_queue) == ("smm:shop_a", "smm:shop_a:queue")
    # An operator who named the queue (the old way to separate panels) named the panel.
    named = Settings(database_url=url, queue_name="panel-a")
    assert (named.redis_namespace, named.arq_queue) == ("panel-a", "panel-a")
    both = Settings(database_url=url, queue_name="jobs", redis_prefix="shop")
    assert (both.redis_namespace, both.arq_queue) == ("shop", "jobs")
    prefixed = Settings(database_url=url, redis_prefix="shop")
    assert (prefixed.redis_namespace, prefixed.arq_queue) == ("shop", "shop:queue")
    # Copied with another database (as `run` does with the embedded one): derived anew.
    copied = plain.model_copy(update={"database_url": "postgresql://h/other"})
    assert copied.redis_namespace == "smm:other"
