"""What `serve`, `worker`, `migrate` and `run` check before they start, so that every
configuration mistake ends in one line naming the setting and its fix, never a traceback
or a process that runs without being able to work.

The checks, in order: the shape of DATABASE_URL, REDIS_URL and MAIL_URL (a PostgreSQL URL,
a Redis URL, `console` or SMTP), then that each server answers (within CONNECT_TIMEOUT),
then that every configured payment gateway can price an invoice (a conversion rate for its
currency). Once started, a process rides out outages of either server as before; only the
start is strict.
"""

from __future__ import annotations

import asyncio
from urllib.parse import SplitResult, parse_qs, urlsplit

import asyncpg
from redis import asyncio as aioredis
from redis.exceptions import RedisError
from sqlalchemy.exc import ProgrammingError

from app.db import Database, driver_url
from app.payments.service import unpriced_gateways
from app.settings import Settings

CONNECT_TIMEOUT = 10.0
POSTGRES_SCHEMES = ("postgresql+asyncpg", "postgresql", "postgres")
REDIS_SCHEMES = ("redis", "rediss", "unix")
POSTGRES_EXAMPLE = "postgresql+asyncpg://user:password@host:5432/database"
REDIS_EXAMPLE = "redis://host:6379/0"


class ConfigurationError(Exception):
    """A setting that cannot work, with what to do about it: printed as one line."""


def _split(name: str, url: str, example: str) -> SplitResult:
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 (reading it validates it)
    except ValueError as exc:
        raise ConfigurationError(f"{name} is not a valid URL ({exc}): expected {example}") from None
    if not parts.scheme or "://" not in url:
        raise ConfigurationError(f"{name} is not a URL: expected {example}")
    return parts


def _where(parts: SplitResult) -> str:
    """Host, port and path of a URL without its credentials, for messages."""
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def check_database_url(url: str) -> str:
    """DATABASE_URL as a PostgreSQL URL, or ConfigurationError saying what is wrong."""
    parts = _split("DATABASE_URL", url, POSTGRES_EXAMPLE)
    if parts.scheme.lower() not in POSTGRES_SCHEMES:
        raise ConfigurationError(
            f"DATABASE_URL must be a PostgreSQL URL, not {parts.scheme}://…: "
            f"expected {POSTGRES_EXAMPLE}"
        )
    if not parts.hostname and not parse_qs(parts.query).get("host"):
        raise ConfigurationError(f"DATABASE_URL names no host: expected {POSTGRES_EXAMPLE}")
    return url.strip()


def check_redis_url(url: str) -> str:
    """REDIS_URL as a Redis URL, or ConfigurationError saying what is wrong."""
    parts = _split("REDIS_URL", url, REDIS_EXAMPLE)
    scheme = parts.scheme.lower()
    if scheme not in REDIS_SCHEMES:
        raise ConfigurationError(
            f"REDIS_URL must be a Redis URL (redis://, rediss:// or unix://), not "
            f"{parts.scheme}://…: expected {REDIS_EXAMPLE}"
        )
    if scheme != "unix" and not parts.hostname:
        raise ConfigurationError(f"REDIS_URL names no host: expected {REDIS_EXAMPLE}")
    database = parts.path.strip("/")
    if scheme != "unix" and database and not database.isdigit():
        raise ConfigurationError(
            f"REDIS_URL names database {database!r}: a Redis database is a number, "
            f"expected {REDIS_EXAMPLE}"
        )
    return url.strip()


def check_mail_url(url: str) -> str:
    """MAIL_URL as `console` or an SMTP URL, or ConfigurationError saying what is wrong
    (app/mail/service.py sends through it)."""
    if url.strip() in ("", "console"):
        return url.strip()
    expected = "console or smtp://user:pass@host:port (smtps:// for TLS)"
    parts = _split("MAIL_URL", url, expected)
    if parts.scheme.lower() not in ("smtp", "smtps"):
        raise ConfigurationError(f"MAIL_URL must be {expected}, not {parts.scheme}://…")
    if not parts.hostname:
        raise ConfigurationError(f"MAIL_URL names no host: expected {expected}")
    return url.strip()


def _reason(exc: BaseException) -> str:
    text = str(exc).splitlines()[0].strip() if str(exc) else ""
    return text or type(exc).__name__


async def reach_database(url: str) -> None:
    """One connection to PostgreSQL, or ConfigurationError (database unavailable)."""
    try:
        conn = await asyncpg.connect(driver_url(url), timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        where = _where(urlsplit(url))
        raise ConfigurationError(
            f"database unavailable: {_reason(exc)} (DATABASE_URL {where})"
        ) from None
    await conn.close()


async def reach_redis(url: str) -> None:
    """One PING to Redis, or ConfigurationError (Redis unavailable)."""
    client = aioredis.Redis.from_url(
        url, socket_connect_timeout=CONNECT_TIMEOUT, socket_timeout=CONNECT_TIMEOUT
    )
    try:
        await asyncio.wait_for(client.ping(), CONNECT_TIMEOUT * 2)
    except (RedisError, OSError, TimeoutError) as exc:
        where = _where(urlsplit(url))
        raise ConfigurationError(f"Redis unavailable: {_reason(exc)} (REDIS_URL {where})") from None
    finally:
        await client.aclose()


async def gateways_can_price(settings: Settings) -> None:
    """Every configured payment gateway has a conversion rate for its currency."""
    db = Database(settings.database_url or "", pool_size=1, max_overflow=0)
    try:
        async with db.session() as session:
            problems = await unpriced_gateways(session, settings)
    except ProgrammingError:
        # Not migrated yet (no rates table): the API is not ready until `migrate` anyway,
        # and the check runs again at the next start.
        problems = []
    finally:
        await db.dispose()
    if problems:
        raise ConfigurationError("; ".join(problems))


async def check_servers(settings: Settings, *, redis: bool, gateways: bool) -> None:
    """The start-up checks of a command that uses the database (and Redis, gateways)."""
    if redis:  # the processes that send mail: the API and the worker
        check_mail_url(settings.mail_url)
    await reach_database(check_database_url(settings.database_url or ""))
    if redis:
        await reach_redis(check_redis_url(settings.redis_url or ""))
    if gateways:
        await gateways_can_price(settings)
