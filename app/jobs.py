"""Handing work to the background worker.

Redis only delivers: every job is derivable from database rows, so enqueueing happens
after commit, uses deterministic ids (duplicates collapse), and a failure to enqueue is
logged and left to the sweeper instead of failing the request.

Several panels may share one Redis: every key a panel writes starts with its prefix
(REDIS_PREFIX, `JobQueue.key`): the queue, job ids (so arq's own job, retry and in-progress
keys), cron ids (workers/main.py names its cron jobs under the prefix), rate limits and
sign-in locks. A panel never sees another's keys, so it never takes, swallows or skips
another's work.

Jobs travel as JSON, never pickle (arq's default): whoever can write to Redis could
otherwise run code in the worker. A payload that is not JSON is refused by the worker
and never executed; job arguments are plain ids.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from arq.connections import ArqRedis, RedisSettings, create_pool
from redis.asyncio import ConnectionPool

log = logging.getLogger(__name__)

# Kicks of the relay within one slot of time collapse into one job, which starts when the
# slot has ended (see JobQueue.relay_due).
RELAY_SLOT_SECONDS = 0.05


def redis_settings(url: str) -> RedisSettings:
    return RedisSettings.from_dsn(url)


def _json_default(value: object) -> str:
    # Only results may carry something else than JSON: a failed job's exception, a
    # Decimal. They are kept as text; a job's own arguments are ids and names.
    if isinstance(value, BaseException):
        return repr(value)
    if isinstance(value, Decimal):
        return format(value, "f")  # plain decimal, never exponent notation
    raise TypeError(f"{type(value).__name__} cannot travel in a job")


def serialize_job(data: dict[str, Any]) -> bytes:
    """arq's job and result envelopes as JSON."""
    return json.dumps(data, default=_json_default, separators=(",", ":")).encode()


def deserialize_job(payload: bytes) -> dict[str, Any]:
    """JSON only: anything else (a pickle, garbage) raises, and arq fails the job unrun."""
    data = json.loads(payload)
    if not isinstance(data, dict):
        raise ValueError("a job payload is a JSON object")
    return data


SERIALIZERS: dict[str, Any] = {
    "job_serializer": serialize_job,
    "job_deserializer": deserialize_job,
}


class JobQueue:
    """The panel's Redis: its job queue and the keys under its prefix."""

    def __init__(self, redis: ArqRedis | None, queue_name: str, prefix: str | None = None) -> None:
        self.redis = redis
        self.queue_name = queue_name
        self.prefix = prefix or queue_name

    def key(self, name: str) -> str:
        """`name` as this panel's key."""
        return f"{self.prefix}:{name}"

    @classmethod
    async def connect(cls, url: str, queue_name: str, prefix: str | None = None) -> JobQueue:
        try:
            redis = await create_pool(
                redis_settings(url), default_queue_name=queue_name, **SERIALIZERS
            )
        except Exception:
            # Redis down at start: serve anyway with a client that connects on first use;
            # until then enqueues fail softly and the sweeper catches up.
            log.warning("redis unavailable at start; background jobs wait for the sweeper")
            redis = ArqRedis(
                ConnectionPool.from_url(url), default_queue_name=queue_name, **SERIALIZERS
            )
        return cls(redis, queue_name, prefix)

    async def enqueue(
        self,
        function: str,
        *args: Any,
        job_id: str,
        defer_until: datetime | None = None,
        about: dict[str, Any] | None = None,
    ) -> bool:
        if self.redis is None:
            return False
        try:
            job = await self.redis.enqueue_job(
                function,
                *args,
                # Job ids are global in Redis: scope them to the panel, so two panels
                # sharing a Redis never swallow each other's jobs.
                _job_id=self.key(job_id),
                _queue_name=self.queue_name,
                _defer_until=defer_until,
            )
        except Exception:
            log.warning("enqueue failed", extra={"job_id": job_id, **(about or {})})
            return False
        return job is not None

    async def relay_order(self, order_id: int) -> bool:
        """Order `order_id` is committed and due: kick the batch relay that claims it.
        Orders are relayed in batches by `relay_due_orders` jobs, which claim every due
        order from the database, so the kick itself carries no order; a kick that cannot
        be made is logged with the order's id (the sweeper relays the order anyway)."""
        return await self.relay_due(about={"order_id": order_id})

    async def relay_due(self, about: dict[str, Any] | None = None) -> bool:
        """Kick a run of `relay_due_orders`. One job per slot of RELAY_SLOT_SECONDS, set to
        start when its slot has ended: a burst of orders collapses into one job, and every
        kick that collapses into it was made (after its order's commit) before the job
        started, so the job's first claim sees that order. A kick never collapses into a
        job that is already past its claims."""
        slot = int(time.time() / RELAY_SLOT_SECONDS)
        return await self.enqueue(
            "relay_due_orders",
            job_id=f"relay:due:{slot}",
            defer_until=datetime.fromtimestamp((slot + 1) * RELAY_SLOT_SECONDS, UTC),
            about=about,
        )

    async def sync_provider(self, provider_id: int) -> bool:
        """A status sync of one provider (`sync_provider_statuses`). Its job id is the
        provider's: while one is queued or running, another is not enqueued, so one
        provider's runs never overlap and a slow one delays only its own orders."""
        return await self.enqueue(
            "sync_provider_statuses", provider_id, job_id=f"sync:provider:{provider_id}"
        )

    async def relay_cancel(self, order_id: int) -> bool:
        return await self.enqueue("relay_cancel", order_id, job_id=f"cancel:order:{order_id}")

    async def relay_refill(self, refill_id: int) -> bool:
        return await self.enqueue("relay_refill", refill_id, job_id=f"relay:refill:{refill_id}")

    async def close(self) -> None:
        if self.redis is not None:
            await self.redis.aclose()
