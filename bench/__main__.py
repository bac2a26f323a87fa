"""`python -m bench`: the hot paths measured over HTTP on loopback against the local
PostgreSQL and Redis, with the raw asyncpg baseline in the same run.

Load generator: an async httpx driver (32 connections) in this process; the servers run as
separate uvicorn processes with production settings (no reload, access log off).
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import secrets
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from app import migrate
from app.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
BASE = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
DB = os.environ.get("BENCH_DB", "smm_bench")
# Which parts to run: "api", "worker" or both (the default).
PARTS = os.environ.get("BENCH_ONLY", "api,worker").split(",")
DSN = BASE.rsplit("/", 1)[0] + "/" + DB
# Provider keys of the bench are encrypted with it (the bench database is made anew).
BENCH_SECRET_KEY = secrets.token_urlsafe(32)
SECONDS = float(os.environ.get("BENCH_SECONDS", "10"))
CONNECTIONS = 32
SYNC_ORDERS = int(os.environ.get("BENCH_SYNC_ORDERS", "100000"))
RELAY_ORDERS = int(os.environ.get("BENCH_RELAY_ORDERS", "3000"))
# BENCH_PROFILE=1: sample the API process with py-spy during the loads; collapsed stacks
# go to bench/profile-api.txt (the hottest frames are printed).
PROFILE = os.environ.get("BENCH_PROFILE") == "1"


def rss_peak_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def start(
    module_app: str, port: int, env: dict[str, str], factory: bool = False
) -> subprocess.Popen[bytes]:
    args = [
        sys.executable,
        "-m",
        "uvicorn",
        module_app,
        "--port",
        str(port),
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    if factory:
        args.append("--factory")
    return subprocess.Popen(args, cwd=ROOT, env={**os.environ, **env})


def start_profiler(pid: int, out: Path) -> subprocess.Popen[bytes]:
    args = ["record", "--format", "raw", "--rate", "200", "--nonblocking", "-o", str(out)]
    return subprocess.Popen(
        ["py-spy", *args, "--pid", str(pid)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def wait_up(url: str, seconds: float = 30) -> None:
    """Until the server at `url` answers anything."""
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            try:
                await client.get(url)
                return
            except httpx.TransportError:
                await asyncio.sleep(0.05)
    raise RuntimeError(f"{url} did not start")


async def load(
    url: str,
    make_body: Callable[[int], dict[str, str]],
    check: Callable[[Any], bool],
    seconds: float = SECONDS,
) -> dict[str, float]:
    latencies: list[float] = []
    errors = 0
    counter = iter(range(10**9))
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                body = make_body(next(counter))
                t0 = time.perf_counter()
                response = await client.post(url, data=body)
                latencies.append(time.perf_counter() - t0)
                if response.status_code != 200 or not check(response.json()):
                    errors += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CONNECTIONS)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "requests": len(latencies),
        "rps": round(len(latencies) / elapsed, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 2),
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 2),
        "errors": errors,
    }


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def wrk(
    url: str, body: str, keys: list[str], seconds: float = SECONDS, server_pid: int = 0
) -> dict[str, float]:
    """Drive `url` with wrk (2 threads, 32 connections); the body template takes {key}, {n}.
    With `server_pid`, also the server process's CPU time per request."""
    cpu_before = cpu_seconds(server_pid) if server_pid else 0.0
    keys_file = ROOT / "bench" / ".keys.tmp"
    keys_file.write_text("\n".join(keys) + "\n")
    base, _, path = url.partition("/api/v2")
    env = {
        **os.environ,
        "KEYS_FILE": str(keys_file),
        "BODY": body,
        "PATH_INFO": "/api/v2" if path == "" and "/api/v2" in url else "/",
    }
    process = await asyncio.create_subprocess_exec(
        "wrk",
        "-t2",
        f"-c{CONNECTIONS}",
        f"-d{int(seconds)}s",
        "--timeout",
        "10s",
        "-s",
        str(ROOT / "bench" / "wrk_post.lua"),
        base if "/api/v2" in url else url,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output = (await process.communicate())[0].decode()
    keys_file.unlink()
    line = next(x for x in output.splitlines() if x.startswith("RESULT "))
    data: dict[str, float] = json.loads(line[len("RESULT ") :])
    data["rps"] = round(data["requests"] / data["seconds"], 1)
    if server_pid:
        used = cpu_seconds(server_pid) - cpu_before
        data["server_cpu_ms_per_request"] = round(1000 * used / max(1, data["requests"]), 3)
    return data


async def reset_database() -> None:
    admin = await asyncpg.connect(BASE)
    await admin.execute(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
    await admin.execute(f'CREATE DATABASE "{DB}"')
    await admin.close()
    await asyncio.to_thread(migrate.upgrade, DSN)


async def seed(users: int) -> list[tuple[int, str]]:
    from app.accounts import service as accounts
    from app.catalog.models import Category, Service
    from app.db import Database
    from app.ledger import service as ledger

    db = Database(DSN, pool_size=2, max_overflow=0)
    out = []
    async with db.transaction() as session:
        category = Category(name="Bench")
        session.add(category)
        await session.flush()
        session.add(
            Service(
                id=1,
                category_id=category.id,
                name="Followers",
                rate=Decimal("0.9"),
                min_quantity=10,
                max_quantity=100000,
                cancel=True,
            )
        )
        await session.flush()
        for i in range(users):
            user = await accounts.create_user(session, email=f"u{i}@bench")
            key = await accounts.issue_key(session, user.id)
            await ledger.credit(
                session, user_id=user.id, amount=Decimal(10**6), kind="deposit", reason="bench"
            )
            out.append((user.id, key.key))
    await db.dispose()
    return out


async def bench_api(results: dict[str, Any]) -> None:
    # Rate limits off: one address and a few keys send far more than any reseller would.
    env = {
        "DATABASE_URL": DSN,
        "REDIS_URL": REDIS,
        "LOG_LEVEL": "WARNING",
        "BENCH_DSN": DSN,
        "SECRET_KEY": BENCH_SECRET_KEY,
        "RATE_LIMIT_PER_IP": "0",
        "RATE_LIMIT_PER_KEY": "0",
    }
    users = await seed(200)
    api = start("app.main:create_app", 8101, env, factory=True)
    raw = start("bench.baseline:app", 8102, env)
    profiler: subprocess.Popen[bytes] | None = None
    try:
        await wait_up("http://127.0.0.1:8101/healthz")
        await wait_up("http://127.0.0.1:8102/")

        def add_many(i: int) -> dict[str, str]:
            _, key = users[i % len(users)]
            return {
                "key": key,
                "action": "add",
                "service": "1",
                "quantity": "1000",
                "link": f"https://instagram.com/u{i}",
            }

        def add_one(i: int) -> dict[str, str]:
            return {**add_many(0), "link": f"https://instagram.com/one{i}"}

        def raw_add(i: int) -> dict[str, str]:
            return {"user": str(users[i % len(users)][0]), "link": f"https://raw.example/{i}"}

        add_body = "key={key}&action=add&service=1&quantity=1000&link=https://instagram.com/{n}"
        use_wrk = shutil.which("wrk") is not None
        results["load_generator"] = (
            "wrk, 2 threads, Lua-built bodies" if use_wrk else "httpx in-process (install wrk)"
        )
        if use_wrk:
            keys = [k for _, k in users]
            # Warm-up (not measured): connections opened, every key seen once.
            await wrk(
                "http://127.0.0.1:8101/api/v2", add_body.replace("{n}", "w{n}"), keys, seconds=2
            )
            await wrk(
                "http://127.0.0.1:8102/",
                "user={key}&link=https://raw.example/w{n}",
                [str(u) for u, _ in users],
                seconds=2,
            )
            if PROFILE:
                profiler = start_profiler(api.pid, ROOT / "bench" / "profile-api.txt")
            results["add_many_users"] = await wrk(
                "http://127.0.0.1:8101/api/v2", add_body, keys, server_pid=api.pid
            )
            results["raw_baseline"] = await wrk(
                "http://127.0.0.1:8102/",
                "user={key}&link=https://raw.example/{n}",
                [str(u) for u, _ in users],
                server_pid=raw.pid,
            )
            results["add_one_user"] = await wrk(
                "http://127.0.0.1:8101/api/v2",
                add_body.replace("{n}", "one{n}"),
                keys[:1],
                server_pid=api.pid,
            )
        else:
            results["add_many_users"] = await load(
                "http://127.0.0.1:8101/api/v2", add_many, lambda r: "order" in r
            )
            results["raw_baseline"] = await load(
                "http://127.0.0.1:8102/", raw_add, lambda r: "order" in r
            )
            results["add_one_user"] = await load(
                "http://127.0.0.1:8101/api/v2", add_one, lambda r: "order" in r
            )
        conn = await asyncpg.connect(DSN)
        # Every add must have placed exactly one order (rules enforced, nothing lost).
        results["orders_created"] = await conn.fetchval(
            "SELECT count(*) FROM orders WHERE link NOT LIKE 'https://raw.example/%'"
            " AND link NOT LIKE 'https://instagram.com/w%'"
        )
        results["api_add_requests"] = (
            results["add_many_users"]["requests"] + results["add_one_user"]["requests"]
        )
        await conn.close()
        results["add_vs_baseline"] = round(
            results["add_many_users"]["rps"] / results["raw_baseline"]["rps"], 3
        )
        key = users[0][1]
        conn = await asyncpg.connect(DSN)
        ids = [
            r["id"]
            for r in await conn.fetch(
                "SELECT id FROM orders WHERE user_id = $1 ORDER BY id LIMIT 100", users[0][0]
            )
        ]
        await conn.close()
        orders = ",".join(map(str, ids))
        if use_wrk:
            results["status_100_ids"] = await wrk(
                "http://127.0.0.1:8101/api/v2",
                f"key={{key}}&action=status&orders={orders}",
                [key],
                server_pid=api.pid,
            )
        else:
            results["status_100_ids"] = await load(
                "http://127.0.0.1:8101/api/v2",
                lambda i: {"key": key, "action": "status", "orders": orders},
                lambda r: len(r) == 100,
            )
        results["api_rss_peak_mb"] = round(rss_peak_mb(api.pid), 1)
    finally:
        if profiler is not None:
            profiler.send_signal(2)
            profiler.wait()
        for process in (api, raw):
            process.terminate()
            process.wait()


def profile_summary(path: Path, top: int = 25) -> list[tuple[str, float, float]]:
    """(function, % of samples on CPU in it, % with it on the stack) from py-spy's
    collapsed stacks."""
    own: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [
            f.split(" (")[0] + " " + f.rsplit("/", 1)[-1].rstrip(")") for f in stack.split(";")
        ]
        total += count
        own[frames[-1]] = own.get(frames[-1], 0) + count
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + count
    ranked = sorted(inclusive, key=lambda f: -inclusive[f])[:top]
    return [
        (f, round(100 * own.get(f, 0) / total, 1), round(100 * inclusive[f] / total, 1))
        for f in ranked
    ]


async def bench_worker(results: dict[str, Any]) -> None:
    from app.db import Database
    from app.providers.client import build_http_client
    from app.providers.service import create_provider
    from workers import main as jobs

    await reset_database()
    provider_app = start("bench.instant_provider:app", 8103, {})
    await wait_up("http://127.0.0.1:8103/")
    settings = Settings(
        database_url=DSN, redis_url=REDIS, queue_name="bench:queue", secret_key=BENCH_SECRET_KEY
    )
    db = Database(DSN)
    users = await seed(1)
    async with db.transaction() as session:
        provider = await create_provider(
            session,
            secret=settings.secret_key,
            name="instant",
            url="http://127.0.0.1:8103/",
            api_key="k",
        )
    conn = await asyncpg.connect(DSN)
    await conn.execute(
        "UPDATE services SET provider_id = $1, provider_service_id = '1'", provider.id
    )
    uid = users[0][0]
    await conn.execute(
        "INSERT INTO orders (user_id, service_id, type, link, link_normalized, quantity, rate,"
        " charge, upstream_state, provider_id, provider_service_id, next_attempt_at)"
        " SELECT $1, 1, 'Default', 'https://x.y/' || g, 'x.y/' || g, 1000, 0.9, 0, 'queued',"
        " $2, '1', now() FROM generate_series(1, $3) g",
        uid,
        provider.id,
        RELAY_ORDERS,
    )
    http = build_http_client()
    ctx: dict[str, Any] = {"settings": settings, "db": db, "http": http}
    worker = jobs.build_worker(settings, burst=True, ctx=ctx)
    from app.jobs import JobQueue

    queue = await JobQueue.connect(REDIS, settings.queue_name)
    assert queue.redis is not None
    await queue.redis.flushdb()
    ids = [r["id"] for r in await conn.fetch("SELECT id FROM orders ORDER BY id")]
    for order_id in ids:
        await queue.relay_order(order_id)
    started = time.perf_counter()
    await worker.run_check()
    relay_seconds = time.perf_counter() - started
    await worker.close()
    sent = await conn.fetchval("SELECT count(*) FROM orders WHERE upstream_state = 'sent'")
    results["relay"] = {
        "orders": sent,
        "seconds": round(relay_seconds, 2),
        "orders_per_s": round(sent / relay_seconds, 1),
    }
    results["worker_rss_peak_mb_self"] = round(rss_peak_mb(os.getpid()), 1)
    # Status sync of many active orders.
    await conn.execute("DELETE FROM upstream_events")
    await conn.execute(
        "INSERT INTO orders (user_id, service_id, type, link, link_normalized, quantity, rate,"
        " charge, upstream_state, status, provider_id, provider_service_id, provider_order_id)"
        " SELECT $1, 1, 'Default', 'https://s.y/' || g, 's.y/' || g, 1000, 0.9, 0, 'sent',"
        " 'In progress', $2, '1', 's' || g FROM generate_series(1, $3) g",
        uid,
        provider.id,
        SYNC_ORDERS,
    )
    await conn.execute("ANALYZE orders")
    from app.flows import sync

    started = time.perf_counter()
    outcome = await sync.sync_all(db, http, settings)
    sync_seconds = time.perf_counter() - started
    results["status_sync"] = {
        "orders": outcome.checked,
        "changed": outcome.changed,
        "seconds": round(sync_seconds, 1),
        "orders_per_s": round(outcome.checked / sync_seconds, 1),
    }
    await conn.close()
    await queue.close()
    await http.aclose()
    await db.dispose()
    provider_app.terminate()
    provider_app.wait()


async def main() -> None:
    results: dict[str, Any] = {
        "machine": (
            f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
        ),
        "seconds_per_load": SECONDS,
        "connections": CONNECTIONS,
    }
    await reset_database()
    if "api" in PARTS:
        await bench_api(results)
    if "worker" in PARTS:
        await bench_worker(results)
    out = ROOT / "bench" / ("results.json" if len(PARTS) == 2 else f"results-{PARTS[0]}.json")
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    profile = ROOT / "bench" / "profile-api.txt"
    if PROFILE and profile.exists():
        for name, own, inclusive in profile_summary(profile, top=60):
            print(f"{inclusive:6.1f}% {own:6.1f}%  {name}", file=sys.stderr)


if __name__ == "__main__":
    asyncio.run(main())
