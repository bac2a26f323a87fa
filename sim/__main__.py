"""`python -m sim`: run seeds, print the summary; `--mutants` plants each known bug."""

from __future__ import annotations

import argparse
import asyncio
import sys

from sim.mutants import MUTANTS
from sim.run import DEFAULT_STEPS, fingerprint, run


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m sim", description=__doc__)
    parser.add_argument("--seeds", type=int, default=1, help="how many seeds (default 1)")
    parser.add_argument("--seed", type=int, default=0, help="the first seed (default 0)")
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS, help="steps per history")
    parser.add_argument("--mutant", choices=sorted(MUTANTS), help="plant one known bug")
    parser.add_argument(
        "--mutants", action="store_true", help="plant each known bug in turn; each must be caught"
    )
    parser.add_argument("--keep", help="replay only these steps (comma-separated indexes)")
    parser.add_argument("--no-shrink", action="store_true", help="do not shrink failures")
    parser.add_argument("--trace", action="store_true", help="print every history")
    return parser.parse_args(argv)


async def mutants(args: argparse.Namespace) -> int:
    missed = 0
    for name in sorted(MUTANTS):
        summary = await run(
            args.seeds, args.seed, args.steps, name, stop_at_first=True, shrink=False, echo=False
        )
        if summary.failures:
            seed, outcome = summary.failures[0]
            print(
                f"mutant {name}: CAUGHT at seed {seed} after {summary.seeds} seeds"
                f" ({summary.steps} steps, {summary.seconds:.1f} s): {outcome.violations[0]}"
            )
            print(f"  replay it: python -m sim --seed {seed} --steps {args.steps} --mutant {name}")
        else:
            missed += 1
            print(f"mutant {name}: MISSED in {summary.seeds} seeds")
    print(f"mutants caught: {len(MUTANTS) - missed} of {len(MUTANTS)}")
    return 1 if missed else 0


async def main(argv: list[str]) -> int:
    args = parse(argv)
    if args.mutants:
        return await mutants(args)
    keep = [int(i) for i in args.keep.split(",") if i] if args.keep else None
    summary = await run(
        args.seeds,
        args.seed,
        args.steps,
        args.mutant,
        keep=keep,
        shrink=not args.no_shrink,
        verbose=args.trace,
    )
    for line in summary.lines():
        print(line)
    for seed, outcome in summary.failures[:1]:
        print(f"first failing seed {seed}: trace {fingerprint(outcome)}")
    return 1 if summary.failures else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
