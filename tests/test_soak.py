"""The liveness soak (bench/soak.py, `make soak`), shorter: a few hundred orders of three
resellers ending Partial, Canceled or Completed at the sandbox provider, next to a
provider that dribbles its answers and one that answers garbage, with the real worker.
The work never stops: no deadlock, every order settled in time, the relay never idle
while orders are due, refunds exact, the ledger exact."""

from __future__ import annotations

import uuid

from bench.soak import IDLE_BOUND, SoakConfig, soak
from tests.support.env import TEST_REDIS

BOUND = 45.0


async def test_a_short_soak_keeps_working_and_counts_every_refund() -> None:
    config = SoakConfig(
        database=f"smm_soak_{uuid.uuid4().hex[:8]}",
        redis_url=TEST_REDIS,
        users=3,
        orders=300,
        slow_orders=40,
        slow_sent=5,
        garbage_orders=20,
        bound_seconds=BOUND,
        dribble_interval=1.0,
        drop_after=True,
        # Shorter than the defaults, so that it fits in a test: a 4 s total deadline (a
        # dribbled answer never ends before it), a status sync every 5 s.
        overrides={"provider_total_timeout": 4.0, "status_sync_seconds": 5},
    )
    report = await soak(config)

    assert report.failures(BOUND, IDLE_BOUND) == []
    assert (report.deadlocks, report.deadlock_log_lines) == (0, 0)
    assert report.by_status == {"Partial": 120, "Canceled": 90, "Completed": 90}
    assert report.refunds_checked == 300 and report.refund_mismatches == []
    # Every slow order was sent once and ended in review at its deadline, never resent.
    assert report.slow_calls["add"] == 40
    assert report.garbage_calls["add"] == 20
    # 40 slow and 19 garbage orders in review; 5 sent earlier to the slow provider and the
    # one garbage order bound to upstream id 424242 (the others answered it are held).
    assert report.faulty_states == {"review": 59, "sent": 6}
    # The slow provider's sync ran once at a time: never more calls than sync cycles.
    assert 1 <= report.slow_calls["status"] <= BOUND / 4
    assert report.ledger_ok
