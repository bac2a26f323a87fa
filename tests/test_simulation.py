"""The deterministic simulation (sim/): a small budget of seeds runs clean, and a broken
seed (a planted bug) fails the same way each time it is replayed."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from sim.run import BASE_DB, fingerprint, run
from sim.system import throwaway_database

STEPS = 60


@pytest.fixture(scope="module")
async def sim_database() -> AsyncIterator[str]:
    """One migrated throwaway database for these runs (each seed starts from empty)."""
    async with throwaway_database(BASE_DB) as url:
        yield url


async def test_twenty_seeds_run_clean_under_faults(sim_database: str) -> None:
    summary = await run(20, 0, STEPS, shrink=False, echo=False, database_url=sim_database)

    assert summary.seeds == 20
    assert summary.steps == 20 * STEPS
    assert [(seed, o.violations) for seed, o in summary.failures] == []
    # The histories were not quiet: the provider, the queue and the workers all misbehaved.
    kinds = {kind.split(":")[0] for kind in summary.faults}
    assert {"add", "status", "queue", "worker", "api", "payment"} <= kinds
    # Pages applied at the same instant (lock order), answers past the total deadline.
    assert {"status:together", "status:deadline"} <= set(summary.faults)


async def test_a_broken_seed_replays_identically_twice(sim_database: str) -> None:
    # Resending an order whose outcome was unknown creates it upstream twice (seed 5).
    first = await run(
        1, 5, STEPS, "resend-unknown", shrink=False, echo=False, database_url=sim_database
    )
    again = await run(
        1, 5, STEPS, "resend-unknown", shrink=False, echo=False, database_url=sim_database
    )

    (seed, outcome), (seed_again, outcome_again) = first.failures[0], again.failures[0]
    assert seed == seed_again == 5
    assert any("created upstream 2 times" in v for v in outcome.violations)
    assert outcome.violations == outcome_again.violations
    assert outcome.trace == outcome_again.trace
    assert fingerprint(outcome) == fingerprint(outcome_again)


async def test_the_shortest_failing_history_still_fails_when_replayed(sim_database: str) -> None:
    kept = [49, 51, 52]  # what shrinking seed 5 of the planted resend leaves
    summary = await run(
        1,
        5,
        STEPS,
        "resend-unknown",
        keep=kept,
        shrink=False,
        echo=False,
        database_url=sim_database,
    )

    assert summary.steps == len(kept)
    assert any("created upstream 2 times" in v for v in summary.failures[0][1].violations)


async def test_inconsistent_lock_order_is_caught_as_a_deadlock(sim_database: str) -> None:
    # Pages that refund inside their own transaction, locking users as their orders come:
    # two pages answered together meet two users in opposite orders (seed 6).
    summary = await run(
        1, 6, STEPS, "lock-order", shrink=False, echo=False, database_url=sim_database
    )

    (seed, outcome) = summary.failures[0]
    assert seed == 6
    assert any(v.startswith("liveness: deadlock") for v in outcome.violations)
