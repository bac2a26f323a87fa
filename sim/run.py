"""Running seeds: the summary, replay commands and shrinking of failing histories."""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from app.db import Database
from sim.mutants import MUTANTS
from sim.system import Outcome, System, plan, settings_for, throwaway_database

BASE_DB = os.environ.get(
    "SIM_DATABASE_URL",
    os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
)
DEFAULT_STEPS = 60


def replay_command(seed: int, steps: int, mutant: str | None, keep: Sequence[int] = ()) -> str:
    parts = ["python -m sim", f"--seed {seed}", f"--steps {steps}"]
    if mutant:
        parts.append(f"--mutant {mutant}")
    if keep:
        parts.append("--keep " + ",".join(map(str, keep)))
    return " ".join(parts)


def fingerprint(outcome: Outcome) -> str:
    return hashlib.sha256("\n".join(outcome.trace).encode()).hexdigest()[:16]


@dataclass
class Summary:
    seeds: int = 0
    steps: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    failures: list[tuple[int, Outcome]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def violations(self) -> int:
        return sum(len(o.violations) for _, o in self.failures)

    def lines(self) -> list[str]:
        out = [
            f"seeds run: {self.seeds}",
            f"steps executed: {self.steps}",
            f"faults injected: {sum(self.faults.values())}",
        ]
        out += [f"  {kind}: {count}" for kind, count in sorted(self.faults.items())]
        out.append(f"violations: {self.violations} (in {len(self.failures)} seeds)")
        out.append(
            f"time: {self.seconds:.1f} s ({self.seeds / max(self.seconds, 1e-9):.1f} seeds/s)"
        )
        return out


class Simulator:
    """One throwaway database, many seeds, each from a clean slate."""

    def __init__(self, db: Database, url: str, steps: int, mutant: str | None) -> None:
        self.system = System(db, settings_for(url))
        self.steps = steps
        self.mutant = mutant

    async def run_seed(self, seed: int, keep: Sequence[int] | None = None) -> Outcome:
        steps = plan(seed, self.steps)
        if keep is not None:
            chosen = set(keep)
            history = [s for i, s in enumerate(steps) if i in chosen]
            indexes = [i for i in range(len(steps)) if i in chosen]
        else:
            history, indexes = steps, list(range(len(steps)))
        outcome = await self.system.run(seed, history)
        # Name the steps by their place in the full history, so a kept list reads alike.
        outcome.trace = [_renumber(line, indexes) for line in outcome.trace]
        return outcome

    async def shrink(self, seed: int, budget: int = 150) -> tuple[list[int], Outcome]:
        """The shortest history found that still fails: drop chunks of steps, then single
        steps, keeping each removal after which the seed still fails."""
        keep = list(range(self.steps))
        best = await self.run_seed(seed, keep)
        tries = 0
        chunk = max(1, len(keep) // 2)
        while chunk >= 1 and tries < budget:
            start, removed = 0, False
            while start < len(keep) and tries < budget:
                candidate = keep[:start] + keep[start + chunk :]
                tries += 1
                outcome = await self.run_seed(seed, candidate)
                if outcome.failed:
                    keep, best, removed = candidate, outcome, True
                else:
                    start += chunk
            if not removed:
                chunk //= 2
        return keep, best


def _renumber(line: str, indexes: Sequence[int]) -> str:
    if line.startswith("step "):
        head, _, rest = line.partition(":")
        position = int(head.split()[1])
        return f"step {indexes[position]}:{rest}"
    return line


async def run(
    seeds: int,
    first_seed: int,
    steps: int,
    mutant: str | None = None,
    *,
    keep: Sequence[int] | None = None,
    stop_at_first: bool = False,
    shrink: bool = True,
    verbose: bool = False,
    echo: bool = True,
    database_url: str | None = None,
) -> Summary:
    """Run `seeds` histories from `first_seed` on a throwaway database (or on
    `database_url`, already migrated), with `mutant` planted if named."""
    quieted = logging.root.manager.disable
    logging.disable(logging.CRITICAL)  # the code's own warnings are expected under faults
    summary = Summary()
    started = time.monotonic()

    async def on(url: str) -> None:
        await _seeds(
            summary,
            started,
            url,
            range(first_seed, first_seed + seeds),
            steps,
            mutant,
            keep=keep,
            stop_at_first=stop_at_first,
            shrink=shrink,
            verbose=verbose,
            echo=echo,
        )

    try:
        if database_url is not None:
            await on(database_url)
        else:
            async with throwaway_database(BASE_DB) as url:
                await on(url)
    finally:
        logging.disable(quieted)
    summary.seconds = time.monotonic() - started
    return summary


async def _seeds(
    summary: Summary,
    started: float,
    url: str,
    seeds: range,
    steps: int,
    mutant: str | None,
    *,
    keep: Sequence[int] | None,
    stop_at_first: bool,
    shrink: bool,
    verbose: bool,
    echo: bool,
) -> None:
    db = Database(url, pool_size=5, max_overflow=5)
    undo = await MUTANTS[mutant](db) if mutant else None
    try:
        simulator = Simulator(db, url, steps, mutant)
        for seed in seeds:
            outcome = await simulator.run_seed(seed, keep)
            summary.seeds += 1
            summary.steps += outcome.steps
            summary.faults.update(outcome.faults)
            if echo and summary.seeds % 100 == 0:
                elapsed = time.monotonic() - started
                print(f"… {summary.seeds} seeds, {elapsed:.0f} s", file=sys.stderr, flush=True)
            if verbose:
                _print(echo, *outcome.trace)
            if outcome.failed:
                summary.failures.append((seed, outcome))
                _report(echo, seed, steps, mutant, outcome, keep)
                if shrink and keep is None:
                    kept, shortest = await simulator.shrink(seed)
                    _print(
                        echo,
                        f"shortest failing history: {len(kept)} of {steps} steps",
                        f"  replay it: {replay_command(seed, steps, mutant, kept)}",
                        *(f"  | {line}" for line in shortest.trace),
                    )
                if stop_at_first:
                    break
    finally:
        if undo is not None:
            undo()
        await db.dispose()


def _print(echo: bool, *lines: str) -> None:
    if echo:
        for line in lines:
            print(line, flush=True)


def _report(
    echo: bool,
    seed: int,
    steps: int,
    mutant: str | None,
    outcome: Outcome,
    keep: Sequence[int] | None,
) -> None:
    _print(
        echo,
        f"seed {seed} FAILED ({len(outcome.violations)} violations, trace {fingerprint(outcome)})",
        *(f"  {v}" for v in outcome.violations[:5]),
        f"  replay it: {replay_command(seed, steps, mutant, keep or ())}",
    )
