"""`smm-panel run`: the whole panel in one process for a zero-configuration start.

Embedded Postgres and Redis (unless DATABASE_URL / REDIS_URL are set; the ones a killed
previous run left are stopped first, app/embedded.py), the start-up checks of
app/preflight.py, migrations, the sandbox provider, the demo catalog wired to it, a demo
user, the API and the worker. The demo configures no payment gateway and invents no
exchange rate: a gateway set up by the operator needs a rate for its currency, or the run
stops with the line that names it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from dataclasses import dataclass

import uvicorn
from sqlalchemy import BigInteger, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app import demo, migrate
from app.db import Database
from app.embedded import EmbeddedServices, kept_secret, start_embedded
from app.orders.models import Order
from app.preflight import (
    check_database_url,
    check_redis_url,
    gateways_can_price,
    reach_database,
    reach_redis,
)
from app.providers.models import Provider
from app.providers.service import create_provider
from app.sandbox import default_sandbox_config, serve_sandbox
from app.settings import Settings, listening_url

log = logging.getLogger(__name__)

SANDBOX_KEY = "sandbox-key"


@dataclass(frozen=True)
class Prepared:
    user_id: int
    key: str
    # Where the in-memory sandbox starts its order ids: past every id it gave this
    # panel before a restart (an upstream id names one order, see orders/anomalies.py).
    sandbox_first_order_id: int


async def next_sandbox_order_id(session: AsyncSession, provider_id: int) -> int:
    """One past the highest numeric upstream order id the sandbox gave this panel."""
    highest = await session.scalar(
        select(func.max(cast(Order.provider_order_id, BigInteger))).where(
            Order.provider_id == provider_id,
            Order.provider_order_id.regexp_match("^[0-9]{1,18}$"),
        )
    )
    return int(highest or 0) + 1


async def prepare(settings: Settings) -> Prepared:
    """Seed the sandbox provider, the demo catalog and the demo user."""
    db = Database(settings.database_url or "", pool_size=2, max_overflow=0)
    try:
        async with db.transaction() as session:
            sandbox_url = f"http://127.0.0.1:{settings.sandbox_port}/api/v2"
            provider = await session.scalar(select(Provider).where(Provider.name == "Sandbox"))
            if provider is None:
                provider = await create_provider(
                    session,
                    secret=settings.secret_key,
                    name="Sandbox",
                    url=sandbox_url,
                    api_key=SANDBOX_KEY,
                )
            provider.url = sandbox_url
            await demo.seed_catalog(session, provider.id)
            user_id, key = await demo.ensure_demo_user(session, settings.demo_balance)
            return Prepared(user_id, key, await next_sandbox_order_id(session, provider.id))
    finally:
        await db.dispose()


def _stop(signum: int, frame: object) -> None:
    raise SystemExit(0)


async def run_all(settings: Settings, *, host: str | None = None, port: int | None = None) -> None:
    # SIGTERM (a service manager, `docker stop`) ends the run as Ctrl-C does: through every
    # `finally` below, so the worker closes and the embedded servers stop with us. (Left to
    # its default, it killed the process the moment the API server had shut down.)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _stop)
    embedded = start_embedded(
        settings.data_dir,
        need_db=not settings.database_url,
        need_redis=not settings.redis_url,
    )
    if embedded.recovered:
        log.warning(embedded.recovered)
    try:
        await _run(settings, embedded, host, port)
    finally:
        embedded.stop()


async def _run(
    settings: Settings, embedded: EmbeddedServices, host: str | None, port: int | None
) -> None:
    updates: dict[str, object] = {}
    if embedded.database_url:
        updates["database_url"] = embedded.database_url
    if embedded.redis_url:
        updates["redis_url"] = embedded.redis_url
    settings = settings.model_copy(update=updates)
    await reach_database(check_database_url(settings.database_url or ""))
    await reach_redis(check_redis_url(settings.redis_url or ""))
    # Generated once and kept under DATA_DIR: provider keys stay readable and the token
    # stable across restarts.
    if not settings.current_secret_key:
        updates["secret_key"] = ",".join(
            [kept_secret(settings.data_dir, "secret_key"), *settings.secret_key.split(",")[1:]]
        ).rstrip(",")
    if not settings.admin_token:
        updates["admin_token"] = kept_secret(settings.data_dir, "admin_token")
    # The demo's provider is the sandbox on 127.0.0.1, unless PROVIDER_ALLOW_PRIVATE says no.
    if "provider_allow_private" not in settings.model_fields_set:
        updates["provider_allow_private"] = True
    derived = settings.public_url == listening_url(settings.host, settings.port)
    if (host or port) and derived:  # an unset PUBLIC_URL follows --host/--port too
        updates["public_url"] = listening_url(host or settings.host, port or settings.port)
    settings = settings.model_copy(update=updates)
    await asyncio.to_thread(migrate.upgrade, settings.database_url or "")
    await gateways_can_price(settings)
    prepared = await prepare(settings)
    await _serve_everything(settings, host or settings.host, port or settings.port, prepared)


async def _serve_everything(settings: Settings, host: str, port: int, prepared: Prepared) -> None:
    from app.main import create_app
    from workers.main import build_worker

    api = uvicorn.Server(
        uvicorn.Config(
            create_app(settings),
            host=host,
            port=port,
            access_log=False,
            log_level=settings.log_level.lower(),
            log_config=None,
            proxy_headers=False,
        )
    )
    worker = build_worker(settings, handle_signals=False)
    config = default_sandbox_config()
    config.first_order_id = prepared.sandbox_first_order_id
    sandbox = asyncio.create_task(serve_sandbox("127.0.0.1", settings.sandbox_port, config))
    key = prepared.key
    worker_task = asyncio.create_task(worker.async_run())
    url = f"http://{host}:{port}"
    banner = (
        f"\nsmm-panel is up\n"
        f"  storefront:   {url}/web/  (sign up there; with MAIL_URL=console the\n"
        f"                confirmation link is printed in this log)\n"
        f"  API v2:       {url}/api/v2\n"
        f"  docs:         {url}/docs\n"
        f"  demo API key: {key}\n"
        f"  admin token:  {settings.admin_token}\n"
        f"  try:          curl -d key={key} -d action=balance {url}/api/v2\n"
    )
    print(banner, flush=True)
    try:
        await api.serve()
    finally:
        worker.handle_sig(signal.SIGINT)
        for task in (worker_task, sandbox):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        with contextlib.suppress(Exception):
            await worker.close()
