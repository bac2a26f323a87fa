"""The invariants of one relay run (app/flows/relay/sending.py: RelayDue, SendSlots), checked in
code and exercised here against the real sandbox."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from app.context import AppContext
from app.flows import relay
from app.providers.client import build_http_client
from app.sandbox import SandboxConfig, SandboxService
from app.settings import Settings
from tests.support.api import Api, MakeService, MakeUser
from tests.support.upstream import register_provider, sandbox, upstream_states


@pytest.fixture
async def slow_service(
    ctx: AppContext, settings: Settings, make_service: MakeService
) -> AsyncIterator[int]:
    config = SandboxConfig(
        services=[
            SandboxService(
                1,
                "Slow",
                rate=Decimal("0.40"),
                min=10,
                max=1000,
                behaviour="slow",
                delay_seconds=30,
            )
        ]
    )
    async with sandbox(config) as (url, _):
        provider_id = await register_provider(ctx, settings, url)
        yield await make_service(min_quantity=10, provider_id=provider_id, provider_service_id="1")


async def test_a_slot_is_given_back_once_and_only_if_held() -> None:
    http = build_http_client()
    slots = relay.SendSlots(3, http)
    try:
        taken = slots.take(2)
        assert (slots.free, slots.held) == (1, 2)
        slots.give(taken[:1])
        with pytest.raises(AssertionError):
            slots.give(taken[:1])  # given back twice
        with pytest.raises(AssertionError):
            slots.give([7])  # never existed
        slots.give(taken[1:])
        assert (slots.free, slots.held) == (3, 0)
    finally:
        await slots.aclose()
        await http.aclose()


async def test_a_run_stopped_mid_flight_gives_every_slot_back(
    api: Api,
    ctx: AppContext,
    settings: Settings,
    make_user: MakeUser,
    slow_service: int,
) -> None:
    user = await make_user(balance="10")
    for n in range(3):
        await api(user.key, "add", service=slow_service, link=f"https://x.y/{n}", quantity=10)
    http = build_http_client(
        connect_timeout=2, read_timeout=60, allow_private=settings.provider_allow_private
    )
    slots = relay.SendSlots(4, http)
    try:
        run = asyncio.create_task(relay.relay_due(ctx.db, settings, slots))
        for _ in range(500):
            await asyncio.sleep(0.01)
            if slots.held == 3:
                break
        assert (slots.held, slots.free) == (3, 1)  # three calls in flight, one slot idle
        run.cancel()  # the worker shuts down
        with pytest.raises(asyncio.CancelledError):
            await run
        for _ in range(100):
            if slots.free == 4:
                break
            await asyncio.sleep(0.01)
        assert (slots.held, slots.free, slots.claiming) == (0, 4, False)
    finally:
        await slots.aclose()
        await http.aclose()
    # Their outcome is unknown: they stay `sending` for the sweeper to move to review.
    assert await upstream_states(ctx) == ["sending"] * 3
