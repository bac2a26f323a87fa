"""Deterministic simulation of the order lifecycle: the real domain code on a real
PostgreSQL database, with the clock, the upstream provider, Redis delivery and crashes
simulated and decided by one seeded random generator. Every history replays from its seed.

`python -m sim --seeds N --seed S` (or `make sim SEEDS=N`); see the README's last section.
"""
