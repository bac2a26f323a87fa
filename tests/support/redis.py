"""A Redis the panel cannot reach: a client pointed at a port where nothing listens on
127.0.0.1, so every command fails with a connection error, as when Redis is down."""

from __future__ import annotations

from arq.connections import ArqRedis
from redis.asyncio import ConnectionPool

from app.embedded import free_port


def unreachable_redis() -> ArqRedis:
    port = free_port()  # bound and released at once: nothing listens there
    return ArqRedis(ConnectionPool.from_url(f"redis://127.0.0.1:{port}/0"))
