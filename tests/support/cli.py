"""Running the `smm-panel` command as an operator does: a real process, its exit and output."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from app.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
# What a process of the command may inherit from the test run: nothing that configures it.
_INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "VIRTUAL_ENV", "PYTHONPATH")


def command_env(**settings: str) -> dict[str, str]:
    env = {name: os.environ[name] for name in _INHERITED if name in os.environ}
    env.update(settings)
    return env


def smm_panel(
    *args: str, env: dict[str, str], timeout: float = 60, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


async def smm_panel_async(
    *args: str, env: dict[str, str], stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(smm_panel, *args, env=env, stdin=stdin)


async def run_tool(*argv: str) -> None:
    """A PostgreSQL client tool (pg_dump, pg_restore); fails the test on a non-zero exit."""
    await asyncio.to_thread(subprocess.run, list(argv), check=True)


def plain_url(url: str) -> str:
    """A libpq URL (pg_dump, psql) from the app's database URL."""
    return url.replace("postgresql+asyncpg://", "postgresql://")


def panel_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment of a panel process on the test's own database, Redis and queue."""
    return {
        **os.environ,
        "DATABASE_URL": settings.database_url or "",
        "REDIS_URL": settings.redis_url or "",
        "QUEUE_NAME": settings.queue_name,
        "SECRET_KEY": settings.secret_key,
        "LOG_JSON": "false",
        # The test's sandbox providers listen on 127.0.0.1, as the test's settings allow.
        "PROVIDER_ALLOW_PRIVATE": str(settings.provider_allow_private).lower(),
        **extra,
    }


async def panel_process(*args: str, env: dict[str, str]) -> asyncio.subprocess.Process:
    """`smm-panel <args>` as its own process, output discarded."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app.cli",
        *args,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )


@asynccontextmanager
async def worker_killed_on_exit(settings: Settings) -> AsyncIterator[asyncio.subprocess.Process]:
    """`smm-panel worker` with a long provider timeout, killed (SIGKILL: a crash) on leaving."""
    worker = await panel_process("worker", env=panel_env(settings, PROVIDER_READ_TIMEOUT="60"))
    try:
        yield worker
    finally:
        worker.send_signal(signal.SIGKILL)
        await asyncio.wait_for(worker.wait(), timeout=10)
