"""`make soak`: the liveness soak. The work never stops under the load the panel exists
for: a few big resellers whose orders end Partial or Canceled upstream, next to a
provider that dribbles its answers and one that answers garbage.

One process: a fresh database, the sandbox provider (real HTTP on 127.0.0.1, its services
ending Partial, Canceled or Completed), the two faulty providers of app/sandbox/faulty.py,
and the real worker (arq, with its cron schedule) with the default settings. Orders are
placed round robin over the users, the relay kicked as the API kicks it; the soak
watches until every order is settled, then stops the worker and checks:

- 0 deadlocks (`pg_stat_database.deadlocks` of the soak's database, before and after, and
  no `deadlock detected` in any log line);
- every order on a healthy provider final, and every order on a faulty one settled (in
  review or held, never queued or sending), within SOAK_BOUND_SECONDS;
- the relay never idle while orders of a healthy provider are due (the longest stretch in
  which some were due for over a second and none was claimed);
- refunds exact (Partial: the remains' share, Canceled: all, Completed: none; one refund
  entry per order at most), and the ledger invariant check.

It prints the figures and exits non-zero if a check fails. tests/test_soak.py runs a
shorter one (a few hundred orders, a short total deadline).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import sys
import time
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import asyncpg
from redis.asyncio import Redis
from sqlalchemy import text

from app import migrate
from app.accounts import service as accounts
from app.catalog.models import Category, Service
from app.db import Database
from app.jobs import JobQueue
from app.ledger import service as ledger
from app.money import proportional_refund
from app.orders import service as orders
from app.providers.service import create_provider
from app.sandbox import SandboxConfig, create_sandbox_app
from app.sandbox.config import SandboxService
from app.sandbox.faulty import Dribbling, Garbage
from app.sandbox.server import served
from app.settings import Settings
from workers.main import build_worker

BASE = os.environ.get("SOAK_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
# Strong, as Settings demands; they protect nothing outside the throwaway database.
SECRET_KEY = "soak-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"  # noqa: S105
ADMIN_TOKEN = "soak-admin-token-0123456789-abcdefghijklmnop"  # noqa: S105
SANDBOX_KEY = "sandbox-key"
FINAL = ("Completed", "Partial", "Canceled")
SETTLED_FAULTY = ("review", "sent", "rejected", "withdrawn")  # never queued or sending
QUANTITY = 1000


@dataclass
class SoakConfig:
    database: str = "smm_soak"
    redis_url: str = "redis://127.0.0.1:6379/15"
    users: int = 3
    orders: int = 3000  # on the sandbox: 40 % end Partial, 30 % Canceled, 30 % Completed
    slow_orders: int = 40  # on the provider that dribbles (more than its room of 32)
    slow_sent: int = 5  # sent to it already: its status sync dribbles too
    garbage_orders: int = 30
    bound_seconds: float = 300.0
    dribble_interval: float = 2.0
    drop_after: bool = False  # the database is kept to look at, unless asked
    # Settings other than the defaults (the soak itself runs with none).
    overrides: dict[str, Any] = field(default_factory=dict)


@dataclass
class SoakReport:
    orders: int = 0
    users: int = 0
    seconds_to_settle: float = 0.0
    settled: bool = False
    relay_orders_per_s: float = 0.0
    longest_relay_idle_s: float = 0.0
    deadlocks: int = 0
    deadlock_log_lines: int = 0
    refunds_checked: int = 0
    refund_mismatches: list[str] = field(default_factory=list)
    ledger_ok: bool = False
    by_status: dict[str, int] = field(default_factory=dict)
    faulty_states: dict[str, int] = field(default_factory=dict)
    slow_calls: dict[str, int] = field(default_factory=dict)
    garbage_calls: dict[str, int] = field(default_factory=dict)
    anomalies: int = 0

    def failures(self, bound: float, idle_bound: float) -> list[str]:
        found = []
        if self.deadlocks or self.deadlock_log_lines:
            found.append(f"deadlocks: {self.deadlocks} (log lines {self.deadlock_log_lines})")
        if not self.settled:
            found.append(f"orders not settled within {bound:g} s")
        if self.longest_relay_idle_s > idle_bound:
            found.append(f"relay idle {self.longest_relay_idle_s:.1f} s while orders were due")
        if self.refund_mismatches:
            found.append(f"refunds inexact: {self.refund_mismatches[:5]}")
        if not self.ledger_ok:
            found.append("ledger check failed")
        return found


class DeadlockLines(logging.Handler):
    """Counts log lines that speak of a deadlock, from any logger."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "deadlock" in record.getMessage().lower():
            self.count += 1


def sandbox_config() -> SandboxConfig:
    common: dict[str, Any] = {"rate": Decimal("0.40"), "min": 10, "max": 100_000}
    return SandboxConfig(
        keys={SANDBOX_KEY: Decimal(10**9)},
        services=[
            SandboxService(1, "Partial", behaviour="partial", partial_percent=40, **common),
            SandboxService(2, "Canceled", behaviour="cancel", **common),
            SandboxService(3, "Completed", behaviour="complete", **common),
        ],
        seconds_to_start=1,
        seconds_to_complete=3,
    )


async def fresh_database(name: str) -> str:
    admin = await asyncpg.connect(BASE)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    dsn = BASE.rsplit("/", 1)[0] + "/" + name
    await asyncio.to_thread(migrate.upgrade, dsn)
    return dsn


async def deadlocks(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        found = await conn.fetchval(
            "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"
        )
    finally:
        await conn.close()
    return int(found or 0)


@dataclass
class Seeded:
    users: list[int]
    healthy: list[int]  # service ids on the sandbox
    slow: int
    garbage: int
    slow_provider: int


async def seed(db: Database, settings: Settings, urls: dict[str, str], users: int) -> Seeded:
    async with db.transaction() as session:
        providers = {
            name: (
                await create_provider(
                    session, secret=settings.secret_key, name=name, url=url, api_key=SANDBOX_KEY
                )
            ).id
            for name, url in urls.items()
        }
        category = Category(name="Soak")
        session.add(category)
        await session.flush()

        def service(name: str, provider: str, upstream: str) -> Service:
            return Service(
                category_id=category.id,
                name=name,
                type="Default",
                rate=Decimal("0.90"),
                min_quantity=10,
                max_quantity=100_000,
                cancel=True,
                provider_id=providers[provider],
                provider_service_id=upstream,
            )

        services = [
            service("Partial", "sandbox", "1"),
            service("Canceled", "sandbox", "2"),
            service("Completed", "sandbox", "3"),
            service("Slow", "dribbling", "1"),
            service("Garbage", "garbage", "1"),
        ]
        session.add_all(services)
        await session.flush()
        user_ids = []
        for n in range(users):
            user = await accounts.create_user(session, email=f"reseller{n}@soak.example")
            await ledger.credit(
                session, user_id=user.id, amount=Decimal(10**7), kind="deposit", reason="soak"
            )
            user_ids.append(user.id)
    return Seeded(
        user_ids,
        [s.id for s in services[:3]],
        services[3].id,
        services[4].id,
        providers["dribbling"],
    )


async def place_all(
    db: Database, jobs: JobQueue, seeded: Seeded, config: SoakConfig
) -> dict[str, list[int]]:
    """Round robin over the users (so that each page of a provider meets all of them),
    50 orders a transaction, the relay kicked after each commit."""
    plan: list[tuple[str, int]] = []
    # 40 % Partial, 30 % Canceled, 30 % Completed, interleaved.
    cycle = itertools.cycle([0, 1, 0, 2, 1, 0, 2, 0, 1, 2])
    plan += [("healthy", seeded.healthy[next(cycle)]) for _ in range(config.orders)]
    plan += [("slow", seeded.slow)] * config.slow_orders
    plan += [("garbage", seeded.garbage)] * config.garbage_orders
    placed: dict[str, list[int]] = {"healthy": [], "slow": [], "garbage": []}
    links = itertools.count()
    owners = itertools.cycle(seeded.users)
    for start in range(0, len(plan), 50):
        async with db.transaction() as session:
            for kind, service_id in plan[start : start + 50]:
                fields = {
                    "service": str(service_id),
                    "link": f"https://soak.example/{next(links)}",
                    "quantity": str(QUANTITY),
                }
                order = await orders.place_order(session, next(owners), fields)
                placed[kind].append(order.order_id)
        await jobs.relay_due()
    return placed


async def slow_sent(db: Database, seeded: Seeded, count: int) -> None:
    """Orders the dribbling provider took earlier: its status sync dribbles each cycle."""
    async with db.transaction() as session:
        ids = [
            (
                await orders.place_order(
                    session,
                    seeded.users[n % len(seeded.users)],
                    {
                        "service": str(seeded.slow),
                        "link": f"https://soak.example/sent/{n}",
                        "quantity": str(QUANTITY),
                    },
                )
            ).order_id
            for n in range(count)
        ]
        await session.execute(
            text(
                "UPDATE orders SET upstream_state = 'sent', status = 'In progress',"
                " provider_order_id = 'd' || id, next_attempt_at = NULL"
                " WHERE id = ANY(:ids) AND provider_id = :p"
            ),
            {"ids": ids, "p": seeded.slow_provider},
        )


@dataclass
class Watch:
    """What the soak sees every half second."""

    started: float = field(default_factory=time.monotonic)
    longest_idle: float = 0.0
    idle_since: float | None = None
    last_attempts: int = -1
    relayed_at: float | None = None


WATCH_SQL = """
SELECT
  count(*) FILTER (WHERE o.id = ANY(:healthy) AND o.upstream_state = 'queued'
                   AND o.next_attempt_at < now() - interval '1 second') AS due,
  coalesce(sum(o.attempts) FILTER (WHERE o.id = ANY(:healthy)), 0) AS attempts,
  count(*) FILTER (WHERE o.id = ANY(:healthy) AND o.status NOT IN ('Completed', 'Partial',
                   'Canceled')) AS healthy_open,
  count(*) FILTER (WHERE o.id = ANY(:healthy) AND o.upstream_state <> 'queued') AS relayed,
  count(*) FILTER (WHERE o.id = ANY(:faulty)
                   AND o.upstream_state IN ('queued', 'sending')) AS faulty_open
FROM orders o
"""


async def watch(
    db: Database, placed: dict[str, list[int]], bound: float, report: SoakReport, started: float
) -> None:
    """Until every order is settled (or `bound` seconds after `started`, when the first
    order was placed)."""
    seen = Watch(started=started)
    healthy = placed["healthy"]
    faulty = placed["garbage"] + placed["slow"]
    while time.monotonic() - seen.started < bound:
        async with db.session() as session:
            row = (
                await session.execute(text(WATCH_SQL), {"healthy": healthy, "faulty": faulty})
            ).one()
        now = time.monotonic()
        if row.relayed == len(healthy) and seen.relayed_at is None:
            seen.relayed_at = now
        if row.due > 0 and row.attempts == seen.last_attempts:
            seen.idle_since = seen.idle_since or now
            seen.longest_idle = max(seen.longest_idle, now - seen.idle_since)
        else:
            seen.idle_since = None
        seen.last_attempts = int(row.attempts)
        if row.healthy_open == 0 and row.faulty_open == 0:
            report.settled = True
            break
        await asyncio.sleep(0.5)
    report.seconds_to_settle = round(time.monotonic() - seen.started, 1)
    report.longest_relay_idle_s = round(seen.longest_idle, 1)
    relay_seconds = (seen.relayed_at or time.monotonic()) - seen.started
    report.relay_orders_per_s = round(len(healthy) / max(relay_seconds, 0.001), 1)


async def check(db: Database, placed: dict[str, list[int]], report: SoakReport) -> None:
    async with db.session() as session:
        rows = (
            await session.execute(
                text(
                    "SELECT o.id, o.status, o.quantity, o.remains, o.charge, o.refunded,"
                    " o.upstream_state, (SELECT count(*) FROM ledger_entries e"
                    "  WHERE e.order_id = o.id AND e.kind = 'refund') AS refunds"
                    " FROM orders o ORDER BY o.id"
                )
            )
        ).all()
        report.anomalies = int(
            await session.scalar(text("SELECT count(*) FROM orders WHERE anomaly IS NOT NULL")) or 0
        )
        invariants = await ledger.check_invariants(session)
    report.ledger_ok = invariants.ok
    healthy = set(placed["healthy"])
    for row in rows:
        if row.id in healthy:
            report.by_status[row.status] = report.by_status.get(row.status, 0) + 1
        else:
            report.faulty_states[row.upstream_state] = (
                report.faulty_states.get(row.upstream_state, 0) + 1
            )
        expected = Decimal(0)
        if row.status == "Canceled":
            expected = row.charge
        elif row.status == "Partial":
            expected = proportional_refund(row.charge, row.quantity, row.remains or 0)
        if row.status in FINAL and (row.refunded != expected or row.refunds > 1):
            report.refund_mismatches.append(
                f"order {row.id} {row.status}: refunded {row.refunded}, expected {expected}"
            )
        report.refunds_checked += 1 if row.status in FINAL else 0


async def soak(config: SoakConfig) -> SoakReport:
    report = SoakReport(orders=config.orders + config.slow_orders + config.garbage_orders)
    report.users = config.users
    dsn = await fresh_database(config.database)
    redis = Redis.from_url(config.redis_url)
    await redis.flushdb()
    await redis.aclose()
    lines = DeadlockLines()
    logging.getLogger().addHandler(lines)
    settings = Settings(
        database_url=dsn,
        redis_url=config.redis_url,
        queue_name=f"soak:{uuid.uuid4().hex[:8]}",
        secret_key=SECRET_KEY,
        admin_token=ADMIN_TOKEN,
        provider_allow_private=True,  # every provider of the soak listens on 127.0.0.1
        **config.overrides,
    )
    slow = await Dribbling(interval=config.dribble_interval).start()
    garbage = await Garbage().start()
    db = Database(dsn, pool_size=5, max_overflow=0)
    jobs = await JobQueue.connect(config.redis_url, settings.arq_queue, settings.redis_namespace)
    try:
        async with served(create_sandbox_app(sandbox_config())) as sandbox_url:
            urls = {
                "sandbox": f"{sandbox_url}/api/v2",
                "dribbling": slow.url,
                "garbage": garbage.url,
            }
            seeded = await seed(db, settings, urls, config.users)
            await slow_sent(db, seeded, config.slow_sent)
            before = await deadlocks(dsn)
            # The worker as `smm-panel worker` runs it: its own pools, its cron schedule.
            worker = build_worker(settings, handle_signals=False)
            running = asyncio.create_task(worker.async_run())
            try:
                placing = time.monotonic()
                placed = await place_all(db, jobs, seeded, config)
                await watch(db, placed, config.bound_seconds, report, placing)
            finally:
                running.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await running
                await worker.close()
        await check(db, placed, report)
        await db.dispose()
        await asyncio.sleep(1)  # each backend reports its counts as it ends
        report.deadlocks = await deadlocks(dsn) - before
        report.deadlock_log_lines = lines.count
        report.slow_calls = dict(slow.requests)
        report.garbage_calls = dict(garbage.requests)
        if config.drop_after:
            admin = await asyncpg.connect(BASE)
            try:
                await admin.execute(f'DROP DATABASE IF EXISTS "{config.database}" WITH (FORCE)')
            finally:
                await admin.close()
    finally:
        logging.getLogger().removeHandler(lines)
        await jobs.close()
        await slow.stop()
        await garbage.stop()
        await db.dispose()
    return report


IDLE_BOUND = 11.0  # the sweeper kicks the relay every 10 s whatever happened


async def main() -> int:
    config = SoakConfig(
        database=os.environ.get("SOAK_DB", "smm_soak"),
        redis_url=os.environ.get("SOAK_REDIS_URL", "redis://127.0.0.1:6379/15"),
        orders=int(os.environ.get("SOAK_ORDERS", "3000")),
        users=int(os.environ.get("SOAK_USERS", "3")),
        bound_seconds=float(os.environ.get("SOAK_BOUND_SECONDS", "300")),
    )
    logging.basicConfig(level=logging.ERROR)
    started = time.monotonic()
    report = await soak(config)
    failures = report.failures(config.bound_seconds, IDLE_BOUND)
    figures = {**report.__dict__, "wall_seconds": round(time.monotonic() - started, 1)}
    print(json.dumps(figures, indent=2, default=str))
    for failure in failures:
        print(f"FAIL: {failure}", file=sys.stderr)
    print("soak: ok" if not failures else "soak: FAILED", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
