"""Limits on guessing (sign-in, tokens, password reset, the operator's page), kept in Redis.

Failures are counted per scope (an account: the normalised email; an IP address) over a
window, under the panel's Redis prefix. From the threshold on, every further failure locks
the scope for twice as long as the one before (base, 2×base, 4×base…, capped): the answer
is then 429 with Retry-After, whatever the password. Unknown emails are counted exactly
like known ones, so the answers never tell them apart.

The limits fail closed. While Redis cannot be reached (or is not configured) the same
counting runs in this process's memory (`LOCAL`, logged), with the same thresholds and
locks: sign-in keeps working for the right password and a guesser is locked out as
before (per process: N API processes allow at most N times the guesses). That memory
holds at most MAX_LOCAL_SCOPES scopes; when it is full of live ones, a scope it cannot
count is answered as locked. No path lets a failure go uncounted.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, field
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.customers.errors import TooManyAttempts
from app.jobs import JobQueue

log = logging.getLogger(__name__)

MAX_LOCAL_SCOPES = 50_000
FULL_RETRY_SECONDS = 60  # Retry-After of a scope the full in-process counters cannot take


@dataclass(frozen=True)
class Scope:
    action: str  # login, verify, forgot, reset, operator
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


class Counters(Protocol):
    """Where failures are counted: Redis, or this process's memory."""

    async def lock_left_ms(self, key: str) -> int: ...

    async def count(self, key: str, window_seconds: int) -> int: ...

    async def lock(self, key: str, lock_ms: int, keep_seconds: int) -> None: ...

    async def forget(self, key: str) -> None: ...


@dataclass(frozen=True)
class RedisCounters:
    """Counters in Redis, each key under the panel's prefix."""

    redis: Redis
    jobs: JobQueue

    async def lock_left_ms(self, key: str) -> int:
        left = await self.redis.pttl(self.jobs.key(key + ":lock"))
        return int(left) if left and left > 0 else 0

    async def count(self, key: str, window_seconds: int) -> int:
        counter = self.jobs.key(key)
        count = int(await self.redis.incr(counter))
        if count == 1:
            await self.redis.expire(counter, window_seconds)
        return count

    async def lock(self, key: str, lock_ms: int, keep_seconds: int) -> None:
        await self.redis.set(self.jobs.key(key + ":lock"), "1", px=lock_ms)
        # The counter outlives the lock, so the next failure locks longer.
        await self.redis.expire(self.jobs.key(key), keep_seconds)

    async def forget(self, key: str) -> None:
        await self.redis.delete(self.jobs.key(key), self.jobs.key(key + ":lock"))


@dataclass
class _Entry:
    count: int = 0
    expires: float = 0.0  # monotonic seconds
    locked_until: float = 0.0


class LocalFull(Exception):
    """The in-process counters hold MAX_LOCAL_SCOPES live scopes already."""


@dataclass
class LocalCounters:
    """The same counting as in Redis, in this process's memory (monotonic clock)."""

    max_scopes: int = MAX_LOCAL_SCOPES
    _entries: dict[str, _Entry] = field(default_factory=dict)

    def clear(self) -> None:
        self._entries.clear()

    def _live(self, key: str, now: float) -> _Entry | None:
        entry = self._entries.get(key)
        if entry is not None and entry.expires <= now:
            del self._entries[key]
            return None
        return entry

    def _room(self, now: float) -> None:
        if len(self._entries) < self.max_scopes:
            return
        for key in [k for k, e in self._entries.items() if e.expires <= now]:
            del self._entries[key]
        if len(self._entries) >= self.max_scopes:
            raise LocalFull()

    def cannot_count(self, key: str) -> bool:
        """True when a failure of this scope would find no room."""
        now = time.monotonic()
        if self._live(key, now) is not None:
            return False
        try:
            self._room(now)
        except LocalFull:
            return True
        return False

    async def lock_left_ms(self, key: str) -> int:
        now = time.monotonic()
        entry = self._live(key, now)
        return 0 if entry is None else max(0, int((entry.locked_until - now) * 1000))

    async def count(self, key: str, window_seconds: int) -> int:
        now = time.monotonic()
        entry = self._live(key, now)
        if entry is None:
            self._room(now)
            entry = self._entries[key] = _Entry(expires=now + window_seconds)
        entry.count += 1
        return entry.count

    async def lock(self, key: str, lock_ms: int, keep_seconds: int) -> None:
        now = time.monotonic()
        entry = self._entries.setdefault(key, _Entry(count=1))
        entry.locked_until = now + lock_ms / 1000
        entry.expires = now + keep_seconds

    async def forget(self, key: str) -> None:
        self._entries.pop(key, None)


LOCAL = LocalCounters()


def _unavailable() -> None:
    log.warning("attempt limits: Redis unreachable, counting in this process")


async def check(jobs: JobQueue, scopes: list[Scope]) -> None:
    """Raise TooManyAttempts while any of the scopes is locked (in Redis, or in this
    process: a lock set while Redis was down outlasts its return)."""
    redis = jobs.redis
    if redis is not None:
        try:
            await _check(RedisCounters(redis, jobs), scopes)
            await _check(LOCAL, scopes)
            return
        except RedisError:
            _unavailable()
    if any(LOCAL.cannot_count(scope.key) for scope in scopes):
        raise TooManyAttempts(FULL_RETRY_SECONDS)
    await _check(LOCAL, scopes)


async def _check(counters: Counters, scopes: list[Scope]) -> None:
    for scope in scopes:
        left = await counters.lock_left_ms(scope.key)
        if left > 0:
            raise TooManyAttempts(-(-left // 1000))


async def failed(jobs: JobQueue, scopes: list[Scope], policy: Policy) -> dict[str, int]:
    """Count a failure in every scope; lock those at or past their threshold. Answers the
    lock (seconds) set per scope kind where this failure made the first lock of the window."""
    redis = jobs.redis
    if redis is not None:
        try:
            return await _failed(RedisCounters(redis, jobs), scopes, policy)
        except RedisError:
            _unavailable()
    try:
        return await _failed(LOCAL, scopes, policy)
    except LocalFull:
        return {}  # not counted here, but `check` answers such a scope as locked


async def _failed(counters: Counters, scopes: list[Scope], policy: Policy) -> dict[str, int]:
    first_locks: dict[str, int] = {}
    for scope in scopes:
        count = await counters.count(scope.key, policy.window_seconds)
        if count < scope.threshold:
            continue
        seconds = min(policy.lock_max_seconds, policy.lock_seconds * 2 ** (count - scope.threshold))
        keep = max(policy.window_seconds, int(seconds) * 2)
        await counters.lock(scope.key, max(1, int(seconds * 1000)), keep)
        if count == scope.threshold:
            first_locks[scope.kind] = int(seconds)
    return first_locks


async def forget(jobs: JobQueue, scope: Scope) -> None:
    """A success clears the account's count (an IP's count stays: it may guess others)."""
    await LOCAL.forget(scope.key)
    redis = jobs.redis
    if redis is None:
        return
    try:
        await RedisCounters(redis, jobs).forget(scope.key)
    except RedisError:
        _unavailable()
