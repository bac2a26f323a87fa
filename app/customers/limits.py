"""Limits on guessing (sign-in, tokens, password reset) kept in Redis.

Failures are counted per scope (an account: the normalised email; an IP address) over a
window, under the panel's Redis prefix. From the threshold on, every further failure locks
the scope for twice as long as the one before (base, 2×base, 4×base…, capped): the answer
is then 429 with Retry-After, whatever the password. Unknown emails are counted exactly like
known ones, so the answers never tell them apart. Redis being down fails open (logged):
sign-in keeps working without the limit rather than locking everyone out.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

from redis.exceptions import RedisError

from app.customers.errors import TooManyAttempts
from app.jobs import JobQueue

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Scope:
    action: str  # login, verify, forgot, reset
    kind: str  # account or ip
    ident: str
    threshold: int

    @property
    def key(self) -> str:
        digest = hashlib.sha256(self.ident.encode()).hexdigest()[:32]
        return f"client:limit:{self.action}:{self.kind}:{digest}"


@dataclass(frozen=True)
class Policy:
    window_seconds: int
    lock_seconds: float
    lock_max_seconds: float


async def check(jobs: JobQueue, scopes: list[Scope]) -> None:
    """Raise TooManyAttempts while any of the scopes is locked."""
    redis = jobs.redis
    if redis is None:
        return
    try:
        for scope in scopes:
            left = await redis.pttl(jobs.key(scope.key + ":lock"))
            if left and left > 0:
                raise TooManyAttempts(-(-left // 1000))
    except RedisError:
        log.warning("attempt limits unavailable: Redis unreachable")


async def failed(jobs: JobQueue, scopes: list[Scope], policy: Policy) -> dict[str, int]:
    """Count a failure in every scope; lock those at or past their threshold. Answers the
    lock (seconds) set per scope kind where this failure made the first lock of the window."""
    first_locks: dict[str, int] = {}
    redis = jobs.redis
    if redis is None:
        return first_locks
    try:
        for scope in scopes:
            counter = jobs.key(scope.key)
            count = int(await redis.incr(counter))
            if count == 1:
                await redis.expire(counter, policy.window_seconds)
            if count < scope.threshold:
                continue
            seconds = min(
                policy.lock_max_seconds, policy.lock_seconds * 2 ** (count - scope.threshold)
            )
            await redis.set(counter + ":lock", "1", px=max(1, int(seconds * 1000)))
            # The counter outlives the lock, so the next failure locks longer.
            await redis.expire(counter, max(policy.window_seconds, int(seconds) * 2))
            if count == scope.threshold:
                first_locks[scope.kind] = int(seconds)
    except RedisError:
        log.warning("attempt limits unavailable: Redis unreachable")
    return first_locks


async def forget(jobs: JobQueue, scope: Scope) -> None:
    """A success clears the account's count (an IP's count stays: it may guess others)."""
    redis = jobs.redis
    if redis is None:
        return
    try:
        await redis.delete(jobs.key(scope.key), jobs.key(scope.key + ":lock"))
    except RedisError:
        log.warning("attempt limits unavailable: Redis unreachable")
