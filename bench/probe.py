"""The API under a probe, for `make bench` with BENCH_PROBE=1: where the latency tail of a
request comes from. Counts, per load, garbage-collector pauses (per generation), event-loop
stalls (a 5 ms ticker's lateness) and waits for a connection of the plain asyncpg pool;
written as JSON to BENCH_PROBE_FILE at shutdown. Nothing here runs in
production: it wraps `create_app` and asyncpg's pool from the outside."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import asyncpg.pool
from fastapi import FastAPI

from app.main import create_app as create_panel

TICK = 0.005
samples: dict[str, list[float]] = {"gc0": [], "gc1": [], "gc2": [], "loop_lag": [], "pool_wait": []}
_gc_started = [0.0]


def _on_gc(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        _gc_started[0] = time.perf_counter()
    else:
        samples[f"gc{info['generation']}"].append(time.perf_counter() - _gc_started[0])


async def _ticker() -> None:
    while True:
        due = time.perf_counter() + TICK
        await asyncio.sleep(TICK)
        samples["loop_lag"].append(max(0.0, time.perf_counter() - due))


_acquire = asyncpg.pool.Pool._acquire


async def _timed_acquire(self: Any, timeout: Any) -> Any:  # noqa: ASYNC109 - asyncpg's signature
    started = time.perf_counter()
    try:
        return await _acquire(self, timeout)
    finally:
        samples["pool_wait"].append(time.perf_counter() - started)


def _summary(values: list[float]) -> dict[str, float]:
    if not values:
        return {"count": 0}
    ordered = sorted(values)
    return {
        "count": len(ordered),
        "total_ms": round(1000 * sum(ordered), 1),
        "p99_ms": round(1000 * ordered[int(len(ordered) * 0.99) - 1 if len(ordered) > 1 else 0], 2),
        "max_ms": round(1000 * ordered[-1], 2),
        "over_10ms": sum(v > 0.010 for v in ordered),
    }


def _write() -> None:
    out = os.environ.get("BENCH_PROBE_FILE")
    if out:
        Path(out).write_text(json.dumps({k: _summary(v) for k, v in samples.items()}))


def reset() -> None:
    for values in samples.values():
        values.clear()


def create_app() -> FastAPI:
    """The panel's app with the probes on; SIGUSR1 clears what was counted so far (the
    bench sends it after the warm-up)."""
    signal.signal(signal.SIGUSR1, lambda *_: reset())
    gc.callbacks.append(_on_gc)
    asyncpg.pool.Pool._acquire = _timed_acquire  # type: ignore[method-assign]
    app = create_panel()
    panel_lifespan = app.router.lifespan_context

    def lifespan(application: FastAPI) -> Any:
        context = panel_lifespan(application)

        class Probed:
            async def __aenter__(self) -> Any:
                value = await context.__aenter__()
                self.ticker = asyncio.get_running_loop().create_task(_ticker())
                return value

            async def __aexit__(self, *exc: Any) -> Any:
                self.ticker.cancel()
                _write()  # at shutdown (uvicorn ends on the signal itself, no atexit)
                return await context.__aexit__(*exc)

        return Probed()

    app.router.lifespan_context = lifespan
    return app
