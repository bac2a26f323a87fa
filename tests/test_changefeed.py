"""The change feed (app/changefeed.py): a fence counts every change committed before it
was called, concurrent calls share one round trip, and a lost connection never lets a
fact read before the loss pass for current."""

from __future__ import annotations

import asyncio

import asyncpg
import httpx
import pytest

from app import changefeed
from app.accounts.service import hash_key
from app.catalog.sql import PRICING_CHANNEL
from app.changefeed import ChangeFeed
from app.context import AppContext
from app.db import Database, driver_url
from tests.support.api import Api, MakeService, MakeUser

CHANNEL = "test_feed"


@pytest.fixture
async def feed(database_url: str) -> ChangeFeed:
    return ChangeFeed(driver_url(database_url), CHANNEL, retry_seconds=0.0)


async def test_a_fence_counts_every_change_committed_before_it(
    feed: ChangeFeed, database_url: str
) -> None:
    writer = await asyncpg.connect(driver_url(database_url))
    try:
        seen = await feed.fence()
        assert seen is not None
        for _ in range(300):
            await writer.execute(f"SELECT pg_notify('{CHANNEL}', '')")
            now = await feed.fence()
            assert now is not None and now > seen
            seen = now
        # A transaction rolled back notifies nobody.
        undone = writer.transaction()
        await undone.start()
        await writer.execute(f"SELECT pg_notify('{CHANNEL}', '')")
        await undone.rollback()
        assert await feed.fence() == seen
    finally:
        await writer.close()
        await feed.close()


async def test_concurrent_calls_share_round_trips(feed: ChangeFeed) -> None:
    await feed.fence()
    before = feed.round_trips
    answers = await asyncio.gather(*(feed.fence() for _ in range(200)))
    assert len(set(answers)) == 1 and answers[0] is not None
    # One fence in flight and one queued behind it serve them all.
    assert feed.round_trips - before <= 2
    await feed.close()


async def test_a_lost_connection_moves_the_epoch_and_is_reopened(
    feed: ChangeFeed, database_url: str
) -> None:
    first = await feed.fence()
    assert first is not None and feed.live
    admin = await asyncpg.connect(driver_url(database_url))
    try:
        pids = await admin.fetch(
            "SELECT pid FROM pg_stat_activity WHERE application_name = $1",
            f"smm-panel feed {CHANNEL}",
        )
        assert pids
        for row in pids:
            await admin.execute("SELECT pg_terminate_backend($1)", row["pid"])
    finally:
        await admin.close()
    # Whatever answers next, it never vouches for the epoch of before the loss.
    for _ in range(50):
        now = await feed.fence()
        if now is not None:
            break
        await asyncio.sleep(0.05)
    assert now is not None and now > first and feed.live
    await feed.close()
    assert await feed.fence() is None


async def test_a_feed_that_cannot_connect_answers_none(database_url: str) -> None:
    gone = ChangeFeed(driver_url(database_url).rsplit("/", 1)[0] + "/no_such_db", CHANNEL)
    assert await gone.fence() is None
    assert await gone.fence() is None  # not retried before retry_seconds
    assert not gone.live
    off = Database(database_url, pool_size=1, max_overflow=0, listen=False)
    assert off.feed(PRICING_CHANNEL) is None
    await off.dispose()


def _rates(response: httpx.Response) -> dict[int, str]:
    return {row["service"]: row["rate"] for row in response.json()}


async def test_services_from_memory_follow_changes_made_by_any_connection(
    client: httpx.AsyncClient,
    api: Api,
    ctx: AppContext,
    make_user: MakeUser,
    make_service: MakeService,
    database_url: str,
) -> None:
    """Changes made outside this process (another connection, as a worker or an operator's
    psql would) show on the very next call, though the key's pricing is in memory."""
    user, other = await make_user(), await make_user()
    sid = await make_service()

    async def services(key: str) -> httpx.Response:
        return await client.post("/api/v2", data={"key": key, "action": "services"})

    assert _rates(await services(user.key)) == {sid: "0.90"}
    assert hash_key(user.key) in ctx.hot.pricing  # answered from memory from now on
    outside = await asyncpg.connect(driver_url(database_url))
    try:
        await outside.execute("UPDATE users SET discount_percent = 50 WHERE id = $1", user.user_id)
        assert _rates(await services(user.key)) == {sid: "0.45"}
        await outside.execute("UPDATE services SET rate = 2 WHERE id = $1", sid)
        assert _rates(await services(user.key)) == {sid: "1.00"}
        await outside.execute(
            "INSERT INTO user_rates (user_id, service_id, rate) VALUES ($1, $2, 0.3)",
            user.user_id,
            sid,
        )
        assert _rates(await services(user.key)) == {sid: "0.30"}
        assert _rates(await services(other.key)) == {sid: "2.00"}
        await outside.execute(
            "UPDATE api_keys SET revoked_at = now() WHERE user_id = $1", user.user_id
        )
        assert await api(user.key, "services") == {"error": "Invalid API key"}
        await outside.execute("UPDATE users SET status = 'blocked' WHERE id = $1", other.user_id)
        assert await api(other.key, "services") == {"error": "Invalid API key"}
        # The balance moving (every order) does not clear what is remembered.
        third = await make_user("5")
        await services(third.key)
        epoch = ctx.hot.pricing_epoch
        await outside.execute("UPDATE users SET balance = balance - 1 WHERE id = $1", third.user_id)
        await services(third.key)
        assert ctx.hot.pricing_epoch == epoch
    finally:
        await outside.close()


async def test_closing_with_a_fence_in_flight_answers_its_callers(
    feed: ChangeFeed, monkeypatch: pytest.MonkeyPatch
) -> None:
    await feed.fence()
    monkeypatch.setattr(changefeed, "FENCE", "SELECT pg_sleep(1)")
    waiting = asyncio.gather(*(feed.fence() for _ in range(5)))
    await asyncio.sleep(0.2)  # the fence is on its way
    await feed.close()
    assert await asyncio.wait_for(waiting, timeout=5) == [None] * 5
