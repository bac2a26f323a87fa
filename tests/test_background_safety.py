"""The worker's trust boundary and the ledger's last line of defence: jobs travel as JSON
(a pickle planted in Redis is refused unrun), ledger entries cannot be changed or deleted
in the database (only the audited retention purge deletes), and a scheduled auditor
reports any broken invariant."""

from __future__ import annotations

import json
import logging
import os
import pickle
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from arq.constants import job_key_prefix
from prometheus_client import REGISTRY
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from app.audit.models import AuditEntry
from app.context import AppContext
from app.db import utcnow
from app.http.problems import sqlstate
from app.ledger.models import LedgerEntry
from app.ledger.service import PURGE_SETTING
from app.privacy import service as privacy
from app.providers.client import build_http_client
from app.settings import Settings
from tests.support.api import MakeUser
from tests.support.ledger import ledger_ok
from tests.support.upstream import call_job
from workers.main import FUNCTIONS, audit_ledger, build_worker, cron_jobs


class Planted:
    """What an attacker with write access to Redis would queue: unpickling it runs code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.mkdir, (str(self.marker),))


async def run_burst(settings: Settings, ctx: AppContext) -> tuple[int, int]:
    """Run the queue empty with a burst worker; (jobs complete, jobs failed)."""
    http = build_http_client(
        connect_timeout=2, read_timeout=5, allow_private=settings.provider_allow_private
    )
    worker = build_worker(settings, burst=True, ctx={"db": ctx.db, "http": http})
    try:
        await worker.main()
        return worker.jobs_complete, worker.jobs_failed
    finally:
        await worker.close()
        await http.aclose()


async def test_a_pickled_job_is_refused_and_a_json_job_runs(
    settings: Settings, ctx: AppContext, tmp_path: Path
) -> None:
    redis = ctx.jobs.redis
    assert redis is not None
    marker = tmp_path / "code-ran"
    envelope = {"t": 1, "f": "sweep", "a": [], "k": {}, "et": int(time.time() * 1000)}
    planted_id = f"{settings.queue_name}:planted"
    await redis.set(job_key_prefix + planted_id, pickle.dumps({**envelope, "x": Planted(marker)}))
    await redis.zadd(settings.queue_name, {planted_id: time.time() * 1000})

    assert await ctx.jobs.enqueue("sweep", job_id="plain")
    stored = await redis.get(job_key_prefix + f"{settings.queue_name}:plain")
    assert json.loads(stored)["f"] == "sweep"  # what the panel queues is JSON

    assert await run_burst(settings, ctx) == (1, 1)  # the JSON job ran, the pickle did not
    assert not marker.exists()


# The ledger is append-only in the database ----------------------------------------------


async def one_entry(ctx: AppContext, make_user: MakeUser) -> tuple[int, int]:
    user = await make_user(balance="10")
    async with ctx.db.session() as session:
        entry_id = await session.scalar(
            select(LedgerEntry.id).where(LedgerEntry.user_id == user.user_id)
        )
    assert entry_id is not None
    return user.user_id, entry_id


@pytest.mark.parametrize(
    ("statement", "verb"),
    [
        ("UPDATE ledger_entries SET amount = 1000 WHERE id = :id", "UPDATE"),
        ("DELETE FROM ledger_entries WHERE id = :id", "DELETE"),
    ],
)
async def test_the_database_refuses_to_change_or_delete_a_ledger_entry(
    ctx: AppContext, make_user: MakeUser, statement: str, verb: str
) -> None:
    _, entry_id = await one_entry(ctx, make_user)
    with pytest.raises(DBAPIError) as refused:
        async with ctx.db.transaction() as session:
            await session.execute(text(statement), {"id": entry_id})
    assert sqlstate(refused.value) == "23001"  # restrict_violation
    assert f"ledger entries are append-only: {verb} of entry {entry_id} refused" in str(
        refused.value
    )
    async with ctx.db.session() as session:
        amount = await session.scalar(select(LedgerEntry.amount).where(LedgerEntry.id == entry_id))
    assert amount == Decimal("10")


async def test_the_purge_switch_allows_delete_only_and_only_in_its_transaction(
    ctx: AppContext, make_user: MakeUser
) -> None:
    _, entry_id = await one_entry(ctx, make_user)
    with pytest.raises(DBAPIError, match="append-only: UPDATE"):
        async with ctx.db.transaction() as session:
            await session.execute(text(f"SET LOCAL {PURGE_SETTING} = 'on'"))
            await session.execute(
                text("UPDATE ledger_entries SET reason = 'x' WHERE id = :id"), {"id": entry_id}
            )
    async with ctx.db.transaction() as session:
        await session.execute(text(f"SET LOCAL {PURGE_SETTING} = 'on'"))
    with pytest.raises(DBAPIError, match="append-only: DELETE"):
        async with ctx.db.transaction() as session:  # the setting died with its transaction
            await session.execute(
                text("DELETE FROM ledger_entries WHERE id = :id"), {"id": entry_id}
            )


async def test_the_retention_purge_deletes_entries_and_is_audited(
    ctx: AppContext, make_user: MakeUser
) -> None:
    user_id, _ = await one_entry(ctx, make_user)
    kept, _ = await one_entry(ctx, make_user)
    async with ctx.db.transaction() as session:
        await privacy.erase_user(session, user_id)
        await session.execute(
            text("UPDATE users SET deleted_at = now() - interval '400 days' WHERE id = :id"),
            {"id": user_id},
        )
    async with ctx.db.transaction() as session:
        purged = await privacy.purge_erased_users(session, utcnow() - timedelta(days=365))
        # The switch is off again for the rest of the purge's transaction.
        assert await session.scalar(text(f"SELECT current_setting('{PURGE_SETTING}', true)")) == (
            "off"
        )
    assert purged == [user_id]
    async with ctx.db.session() as session:
        owners = list(await session.scalars(select(LedgerEntry.user_id)))
        trail = list(
            await session.scalars(select(AuditEntry).where(AuditEntry.action == "ledger.purge"))
        )
    assert owners == [kept]
    assert [
        (a.actor, a.entity, (a.after or {})["user_ids"], (a.after or {})["entries"]) for a in trail
    ] == [("retention", "ledger", [user_id], 1)]
    await ledger_ok(ctx)


# The scheduled ledger auditor -----------------------------------------------------------


def gauge(name: str) -> float | None:
    return REGISTRY.get_sample_value(name)


async def test_the_ledger_auditor_exports_and_alerts_on_a_planted_violation(
    settings: Settings,
    ctx: AppContext,
    make_user: MakeUser,
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert "cron:audit_ledger" in {job.name for job in cron_jobs(settings)}
    assert audit_ledger in FUNCTIONS
    user_id, entry_id = await one_entry(ctx, make_user)

    before = time.time()
    clean = await call_job(settings, ctx, "audit_ledger")
    assert clean == {"violations": 0, "checked_users": 1, "checked_orders": 0}
    assert gauge("smm_ledger_violations") == 0
    assert (gauge("smm_ledger_checked_at") or 0) >= int(before)

    # Plant a changed entry past the trigger (as only a superuser could) to see it caught.
    async with ctx.db.transaction() as session:
        await session.execute(text("ALTER TABLE ledger_entries DISABLE TRIGGER USER"))
        await session.execute(
            text("UPDATE ledger_entries SET amount = 12, balance_after = 12 WHERE id = :id"),
            {"id": entry_id},
        )
        await session.execute(text("ALTER TABLE ledger_entries ENABLE TRIGGER USER"))
    caplog.set_level(logging.ERROR, logger="workers.main")
    found = await call_job(settings, ctx, "audit_ledger")
    assert found["violations"] == 1
    assert gauge("smm_ledger_violations") == 1
    alert = next(r for r in caplog.records if r.getMessage() == "ledger invariant violated")
    assert alert.levelno == logging.ERROR
    assert getattr(alert, "first") == [  # noqa: B009 (set by the logger's extra)
        {
            "rule": "balance_equals_ledger_sum",
            "user_id": user_id,
            "balance": "10.00000000",
            "ledger_sum": "12.00000000",
        }
    ]
    # Put it back so the next tests start from a consistent ledger.
    async with ctx.db.transaction() as session:
        await session.execute(text("ALTER TABLE ledger_entries DISABLE TRIGGER USER"))
        await session.execute(
            text("UPDATE ledger_entries SET amount = 10, balance_after = 10 WHERE id = :id"),
            {"id": entry_id},
        )
        await session.execute(text("ALTER TABLE ledger_entries ENABLE TRIGGER USER"))
    assert (await call_job(settings, ctx, "audit_ledger"))["violations"] == 0
    assert gauge("smm_ledger_violations") == 0
