"""Exactly once across panels (SPEC §4), with real processes: reseller → panel A →
panel B → sandbox, where A's `add` to B loses its answer or A's worker dies mid-send,
still ends with one order at B, nothing in A's review queue and one charge at each level;
and a client retrying `add` with its request id after the API process died mid-request
gets the original order, charged once."""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
from fastapi import FastAPI, Request, Response
from sqlalchemy import func, select, update

from app import migrate
from app.context import AppContext
from app.db import utcnow
from app.embedded import free_port
from app.ledger.models import LedgerEntry
from app.main import create_app
from app.orders.models import Order
from app.providers import service as providers
from app.providers.client import ProviderClient
from app.providers.models import Provider
from app.settings import Settings
from tests.support.accounts import open_reseller
from tests.support.api import Api, MakeService, MakeUser, order_id_of
from tests.support.cli import panel_env, panel_process, worker_killed_on_exit
from tests.support.env import ADMIN_TOKEN, BASE_DB
from tests.support.ledger import ledger_ok
from tests.support.upstream import call_job, run_jobs, sandbox, sandbox_stats, serve_app
from tests.test_chain_and_crash import map_service, sandbox_config

LINK = "https://instagram.com/exactly-once"


class Cutter:
    """Between A and B: passes every call on to B; the `add`s it is told to cut reach B
    (B places the order) but their answers are held back until released, so A's
    connection times out, or A dies, before any answer."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.cut_next = 0
        self.forwarded_adds = 0
        self.release = asyncio.Event()
        self.app = FastAPI()
        self.app.add_api_route("/api/v2", self.relay, methods=["POST"])

    async def relay(self, request: Request) -> Response:
        body = await request.body()
        async with httpx.AsyncClient() as http:
            answer = await http.post(
                self.target,
                content=body,
                headers={"Content-Type": request.headers["content-type"]},
            )
        if b"action=add" in body:
            self.forwarded_adds += 1
            if self.cut_next > 0:
                self.cut_next -= 1
                await self.release.wait()
        return Response(answer.content, answer.status_code, media_type="application/json")


@dataclass
class Chain:
    a_ctx: AppContext
    b_ctx: AppContext
    b_settings: Settings
    sandbox_url: str
    cutter: Cutter
    a_account: int  # A's user at B
    a_provider: int  # B, as A's provider
    service_id: int  # A's service relayed to B


@asynccontextmanager
async def chain(ctx: AppContext, settings: Settings) -> AsyncIterator[Chain]:
    name = f"smm_test_b_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(BASE_DB)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    b_url = BASE_DB.rsplit("/", 1)[0] + "/" + name
    await asyncio.to_thread(migrate.upgrade, b_url)
    b_settings = settings.model_copy(
        update={"database_url": b_url, "queue_name": settings.queue_name + ":b"}
    )
    b_app = create_app(b_settings)
    try:
        async with (
            sandbox(sandbox_config()) as (sandbox_url, _),
            b_app.router.lifespan_context(b_app),
            serve_app(b_app) as b_http,
        ):
            b_ctx: AppContext = b_app.state.ctx
            await map_service(b_ctx, b_settings, f"{sandbox_url}/api/v2", "sandbox-key", "0.60")
            a_account = await open_reseller(b_ctx, "50", "panel-a@example.com")
            a_key = a_account.key
            cutter = Cutter(f"{b_http}/api/v2")
            async with serve_app(cutter.app) as cut_url:
                sid = await map_service(ctx, settings, f"{cut_url}/api/v2", a_key, "0.90")
                async with ctx.db.transaction() as session:
                    provider_id = await session.scalar(
                        select(Provider.id).order_by(Provider.id.desc()).limit(1)
                    )
                    provider = await session.get(Provider, provider_id)
                    assert provider is not None
                    # As when the operator adds B: its capabilities are probed.
                    found = await providers.probe(ProviderClient(provider.url, a_key, ctx.http))
                    assert found.request_id and found.status_by_request_id
                    providers.set_capabilities(provider, found)
                try:
                    yield Chain(
                        ctx,
                        b_ctx,
                        b_settings,
                        sandbox_url,
                        cutter,
                        a_account.user_id,
                        provider.id,
                        sid,
                    )
                finally:
                    cutter.release.set()
    finally:
        admin = await asyncpg.connect(BASE_DB)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def charges(ctx: AppContext, user_id: int) -> int:
    async with ctx.db.session() as session:
        count = await session.scalar(
            select(func.count(LedgerEntry.id)).where(
                LedgerEntry.user_id == user_id, LedgerEntry.kind == "charge"
            )
        )
    return int(count or 0)


async def orders_in(ctx: AppContext, **where: Any) -> list[Order]:
    async with ctx.db.session() as session:
        query = select(Order).order_by(Order.id)
        for column, value in where.items():
            query = query.where(getattr(Order, column) == value)
        return list(await session.scalars(query))


async def finish_chain(c: Chain, settings: Settings, reseller_id: int, order_id: int) -> None:
    """Everything that must hold at the end: one order at B, relayed once to the sandbox,
    nothing in A's review queue, one charge at each level, ledgers whole."""
    b_orders = await orders_in(c.b_ctx)
    assert len(b_orders) == 1
    a_order = (await orders_in(c.a_ctx, id=order_id))[0]
    assert (a_order.upstream_state, a_order.provider_order_id) == ("sent", str(b_orders[0].id))
    assert await orders_in(c.a_ctx, upstream_state="review") == []
    await run_jobs(c.b_settings, c.b_ctx)  # B → sandbox
    assert (await sandbox_stats(c.sandbox_url))["orders"] == 1
    assert await charges(c.a_ctx, reseller_id) == 1
    assert await charges(c.b_ctx, c.a_account) == 1
    await ledger_ok(c.a_ctx)
    await ledger_ok(c.b_ctx)


async def test_chain_with_the_a_to_b_answer_dropped_places_one_order_at_b(
    api: Api, ctx: AppContext, settings: Settings, make_user: MakeUser
) -> None:
    async with chain(ctx, settings) as c:
        reseller = await make_user(balance="10")
        c.cutter.cut_next = 1
        order_id = order_id_of(
            await api(reseller.key, "add", service=c.service_id, link=LINK, quantity=1000)
        )
        await run_jobs(settings, ctx, read_timeout=0.5)  # A → B: B places it, A hears nothing
        assert c.cutter.forwarded_adds == 1 and len(await orders_in(c.b_ctx)) == 1
        a_order = (await orders_in(ctx, id=order_id))[0]
        assert (a_order.upstream_state, a_order.provider_order_id) == ("queued", None)
        c.cutter.release.set()
        async with ctx.db.transaction() as session:
            await session.execute(
                update(Order).where(Order.id == order_id).values(next_attempt_at=utcnow())
            )
        await call_job(settings, ctx, "sweep")  # enqueues the due relay
        await run_jobs(settings, ctx)  # sent again with the same request id: B's order
        assert c.cutter.forwarded_adds == 2
        await finish_chain(c, settings, reseller.user_id, order_id)


async def test_chain_with_a_worker_killed_mid_send_places_one_order_at_b(
    api: Api, ctx: AppContext, settings: Settings, make_user: MakeUser
) -> None:
    async with chain(ctx, settings) as c:
        reseller = await make_user(balance="10")
        c.cutter.cut_next = 1
        order_id = order_id_of(
            await api(reseller.key, "add", service=c.service_id, link=LINK, quantity=1000)
        )
        async with worker_killed_on_exit(settings):
            for _ in range(400):  # until B has placed it and A waits for the answer
                if c.cutter.forwarded_adds == 1:
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("the worker never reached B")
            assert (await orders_in(ctx, id=order_id))[0].upstream_state == "sending"
        c.cutter.release.set()
        stale = settings.model_copy(update={"sending_stale_seconds": 0})
        assert (await call_job(stale, ctx, "sweep"))["to_review"] == 0
        # (the dead worker's job stays leased in Redis: the relay is run here directly)
        await call_job(settings, ctx, "relay_due_orders")
        assert c.cutter.forwarded_adds == 2
        await finish_chain(c, settings, reseller.user_id, order_id)


async def test_a_retry_after_the_api_process_died_mid_request_gets_the_original_order(
    api: Api, ctx: AppContext, settings: Settings, make_user: MakeUser, make_service: MakeService
) -> None:
    user = await make_user(balance="10")
    sid = await make_service()
    port = free_port()
    env = panel_env(settings, ADMIN_TOKEN=ADMIN_TOKEN)
    server = await panel_process("serve", "--host", "127.0.0.1", "--port", str(port), env=env)
    fields = {
        "key": user.key,
        "action": "add",
        "service": str(sid),
        "link": LINK,
        "quantity": "100",
        "request_id": "crash-1",
    }
    holder = await asyncpg.connect(settings.database_url or "")
    watcher = await asyncpg.connect(settings.database_url or "")
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            for _ in range(200):
                try:
                    if (await http.post("/api/v2", data={"action": "capabilities"})).is_success:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("the API never came up")
            # The user's row is held: the add waits inside its statement.
            lock = holder.transaction()
            await lock.start()
            await holder.execute("SELECT 1 FROM users WHERE id = $1 FOR UPDATE", user.user_id)
            call = asyncio.create_task(http.post("/api/v2", data=fields, timeout=60))
            for _ in range(200):
                # (read outside the holder's transaction: a transaction sees one snapshot)
                waiting = await watcher.fetchval(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE wait_event_type = 'Lock' AND datname = current_database()"
                )
                if waiting:
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("the add never reached the database")
            server.send_signal(signal.SIGKILL)  # the API dies mid-request
            await asyncio.wait_for(server.wait(), timeout=10)
            await lock.rollback()  # its statement goes on and commits: the answer is lost
            answer = await asyncio.gather(call, return_exceptions=True)
            assert isinstance(answer[0], httpx.TransportError)
    finally:
        if server.returncode is None:
            server.send_signal(signal.SIGKILL)
            await server.wait()
        await holder.close()
        await watcher.close()
    for _ in range(100):
        placed = await orders_in(ctx, request_id="crash-1")
        if placed:
            break
        await asyncio.sleep(0.05)
    assert len(placed) == 1
    # The client retries (another API process): the original order, charged once.
    retry = {k: v for k, v in fields.items() if k not in ("key", "action")}
    assert await api(user.key, "add", **retry) == {"order": placed[0].id}
    assert await charges(ctx, user.user_id) == 1
    await ledger_ok(ctx)
