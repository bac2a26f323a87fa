"""`python -m bench`: every API v2 action measured over HTTP on loopback against the local
PostgreSQL and Redis, with the baselines (bench/baseline.py) in the same run, then the
relay and the status sync.

Load generator: wrk (2 threads, 32 connections, bodies built in Lua); the servers run as
separate uvicorn processes with production settings (no reload, access log off).
BENCH_SECONDS sets the length of each load (keep it small on a busy machine).
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx

from app import migrate
from app.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
BASE = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
DB = os.environ.get("BENCH_DB", "smm_bench")
# Which parts to run: "api", "worker" or both (the default); "headline" runs only the
# headline rows (defaults on and request log off), a quick run.
PARTS = os.environ.get("BENCH_ONLY", "api,worker").split(",")
DSN = BASE.rsplit("/", 1)[0] + "/" + DB
# Provider keys of the bench are encrypted with it (the bench database is made anew).
BENCH_SECRET_KEY = secrets.token_urlsafe(32)
SECONDS = float(os.environ.get("BENCH_SECONDS", "10"))
CONNECTIONS = 32
SERVICES_ROUNDS = int(os.environ.get("BENCH_SERVICES_ROUNDS", "3"))
SYNC_ORDERS = int(os.environ.get("BENCH_SYNC_ORDERS", "100000"))
RELAY_ORDERS = int(os.environ.get("BENCH_RELAY_ORDERS", "3000"))
# BENCH_PROFILE=1: sample the API process with py-spy during the loads; collapsed stacks
# go to bench/profile-api.txt (the hottest frames are printed), and those of each headline
# row to bench/profile-<defaults|log_off>-<row>.txt.
PROFILE = os.environ.get("BENCH_PROFILE") == "1"
# BENCH_PROBE=1: `add` once more on a probed API process (bench/probe.py): GC pauses,
# event-loop stalls and pool waits during the load.
PROBE = os.environ.get("BENCH_PROBE") == "1"
# BENCH_PGBOUNCER=1: the headline loads once more on an API whose connections go through
# PgBouncer in transaction mode (DB_POOLER=transaction), beside the direct figures.
PGBOUNCER = os.environ.get("BENCH_PGBOUNCER") == "1"
PGBOUNCER_POOL_SIZE = int(os.environ.get("BENCH_PGBOUNCER_POOL_SIZE", "20"))
# The defaults people deploy: request log on (written to a file, as under a service
# manager), rate limits on (counted in Redis; set high enough that this load from one
# address is never refused).
DEFAULTS = {"LOG_LEVEL": "INFO", "LOG_REQUESTS": "true"}
LIMITS_ON = {"RATE_LIMIT_PER_IP": str(10**9), "RATE_LIMIT_PER_KEY": str(10**9)}


def rss_peak_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def start(
    module_app: str,
    port: int,
    env: dict[str, str],
    factory: bool = False,
    workers: int = 1,
    log: Path | None = None,
) -> subprocess.Popen[bytes]:
    """The app under uvicorn; its log lines (stderr) go to `log` when given."""
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
    if workers > 1:
        args += ["--workers", str(workers)]
    if log is None:
        return subprocess.Popen(args, cwd=ROOT, env={**os.environ, **env})
    with log.open("wb") as out:
        return subprocess.Popen(args, cwd=ROOT, env={**os.environ, **env}, stderr=out)


def start_profiler(pid: int, out: Path) -> subprocess.Popen[bytes]:
    args = ["record", "--format", "raw", "--rate", "200", "--nonblocking", "-o", str(out)]
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    return subprocess.Popen(
        [spy, *args, "--pid", str(pid)],
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


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float:
    """CPU time of a process and its children (uvicorn --workers N runs N children)."""
    total = cpu_seconds(pid)
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            total += tree_cpu_seconds(int(child))
    return total


async def wrk(
    url: str,
    body: str,
    keys: list[str],
    seconds: float = SECONDS,
    server_pid: int = 0,
    ids: list[str] | None = None,
    if_none_match: str | None = None,
) -> dict[str, float]:
    """Drive `url` with wrk (2 threads, 32 connections); the body template takes {key},
    {n} and, with `ids`, {id} (each id sent once). With `server_pid`, also the server's
    CPU time per request (its worker processes included)."""
    cpu_before = tree_cpu_seconds(server_pid) if server_pid else 0.0
    keys_file = ROOT / "bench" / ".keys.tmp"
    keys_file.write_text("\n".join(keys) + "\n")
    parts = urlsplit(url)
    env = {
        **os.environ,
        "KEYS_FILE": str(keys_file),
        "BODY": body,
        "PATH_INFO": parts.path or "/",
    }
    ids_file = ROOT / "bench" / ".ids.tmp"
    if ids:
        ids_file.write_text("\n".join(ids) + "\n")
        env["IDS_FILE"] = str(ids_file)
    if if_none_match:
        env["IF_NONE_MATCH"] = if_none_match
    process = await asyncio.create_subprocess_exec(
        "wrk",
        "-t2",
        f"-c{CONNECTIONS}",
        f"-d{int(seconds)}s",
        "--timeout",
        "10s",
        "-s",
        str(ROOT / "bench" / "wrk_post.lua"),
        f"{parts.scheme}://{parts.netloc}",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output = (await process.communicate())[0].decode()
    keys_file.unlink()
    ids_file.unlink(missing_ok=True)
    line = next(x for x in output.splitlines() if x.startswith("RESULT "))
    data: dict[str, float] = json.loads(line[len("RESULT ") :])
    data["rps"] = round(data["requests"] / data["seconds"], 1)
    if server_pid:
        used = tree_cpu_seconds(server_pid) - cpu_before
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


CATALOG_SERVICES = int(os.environ.get("BENCH_CATALOG_SERVICES", "5000"))
CATALOG_CATEGORIES = int(os.environ.get("BENCH_CATALOG_CATEGORIES", "200"))
API = "http://127.0.0.1:8101/api/v2"
# The port of the API the headline rows run on.
HEADLINE_PORT = int(os.environ.get("BENCH_HEADLINE_PORT", "8106"))
API2 = "http://127.0.0.1:8104/api/v2"
RAW = "http://127.0.0.1:8102/"


async def seed_catalog(conn: asyncpg.Connection, users: list[tuple[int, str]]) -> None:
    """A catalog of CATALOG_SERVICES services in CATALOG_CATEGORIES categories (service 1,
    the one `add` uses, among them), with per-user prices: a 10 % discount for half the
    users, 50 custom rates each for ten of them."""
    await conn.execute(
        "INSERT INTO categories (name, position) SELECT 'Category ' || g, g"
        " FROM generate_series(2, $1) g",
        CATALOG_CATEGORIES,
    )
    categories = [r["id"] for r in await conn.fetch("SELECT id FROM categories ORDER BY id")]
    await conn.execute(
        "INSERT INTO services (id, category_id, name, type, rate, min_quantity, max_quantity,"
        " refill, cancel, position)"
        " SELECT g, ($2::bigint[])[1 + g % array_length($2::bigint[], 1)],"
        " 'Service ' || g || ' followers [fast, real]', 'Default', round(0.1 + g * 0.0137, 4),"
        " 10 + g % 90, 10000 + g, g % 3 = 0, g % 2 = 0, g"
        " FROM generate_series(2, $1) g",
        CATALOG_SERVICES,
        categories,
    )
    await conn.execute("SELECT setval('services_id_seq', (SELECT max(id) FROM services))")
    await conn.execute(
        "UPDATE users SET discount_percent = 10 WHERE id = ANY($1::bigint[])",
        [u for u, _ in users[: len(users) // 2]],
    )
    for user_id, _ in users[:10]:
        await conn.execute(
            "INSERT INTO user_rates (user_id, service_id, rate)"
            " SELECT $1, g, 0.05 FROM generate_series(2, 51) g",
            user_id,
        )


async def seed_orders(conn: asyncpg.Connection, user_id: int, count: int, status: str) -> list[int]:
    """`count` orders of one user on service 1 that were never sent (manual), in `status`."""
    rows = await conn.fetch(
        "INSERT INTO orders (user_id, service_id, type, link, link_normalized, quantity, rate,"
        " charge, status, upstream_state, finished_at)"
        " SELECT $1, 1, 'Default', 'https://seed.example/' || $3 || g,"
        " 'seed.example/' || $3 || g, 1000, 0.9, 0.9, $3, 'manual',"
        " CASE WHEN $3 = 'Completed' THEN now() END"
        " FROM generate_series(1, $2) g RETURNING id",
        user_id,
        count,
        status,
    )
    return [r["id"] for r in rows]


async def probe_add_tail(env: dict[str, str], add_body: str, keys: list[str]) -> dict[str, Any]:
    """`add` again on one probed API process (bench/probe.py): GC pauses, event-loop stalls
    and pool waits counted during the load, beside its latency."""
    out = ROOT / "bench" / ".probe.tmp"
    probed = start(
        "bench.probe:create_app", 8105, {**env, "BENCH_PROBE_FILE": str(out)}, factory=True
    )
    try:
        url = "http://127.0.0.1:8105/api/v2"
        await wait_up("http://127.0.0.1:8105/healthz")
        await wrk(url, add_body.replace("{n}", "pw{n}"), keys, seconds=2)
        probed.send_signal(signal.SIGUSR1)
        load = await wrk(url, add_body.replace("{n}", "p{n}"), keys, server_pid=probed.pid)
    finally:
        probed.terminate()
        probed.wait()
    found: dict[str, Any] = json.loads(out.read_text())
    out.unlink()
    return {"load": load, **found}


def bench_env() -> dict[str, str]:
    """The API's environment for the bench: rate limits and the request log off (one
    address and a few keys send far more than any reseller would)."""
    return {
        "DATABASE_URL": DSN,
        "REDIS_URL": REDIS,
        "LOG_LEVEL": "WARNING",
        "BENCH_DSN": DSN,
        "SECRET_KEY": BENCH_SECRET_KEY,
        "BENCH_BYTES_FILE": str(ROOT / "bench" / ".services.tmp"),
        "BENCH_HEADERS_FILE": str(ROOT / "bench" / ".services-headers.tmp"),
        "RATE_LIMIT_PER_IP": "0",
        "RATE_LIMIT_PER_KEY": "0",
    }


def ratio(a: dict[str, float], b: dict[str, float]) -> float:
    return round(a["rps"] / b["rps"], 3)


async def bench_api(results: dict[str, Any]) -> None:
    if shutil.which("wrk") is None:
        raise SystemExit("make bench needs wrk (apt-get install wrk)")
    env = bench_env()
    users = await seed(200)
    keys = [k for _, k in users]
    conn = await asyncpg.connect(DSN)
    await conn.execute("UPDATE services SET refill = true WHERE id = 1")
    await seed_catalog(conn, users)
    # Unsent orders to cancel, spread over the users (one user's cancels would queue on
    # its balance row): each request names a key and one of that key's orders.
    per_user = int(30 * SECONDS) + 10
    owned = [(key, await seed_orders(conn, user_id, per_user, "Pending")) for user_id, key in users]
    cancel_ids = [f"key={key}&order={ids[i]}" for i in range(per_user) for key, ids in owned]
    # Completed orders to refill, one refill each (a second would be refused), spread alike.
    finished = [
        (key, await seed_orders(conn, user_id, per_user, "Completed")) for user_id, key in users
    ]
    refill_ids = [f"key={key}&order={ids[i]}" for i in range(per_user) for key, ids in finished]
    done = await seed_orders(conn, users[0][0], 1, "Completed")
    refill_id = await conn.fetchval(
        "INSERT INTO refills (order_id, user_id, upstream_state) VALUES ($1, $2, 'manual')"
        " RETURNING id",
        done[0],
        users[0][0],
    )
    await conn.execute("ANALYZE")
    api = start("app.main:create_app", 8101, env, factory=True)
    raw = start("bench.baseline:app", 8102, env)
    profiler: subprocess.Popen[bytes] | None = None
    api2: subprocess.Popen[bytes] | None = None
    try:
        await wait_up("http://127.0.0.1:8101/healthz")
        await wait_up(RAW)
        add_body = "key={key}&action=add&service=1&quantity=1000&link=https://instagram.com/{n}"
        raw_body = "user={key}&link=https://raw.example/{n}"
        user_ids = [str(u) for u, _ in users]
        results["load_generator"] = "wrk, 2 threads, Lua-built bodies"
        # Warm-up (not measured): connections opened, every key seen once.
        await wrk(API, add_body.replace("{n}", "w{n}"), keys, seconds=2)
        await wrk(RAW, raw_body.replace("{n}", "w{n}"), user_ids, seconds=2)
        await wrk(RAW + "add-statement", add_body.replace("{n}", "ws{n}"), keys, seconds=1)
        if PROFILE:
            profiler = start_profiler(api.pid, ROOT / "bench" / "profile-api.txt")
        results["add_many_users"] = await wrk(API, add_body, keys, server_pid=api.pid)
        results["raw_baseline"] = await wrk(RAW, raw_body, user_ids, server_pid=raw.pid)
        results["add_statement_baseline"] = await wrk(
            RAW + "add-statement", add_body.replace("{n}", "s{n}"), keys, server_pid=raw.pid
        )
        results["add_one_user"] = await wrk(
            API, add_body.replace("{n}", "one{n}"), keys[:1], server_pid=api.pid
        )
        # `add` with a request id (SPEC §4) against the same load without, back to back in
        # this run: the id costs one more column and one more unique index entry.
        pair = max(2.0, SECONDS / 2)
        results["add_pair_plain"] = await wrk(
            API, add_body.replace("{n}", "pp{n}"), keys, seconds=pair, server_pid=api.pid
        )
        results["add_with_request_id"] = await wrk(
            API,
            add_body.replace("{n}", "pr{n}") + "&request_id=bench.{n}",
            keys,
            seconds=pair,
            server_pid=api.pid,
        )
        results["add_request_id_vs_plain"] = ratio(
            results["add_with_request_id"], results["add_pair_plain"]
        )
        if profiler is not None:
            profiler.send_signal(2)
            profiler.wait()
            profiler = None
        # Orders placed by the measured API loads (not warm-ups, not the baselines').
        results["orders_created"] = await conn.fetchval(
            "SELECT count(*) FROM orders WHERE link ~ '^https://instagram.com/(one)?[0-9]'"
        )
        results["statement_baseline_orders"] = await conn.fetchval(
            "SELECT count(*) FROM orders WHERE link LIKE 'https://instagram.com/s%'"
        )
        results["api_add_requests"] = (
            results["add_many_users"]["requests"] + results["add_one_user"]["requests"]
        )
        key = users[0][1]
        ids = [
            r["id"]
            for r in await conn.fetch(
                "SELECT id FROM orders WHERE user_id = $1 AND link LIKE 'https://instagram.com/%'"
                " ORDER BY id LIMIT 100",
                users[0][0],
            )
        ]
        orders = ",".join(map(str, ids))
        results["status_100_ids"] = await wrk(
            API, f"key={{key}}&action=status&orders={orders}", [key], server_pid=api.pid
        )
        results["status_single"] = await wrk(
            API, f"key={{key}}&action=status&order={ids[0]}", [key], server_pid=api.pid
        )
        results["balance"] = await wrk(API, "key={key}&action=balance", keys, server_pid=api.pid)
        results["refill_status"] = await wrk(
            API, f"key={{key}}&action=refill_status&refill={refill_id}", [key], server_pid=api.pid
        )
        results["cancel_unsent"] = await wrk(
            API, "{id}&action=cancel", keys, server_pid=api.pid, ids=cancel_ids
        )
        results["orders_withdrawn"] = await conn.fetchval(
            "SELECT count(*) FROM orders WHERE upstream_state = 'withdrawn'"
        )
        results["refill"] = await wrk(
            API, "{id}&action=refill", keys, server_pid=api.pid, ids=refill_ids
        )
        results["refills_made"] = await conn.fetchval("SELECT count(*) FROM refills") - 1
        asked = await conn.fetchrow(
            "SELECT user_id, request_id FROM orders WHERE request_id IS NOT NULL LIMIT 1"
        )
        key_of = dict(users)
        results["status_by_request_id"] = await wrk(
            API,
            f"key={{key}}&action=status&request_id={asked['request_id']}",
            [key_of[asked["user_id"]]],
            server_pid=api.pid,
        )
        results["capabilities"] = await wrk(
            API, "key={key}&action=capabilities", keys, server_pid=api.pid
        )
        # services: every key (a few shared renderings, ten users with their own prices),
        # beside a bare app serving one such answer's bytes.
        async with httpx.AsyncClient(timeout=60) as client:
            started = time.perf_counter()
            answer = await client.post(API, data={"key": users[50][1], "action": "services"})
            results["services_first_render_ms"] = round(1000 * (time.perf_counter() - started))
            for other in keys:  # every pricing rendered once (not measured)
                await client.post(API, data={"key": other, "action": "services"})
        (ROOT / "bench" / ".services.tmp").write_bytes(answer.content)
        (ROOT / "bench" / ".services-headers.tmp").write_text(
            json.dumps(list(answer.headers.multi_items()))
        )
        results["services_catalog"] = {
            "services": len(answer.json()),
            "categories": CATALOG_CATEGORIES,
            "bytes": len(answer.content),
        }
        # `services` beside the bare bytes app, in SERVICES_ROUNDS alternating pairs (the
        # order flips each round): one pair's ratio moves by ±30 % on a shared 2-core
        # machine; the median pair is reported, with every round's ratio.
        rounds: list[tuple[float, dict[str, float], dict[str, float]]] = []

        async def ours_once() -> dict[str, float]:
            return await wrk(API, "key={key}&action=services", keys, server_pid=api.pid)

        async def bare_once() -> dict[str, float]:
            return await wrk(RAW + "bytes", "x={n}", keys, server_pid=raw.pid)

        for turn in range(SERVICES_ROUNDS):
            if turn % 2 == 0:
                ours = await ours_once()
                bare = await bare_once()
            else:
                bare = await bare_once()
                ours = await ours_once()
            rounds.append((ratio(ours, bare), ours, bare))
        rounds_by_ratio = sorted(rounds, key=lambda r: r[0])
        median = rounds_by_ratio[len(rounds) // 2]
        results["services"], results["services_bytes_baseline"] = median[1], median[2]
        results["services_vs_bytes_rounds"] = [r[0] for r in rounds]
        # A client that kept the ETag of its last sync: 304, no body.
        results["services_not_modified"] = await wrk(
            API,
            "key={key}&action=services",
            [users[50][1]],
            server_pid=api.pid,
            if_none_match=answer.headers["etag"],
        )
        (ROOT / "bench" / ".services.tmp").unlink()
        (ROOT / "bench" / ".services-headers.tmp").unlink()
        results["api_rss_peak_mb"] = round(rss_peak_mb(api.pid), 1)
        api.terminate()
        api.wait()
        # The same API in two processes.
        # As `smm-panel serve --workers 2` runs them: metrics shared in one directory.
        metrics_dir = tempfile.mkdtemp(prefix="bench-metrics-")
        api2 = start(
            "app.main:create_app",
            8104,
            {**env, "PROMETHEUS_MULTIPROC_DIR": metrics_dir},
            factory=True,
            workers=2,
        )
        await wait_up("http://127.0.0.1:8104/healthz")
        await wrk(API2, add_body.replace("{n}", "w2{n}"), keys, seconds=2)
        results["add_many_users_2_workers"] = await wrk(
            API2, add_body.replace("{n}", "two{n}"), keys, server_pid=api2.pid
        )
        results["add_one_user_2_workers"] = await wrk(
            API2, add_body.replace("{n}", "onetwo{n}"), keys[:1], server_pid=api2.pid
        )
        results["status_100_ids_2_workers"] = await wrk(
            API2, f"key={{key}}&action=status&orders={orders}", [key], server_pid=api2.pid
        )
        api2.terminate()
        api2.wait()
        shutil.rmtree(metrics_dir, ignore_errors=True)
        token = await session_token(users[1][0])
        await bench_defaults(results, env, keys, orders, token, ids[0])
        if PGBOUNCER:
            await bench_pgbouncer(results, env, keys, orders)
        if PROBE:
            results["add_tail_probe"] = await probe_add_tail(env, add_body, keys)
        raw_rps = results["raw_baseline"]
        results["vs_raw_baseline"] = {
            name: ratio(results[name], raw_rps)
            for name in (
                "add_many_users",
                "add_one_user",
                "status_single",
                "balance",
                "refill_status",
                "cancel_unsent",
                "refill",
                "status_by_request_id",
                "capabilities",
                "services_not_modified",
                "add_many_users_2_workers",
            )
        }
        results["add_vs_baseline"] = results["vs_raw_baseline"]["add_many_users"]
        results["add_vs_add_statement"] = ratio(
            results["add_many_users"], results["add_statement_baseline"]
        )
        results["services_vs_bytes_baseline"] = median[0]
    finally:
        await conn.close()
        if profiler is not None:
            profiler.send_signal(2)
            profiler.wait()
        for process in (api, raw, api2):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait()


ADD_BODY = "key={key}&action=add&service=1&quantity=1000&link=https://instagram.com/{n}"
HEADLINE = ("add_many_users", "add_one_user", "status_100_ids", "services")
# The rows of `BENCH_ONLY=headline` (and of the defaults' runs of the full bench).
HEADLINE_ROWS = (
    "add_many_users",
    "add_one_user",
    "mass_order_300_lines",
    "balance",
    "services",
    "status_single",
    "status_100_ids",
)
MASS_LINES = 300
# BENCH_ROWS=row,row: only these headline rows (with BENCH_ONLY=headline, e.g. to profile one).
ROWS = os.environ["BENCH_ROWS"].split(",") if os.environ.get("BENCH_ROWS") else None
# Mass orders in flight at once (each is 300 orders: a handful is a heavy load).
MASS_CONNECTIONS = 4


async def mass_orders(
    url: str, token: str, tag: str, server_pid: int, seconds: float = SECONDS
) -> dict[str, float]:
    """/client/v1 mass orders of MASS_LINES lines each (every link new), MASS_CONNECTIONS
    at a time for `seconds`: req/s, p50/p99 and the server's CPU per request."""
    cpu_before = tree_cpu_seconds(server_pid)
    latencies: list[float] = []
    errors = 0
    deadline = time.monotonic() + seconds
    started = time.monotonic()

    async def one_client(client: httpx.AsyncClient, worker: int) -> None:
        nonlocal errors
        round_ = 0
        while time.monotonic() < deadline:
            round_ += 1
            lines = "\n".join(
                f"1|https://instagram.com/{tag}{worker}_{round_}_{i}|1000"
                for i in range(MASS_LINES)
            )
            sent = time.perf_counter()
            answer = await client.post(
                f"{url}/client/v1/orders/mass",
                json={"lines": lines},
                headers={"Authorization": f"Bearer {token}"},
            )
            latencies.append(time.perf_counter() - sent)
            placed = [r for r in answer.json().get("results", []) if r.get("order")]
            if answer.status_code != 200 or len(placed) != MASS_LINES:
                errors += 1

    async with httpx.AsyncClient(timeout=120) as client:
        await asyncio.gather(*(one_client(client, w) for w in range(MASS_CONNECTIONS)))
    elapsed = time.monotonic() - started
    latencies.sort()
    used = tree_cpu_seconds(server_pid) - cpu_before
    return {
        "requests": len(latencies),
        "seconds": round(elapsed, 3),
        "rps": round(len(latencies) / elapsed, 2),
        "lines_per_s": round(MASS_LINES * len(latencies) / elapsed, 1),
        "p50_ms": round(1000 * latencies[len(latencies) // 2], 1),
        "p99_ms": round(1000 * latencies[min(len(latencies) - 1, len(latencies) * 99 // 100)], 1),
        "http_errors": errors,
        "server_cpu_ms_per_request": round(1000 * used / max(1, len(latencies)), 3),
    }


async def profiled(
    pid: int, name: str, run: Callable[[], Awaitable[dict[str, float]]]
) -> dict[str, float]:
    """`run`, sampled by py-spy when BENCH_PROFILE=1 (bench/profile-`name`.txt)."""
    if not PROFILE:
        return await run()
    spy = start_profiler(pid, ROOT / "bench" / f"profile-{name}.txt")
    try:
        return await run()
    finally:
        spy.send_signal(signal.SIGINT)
        spy.wait()


async def headline(
    url: str,
    server: subprocess.Popen[bytes],
    keys: list[str],
    orders: str,
    tag: str,
    token: str | None = None,
    single: int | None = None,
) -> dict[str, Any]:
    """The headline loads on the API at `url` (one process): `add` for many users and for
    one, multi-`status` of 100 ids, `services` (every pricing rendered first, unmeasured);
    with a session `token`, a single `status` (of `single`), `balance` and mass orders of
    MASS_LINES lines too. `tag` keeps each load's links apart from every other load's."""
    api = f"{url}/api/v2"
    await wait_up(f"{url}/healthz")
    add = ADD_BODY.replace("{n}", f"{tag}{{n}}")
    warm_up = await wrk(api, add.replace("{n}", "w{n}"), keys, seconds=2)
    async with httpx.AsyncClient(timeout=60) as client:
        for key in keys:
            await client.post(api, data={"key": key, "action": "services"})
    pid = server.pid
    runs: dict[str, Callable[[], Awaitable[dict[str, float]]]] = {
        "add_many_users": lambda: wrk(api, add.replace("{n}", "m{n}"), keys, server_pid=pid),
        "add_one_user": lambda: wrk(api, add.replace("{n}", "o{n}"), keys[:1], server_pid=pid),
        "status_100_ids": lambda: wrk(
            api, f"key={{key}}&action=status&orders={orders}", keys[:1], server_pid=pid
        ),
        "services": lambda: wrk(api, "key={key}&action=services", keys, server_pid=pid),
    }
    if token is not None and single is not None:
        runs["status_single"] = lambda: wrk(
            api, f"key={{key}}&action=status&order={single}", keys[:1], server_pid=pid
        )
        runs["balance"] = lambda: wrk(api, "key={key}&action=balance", keys, server_pid=pid)
        runs["mass_order_300_lines"] = lambda: mass_orders(url, token, tag, pid)
    loads: dict[str, Any] = {"unmeasured": {"requests": warm_up["requests"] + len(keys)}}
    for name, run in runs.items():
        if ROWS is None or name in ROWS:
            loads[name] = await profiled(pid, f"{tag}-{name}", run)
    if "add_one_user" in loads and "add_many_users" in loads:
        loads["add_one_vs_many"] = ratio(loads["add_one_user"], loads["add_many_users"])
    return loads


def headline_row(load: dict[str, Any]) -> dict[str, float]:
    return {
        "rps": load["rps"],
        "p99_ms": load.get("p99_ms", 0.0),
        "cpu_ms_per_request": load["server_cpu_ms_per_request"],
    }


def request_log_lines(log: Path, loads: dict[str, Any]) -> dict[str, Any]:
    """The API's log lines about its /api/v2 requests, by logger (the panel's request line,
    uvicorn's access line), beside the requests the loads sent (those in flight when a load
    ends are served and logged but not counted by wrk: up to 32 per load)."""
    by_logger: dict[str, int] = {}
    for line in log.read_text().splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("route") == "/api/v2" or "/api/v2" in str(entry.get("msg")):
            by_logger[entry["logger"]] = by_logger.get(entry["logger"], 0) + 1
    sent = sum(
        int(load["requests"])
        for name, load in loads.items()
        if isinstance(load, dict) and name != "mass_order_300_lines"
    )
    return {
        "lines_by_logger": by_logger,
        "requests_sent": sent,
        "lines_per_request": round(sum(by_logger.values()) / max(1, sent), 3),
    }


async def session_token(user_id: int) -> str:
    """A /client/v1 session of the user (for the mass orders)."""
    from datetime import timedelta

    from app.customers import service as customers
    from app.db import Database

    db = Database(DSN, pool_size=1, max_overflow=0)
    async with db.transaction() as session:
        opened = await customers.open_session(
            session, user_id, timedelta(days=1), ip=None, user_agent="bench"
        )
    await db.dispose()
    return opened.token


async def defaults_and_log_off(
    env: dict[str, str], keys: list[str], orders: str, token: str, single: int
) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """The headline loads on one API process with the defaults on (request log, rate
    limits) and with only the request log off: each run's loads, and the defaults' log
    lines per request."""
    log = ROOT / "bench" / ".api-log.tmp"
    runs: dict[str, dict[str, Any]] = {}
    configs = {
        "defaults": ({**env, **DEFAULTS, **LIMITS_ON}, log),
        "log_off": ({**env, **LIMITS_ON, "LOG_REQUESTS": "false"}, None),
    }
    for name, (server_env, log_to) in configs.items():
        server = start("app.main:create_app", HEADLINE_PORT, server_env, factory=True, log=log_to)
        try:
            runs[name] = await headline(
                f"http://127.0.0.1:{HEADLINE_PORT}", server, keys, orders, name, token, single
            )
        finally:
            server.terminate()
            server.wait()
    lines = request_log_lines(log, runs["defaults"])
    log.unlink()
    return runs, lines


async def bench_defaults(
    results: dict[str, Any],
    env: dict[str, str],
    keys: list[str],
    orders: str,
    token: str,
    single: int,
) -> None:
    """The headline loads with the defaults on (request log, rate limits), and with only
    the request log off, beside the main figures (both off): the cost of each default."""
    runs, results["defaults_request_log"] = await defaults_and_log_off(
        env, keys, orders, token, single
    )
    results["headline"] = {
        row: {
            "defaults": headline_row(runs["defaults"][row]),
            "log_off": headline_row(runs["log_off"][row]),
            **({"log_and_limits_off": headline_row(results[row])} if row in results else {}),
        }
        for row in HEADLINE_ROWS
        if row in runs["defaults"]
    }
    results["headline_add_one_vs_many"] = {
        name: run["add_one_vs_many"] for name, run in runs.items() if "add_one_vs_many" in run
    }
    print_headline(results)


# The targets of the headline rows (one API process, 32 connections, defaults on).
CPU_TARGET_MS = 0.35
P99_TARGET_MS = 50.0
ONE_VS_MANY_TARGET = 0.9
CPU_EXEMPT = ("services", "status_100_ids", "mass_order_300_lines")


def print_headline(results: dict[str, Any]) -> None:
    """The headline rows as a table on stderr, each beside its targets."""
    out = sys.stderr
    print("\nheadline, one API process (req/s, p99 ms, API CPU ms per request)", file=out)
    print(f"{'load':<24}{'defaults on':>28}{'request log off':>28}  targets", file=out)
    for row, configs in results["headline"].items():
        cells = []
        for name in ("defaults", "log_off"):
            f = configs[name]
            cells.append(f"{f['rps']:>9,.1f} {f['p99_ms']:>7.1f} {f['cpu_ms_per_request']:>7.3f}")
        d = configs["defaults"]
        checks = []
        if row not in CPU_EXEMPT:
            cpu_ok = d["cpu_ms_per_request"] <= CPU_TARGET_MS
            checks.append(f"CPU <= {CPU_TARGET_MS} {'ok' if cpu_ok else 'MISSED'}")
        if row != "mass_order_300_lines":
            checks.append(
                f"p99 < {P99_TARGET_MS:.0f} {'ok' if d['p99_ms'] < P99_TARGET_MS else 'MISSED'}"
            )
        print(f"{row:<24}{cells[0]:>28}{cells[1]:>28}  {', '.join(checks)}", file=out)
    for name, value in results["headline_add_one_vs_many"].items():
        verdict = "ok" if value >= ONE_VS_MANY_TARGET else "MISSED"
        print(f"add one user / many users ({name}): {value} (target >= 0.9: {verdict})", file=out)


async def bench_headline(results: dict[str, Any]) -> None:
    """`BENCH_ONLY=headline`: only the headline rows, defaults on and request log off."""
    if shutil.which("wrk") is None:
        raise SystemExit("make bench needs wrk (apt-get install wrk)")
    users = await seed(200)
    keys = [k for _, k in users]
    conn = await asyncpg.connect(DSN)
    try:
        await seed_catalog(conn, users)
        ids = await seed_orders(conn, users[0][0], 100, "In progress")
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    token = await session_token(users[1][0])
    await bench_defaults(results, bench_env(), keys, ",".join(map(str, ids)), token, ids[0])


async def bench_pgbouncer(
    results: dict[str, Any], env: dict[str, str], keys: list[str], orders: str
) -> None:
    """The headline loads on an API whose database connections go through PgBouncer in
    transaction mode (the main figures' settings otherwise), beside the direct figures."""
    from bench.pgbouncer import pgbouncer, through

    with (
        tempfile.TemporaryDirectory(prefix="bench-pgbouncer-") as directory,
        pgbouncer(DSN, Path(directory), pool_size=PGBOUNCER_POOL_SIZE) as port,
    ):
        pooled = {**env, "DATABASE_URL": through(DSN, port), "DB_POOLER": "transaction"}
        server = start("app.main:create_app", 8107, pooled, factory=True)
        try:
            loads = await headline("http://127.0.0.1:8107", server, keys, orders, "pgb")
        finally:
            server.terminate()
            server.wait()
    results["through_pgbouncer"] = {
        "pool_size": PGBOUNCER_POOL_SIZE,
        **{
            row: {
                "pgbouncer": headline_row(loads[row]),
                "direct": headline_row(results[row]),
                "ratio": ratio(loads[row], results[row]),
            }
            for row in HEADLINE
        },
    }


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
        database_url=DSN,
        redis_url=REDIS,
        queue_name="bench:queue",
        secret_key=BENCH_SECRET_KEY,
        provider_allow_private=True,  # the instant provider listens on 127.0.0.1
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
    http = build_http_client(allow_private=True)
    ctx: dict[str, Any] = {"settings": settings, "db": db, "http": http}
    worker = jobs.build_worker(settings, burst=True, ctx=ctx)
    from app.jobs import JobQueue

    queue = await JobQueue.connect(REDIS, settings.arq_queue, settings.redis_namespace)
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
    if "headline" in PARTS:
        await bench_headline(results)
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
