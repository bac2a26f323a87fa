"""Orders whose upstream outcome is unknown, made the way production makes them: a real
sandbox provider answers `add` with HTTP 500, the relay cannot tell whether the order was
created, and the order waits in the review queue for an operator."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal

from app.context import AppContext
from app.sandbox import SandboxConfig, SandboxService
from app.settings import Settings
from tests.support.api import Api, MakeService, MakeUser, Reseller
from tests.support.upstream import register_provider, run_jobs, sandbox, set_behaviour

SANDBOX_SERVICE = 7


@dataclass(frozen=True)
class Upstream:
    url: str
    provider_id: int


@asynccontextmanager
async def review_provider(ctx: AppContext, settings: Settings) -> AsyncIterator[Upstream]:
    """A sandbox provider selling one service (id 7, 0.40 per 1000), registered."""
    config = SandboxConfig(
        services=[
            SandboxService(SANDBOX_SERVICE, "Followers", rate=Decimal("0.40"), min=10, max=10**5)
        ],
        seconds_to_start=0,
        seconds_to_complete=0,
    )
    async with sandbox(config) as (url, _):
        yield Upstream(url, await register_provider(ctx, settings, url))


async def orders_in_review(
    api: Api,
    ctx: AppContext,
    settings: Settings,
    make_user: MakeUser,
    make_service: MakeService,
    upstream: Upstream,
    count: int,
) -> tuple[Reseller, list[int]]:
    """`count` orders of 1000 (0.90 each) of a new customer with 10.00, left in review."""
    user = await make_user(balance="10")
    service_id = await make_service(
        min_quantity=10, provider_id=upstream.provider_id, provider_service_id=str(SANDBOX_SERVICE)
    )
    await set_behaviour(upstream.url, SANDBOX_SERVICE, behaviour="http500")
    ids = []
    for i in range(count):
        answer = await api(
            user.key, "add", service=service_id, link=f"https://instagram.com/r/{i}", quantity=1000
        )
        ids.append(answer["order"])
    await run_jobs(settings, ctx)
    await set_behaviour(upstream.url, SANDBOX_SERVICE, behaviour="complete")
    return user, ids
