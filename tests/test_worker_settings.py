"""`arq workers.main.WorkerSettings` and `smm-panel worker` run the same jobs on the same
schedule: a worker started either way syncs statuses, so Partial orders get refunded."""

from __future__ import annotations

from typing import Any

from arq.cron import CronJob

from app.settings import Settings, get_settings
from workers import main


def frozen(value: object) -> object:
    return frozenset(value) if isinstance(value, set) else value


def schedule(jobs: list[CronJob]) -> set[tuple[object, ...]]:
    return {
        (job.name, frozen(job.hour), frozen(job.minute), frozen(job.second), job.run_at_startup)
        for job in jobs
    }


def test_arq_worker_settings_schedule_what_smm_panel_worker_schedules() -> None:
    settings = get_settings()
    arq_settings: Any = main.WorkerSettings  # a class of attributes, as arq reads it
    worker = main.build_worker(settings)
    try:
        assert schedule(arq_settings.cron_jobs) == schedule(worker.cron_jobs)
        names = {job.name for job in arq_settings.cron_jobs}
        # Named under the panel's Redis prefix: arq makes cron job ids from the names.
        prefix = settings.redis_namespace
        assert {
            f"{prefix}:cron:{job}" for job in ("sweep", "sync_statuses", "sync_refills")
        } <= names
        registered = {fn.__name__ for fn in arq_settings.functions}
        assert registered == {fn.__name__ for fn in main.FUNCTIONS}
        assert arq_settings.queue_name == settings.arq_queue
    finally:
        del worker


def test_the_schedule_follows_the_settings() -> None:
    fast = main.cron_jobs(Settings(status_sync_seconds=5))
    sync = next(job for job in fast if job.name == "cron:sync_statuses")
    assert sync.second == set(range(0, 60, 5))
