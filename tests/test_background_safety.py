"""The worker's trust boundary and the ledger's last line of defence: jobs travel as JSON
(a pickle planted in Redis is refused unrun), ledger entries cannot be changed or deleted
in the database (only the audited retention purge deletes), and a scheduled auditor
reports any broken invariant."""

from __future__ import annotations

import json
import os
import pickle
import time
from pathlib import Path

from arq.constants import job_key_prefix

from app.context import AppContext
from app.providers.client import build_http_client
from app.settings import Settings
from workers.main import build_worker


class Planted:
    """What an attacker with write access to Redis would queue: unpickling it runs code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.mkdir, (str(self.marker),))


async def run_burst(settings: Settings, ctx: AppContext) -> tuple[int, int]:
    """Run the queue empty with a burst worker; (jobs complete, jobs failed)."""
    http = build_http_client(connect_timeout=2, read_timeout=5)
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
