"""Running the `smm-panel` command as an operator does: a real process, its exit and output."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# What a process of the command may inherit from the test run: nothing that configures it.
_INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "VIRTUAL_ENV", "PYTHONPATH")


def command_env(**settings: str) -> dict[str, str]:
    env = {name: os.environ[name] for name in _INHERITED if name in os.environ}
    env.update(settings)
    return env


def smm_panel(
    *args: str, env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


async def smm_panel_async(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(smm_panel, *args, env=env)


async def run_tool(*argv: str) -> None:
    """A PostgreSQL client tool (pg_dump, pg_restore); fails the test on a non-zero exit."""
    await asyncio.to_thread(subprocess.run, list(argv), check=True)


def plain_url(url: str) -> str:
    """A libpq URL (pg_dump, psql) from the app's database URL."""
    return url.replace("postgresql+asyncpg://", "postgresql://")
