"""A real PgBouncer in transaction mode in front of the tests' PostgreSQL (bench/pgbouncer.py
starts it, for a test on a free port with its configuration in a temporary directory), and
the figures of its admin console."""

from __future__ import annotations

import csv
import io
import subprocess

from bench.pgbouncer import pgbouncer, through

__all__ = ["pgbouncer", "pools", "through"]


def _show(port: int, what: str, database: str) -> dict[str, str]:
    """One row of a SHOW command of PgBouncer's admin console (it speaks only the simple
    query protocol: psql asks)."""
    out = subprocess.run(
        [
            *("psql", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-d", "pgbouncer"),
            *("--csv", "-c", f"SHOW {what}"),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    rows = [row for row in csv.DictReader(io.StringIO(out)) if row["database"] == database]
    assert len(rows) == 1, out
    return rows[0]


def pools(port: int, database: str) -> dict[str, int]:
    """For `database`: the client connections PgBouncer holds, the server connections it
    opened, and the transactions it has carried."""
    pool = _show(port, "POOLS", database)
    stats = _show(port, "STATS", database)
    return {
        "clients": sum(int(pool[k]) for k in ("cl_active", "cl_waiting")),
        "servers": sum(int(pool[k]) for k in ("sv_active", "sv_idle", "sv_used", "sv_tested")),
        "transactions": int(stats["total_xact_count"]),
    }
