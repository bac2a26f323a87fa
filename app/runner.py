"""`smm-panel run`: the whole panel in one process for a zero-configuration start.

Embedded Postgres and Redis (unless DATABASE_URL / REDIS_URL are set), migrations, the
sandbox provider, the demo catalog wired to it, a demo user, the API and the worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading

import uvicorn
from sqlalchemy import select

from app import demo, migrate
from app.db import Database
from app.embedded import kept_secret, start_embedded
from app.providers.models import Provider
from app.providers.service import create_provider
from app.sandbox import default_sandbox_config, serve_sandbox
from app.settings import Settings

log = logging.getLogger(__name__)

SANDBOX_KEY = "sandbox-key"


async def prepare(settings: Settings) -> tuple[int, str]:
    """Seed the sandbox provider, the demo catalog and the demo user; returns (user, key)."""
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
            return await demo.ensure_demo_user(session, settings.demo_balance)
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
    updates: dict[str, object] = {}
    if embedded.database_url:
        updates["database_url"] = embedded.database_url
    if embedded.redis_url:
        updates["redis_url"] = embedded.redis_url
    # Generated once and kept under DATA_DIR: provider keys stay readable and the token
    # stable across restarts.
    if not settings.current_secret_key:
        updates["secret_key"] = ",".join(
            [kept_secret(settings.data_dir, "secret_key"), *settings.secret_key.split(",")[1:]]
        ).rstrip(",")
    if not settings.admin_token:
        updates["admin_token"] = kept_secret(settings.data_dir, "admin_token")
    settings = settings.model_copy(update=updates)
    try:
        await asyncio.to_thread(migrate.upgrade, settings.database_url or "")
        _, key = await prepare(settings)
        await _serve_everything(settings, host or settings.host, port or settings.port, key)
    finally:
        embedded.stop()


async def _serve_everything(settings: Settings, host: str, port: int, key: str) -> None:
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
    sandbox = asyncio.create_task(
        serve_sandbox("127.0.0.1", settings.sandbox_port, default_sandbox_config())
    )
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
