"""The panel's API as a real server process (uvicorn in a subprocess) on the tests'
database and Redis, for hostile-input tests that must cross a real HTTP stack."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from app.embedded import free_port
from tests.support.env import ADMIN_TOKEN, SECRET_KEY, TEST_REDIS

ROOT = Path(__file__).resolve().parent.parent.parent


@contextmanager
def panel_server(database_url: str, **env: str) -> Iterator[str]:
    """Start `uvicorn app.main:create_app` with the given extra environment; yields its
    base URL and stops it (SIGTERM, then SIGKILL) afterwards."""
    port = free_port()
    environment = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": TEST_REDIS,
        "ADMIN_TOKEN": ADMIN_TOKEN,
        "SECRET_KEY": SECRET_KEY,
        "RATE_LIMIT_PER_IP": "0",
        "RATE_LIMIT_PER_KEY": "0",
        "LOG_LEVEL": "WARNING",
        # Small pools: the test run has its own connections to the same server.
        "DB_POOL_SIZE": "4",
        "DB_MAX_OVERFLOW": "4",
        "DB_DRIVER_POOL_SIZE": "2",
        # Where it listens, as `serve --port` tells it: links follow (PUBLIC_URL unset).
        "PORT": str(port),
        **env,
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "app.main:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=environment,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(400):
            if server.poll() is not None:
                raise RuntimeError(f"panel server exited with {server.returncode}")
            try:
                if httpx.get(f"{base}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)
