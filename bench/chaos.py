"""`make chaos`: faults under load, then proof that nothing was lost or doubled.

Runs the API and the worker as real processes against the local PostgreSQL and Redis and
the sandbox provider, places orders and cancels for CHAOS_SECONDS while injecting: SIGKILL
of the API and of the worker (restarted), a PostgreSQL restart, a Redis restart, and
provider timeouts, 500s, garbage and refusals. Then it lets the panel settle and checks:
every acknowledged order exists, none was created twice upstream, no refund happened twice,
no attempt is left without an outcome, and the ledger invariants hold.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from app import migrate
from bench.__main__ import wait_up

ROOT = Path(__file__).resolve().parent.parent
BASE = os.environ.get("CHAOS_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
DB = "smm_chaos"
DSN = BASE.rsplit("/", 1)[0] + "/" + DB
REDIS = "redis://127.0.0.1:6379/13"
SECONDS = float(os.environ.get("CHAOS_SECONDS", "60"))
API, SANDBOX = 8201, 8202
# Strong, as serve and worker demand; fresh per run (the chaos database is made anew).
ADMIN_TOKEN = secrets.token_urlsafe(32)
ENV = {
    **os.environ,
    "DATABASE_URL": DSN,
    "REDIS_URL": REDIS,
    "QUEUE_NAME": "chaos:queue",
    "ADMIN_TOKEN": ADMIN_TOKEN,
    "SECRET_KEY": secrets.token_urlsafe(32),
    "LOG_LEVEL": "ERROR",
    "RATE_LIMIT_PER_IP": "0",
    "RATE_LIMIT_PER_KEY": "0",
    "PROVIDER_ALLOW_PRIVATE": "true",  # the sandbox listens on 127.0.0.1
    "PROVIDER_READ_TIMEOUT": "2",
    "RELAY_RETRY_BASE_SECONDS": "1",
    "SENDING_STALE_SECONDS": "10",
    "STATUS_SYNC_SECONDS": "5",
}
SANDBOX_CONFIG = {
    "keys": {"sandbox-key": 1000000},
    "seconds_to_start": 1,
    "seconds_to_complete": 4,
    "services": [
        {
            "id": 1,
            "name": "Followers",
            "rate": "0.40",
            "min": 10,
            "max": 100000,
            "behaviour": "complete",
            "timeout_seconds": 5,
        }
    ],
}
BEHAVIOURS = [
    "complete",
    "complete",
    "partial",
    "cancel",
    "timeout",
    "http500",
    "malformed",
    "reject",
]


class Processes:
    def __init__(self) -> None:
        self.api: subprocess.Popen[bytes] | None = None
        self.worker: subprocess.Popen[bytes] | None = None

    def start_api(self) -> None:
        self.api = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "app.main:create_app",
                "--factory",
                "--port",
                str(API),
                "--no-access-log",
                "--log-level",
                "error",
            ],
            cwd=ROOT,
            env=ENV,
        )

    def start_worker(self) -> None:
        self.worker = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "worker"], cwd=ROOT, env=ENV
        )

    def stop(self) -> None:
        for process in (self.api, self.worker):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=30)


def sh(*args: str) -> None:
    subprocess.run(args, check=False, capture_output=True)


def restart_postgres() -> None:
    version = sorted(os.listdir("/etc/postgresql"))[0]
    sh("pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart")


def restart_redis() -> None:
    sh("redis-cli", "-p", "6379", "shutdown", "nosave")
    time.sleep(1)
    sh(
        "redis-server",
        "--daemonize",
        "yes",
        "--bind",
        "127.0.0.1",
        "--port",
        "6379",
        "--save",
        "",
        "--appendonly",
        "no",
    )


def start_sandbox(config: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "app.cli",
            "sandbox",
            "--port",
            str(SANDBOX),
            "--config",
            str(config),
        ],
        cwd=ROOT,
        env=ENV,
    )


async def main() -> None:
    config = ROOT / "bench" / ".chaos-sandbox.json"
    config.write_text(json.dumps(SANDBOX_CONFIG))
    sandbox = start_sandbox(config)
    procs = Processes()
    injected: list[str] = []
    acked: list[int] = []
    unavailable = 0
    try:
        admin = await asyncpg.connect(BASE)
        await admin.execute(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{DB}"')
        await admin.close()
        await asyncio.to_thread(migrate.upgrade, DSN)
        procs.start_api()
        await wait_up(f"http://127.0.0.1:{API}/healthz")
        await wait_up(f"http://127.0.0.1:{SANDBOX}/sandbox/stats")
        key = await prepare_catalog()
        procs.start_worker()
        deadline = time.monotonic() + SECONDS
        counter = 0

        async def load() -> None:
            nonlocal counter, unavailable
            async with httpx.AsyncClient(timeout=10) as client:
                while time.monotonic() < deadline:
                    counter += 1
                    try:
                        if random.random() < 0.15 and acked:
                            await client.post(
                                f"http://127.0.0.1:{API}/api/v2",
                                data={
                                    "key": key,
                                    "action": "cancel",
                                    "orders": str(random.choice(acked)),
                                },
                            )
                            continue
                        response = await client.post(
                            f"http://127.0.0.1:{API}/api/v2",
                            data={
                                "key": key,
                                "action": "add",
                                "service": "1",
                                "quantity": "100",
                                "link": f"https://instagram.com/chaos/{counter}",
                            },
                        )
                        body = response.json()
                        if "order" in body:
                            acked.append(int(body["order"]))
                        else:
                            unavailable += 1
                    except (httpx.TransportError, ValueError):
                        unavailable += 1
                        await asyncio.sleep(0.2)

        async def inject() -> None:
            faults = [
                "kill_api",
                "kill_worker",
                "restart_postgres",
                "restart_redis",
                "provider",
                "provider",
                "provider",
            ]
            while time.monotonic() < deadline - 5:
                await asyncio.sleep(random.uniform(2, 5))
                fault = random.choice(faults)
                if fault == "kill_api" and procs.api:
                    procs.api.send_signal(signal.SIGKILL)
                    procs.api.wait()
                    procs.start_api()
                elif fault == "kill_worker" and procs.worker:
                    procs.worker.send_signal(signal.SIGKILL)
                    procs.worker.wait()
                    procs.start_worker()
                elif fault == "restart_postgres":
                    await asyncio.to_thread(restart_postgres)
                elif fault == "restart_redis":
                    await asyncio.to_thread(restart_redis)
                else:
                    behaviour = random.choice(BEHAVIOURS)
                    fault = f"provider:{behaviour}"
                    async with httpx.AsyncClient() as client:
                        await client.post(
                            f"http://127.0.0.1:{SANDBOX}/sandbox/services/1/behaviour",
                            json={"behaviour": behaviour, "error": "Incorrect link"},
                        )
                injected.append(fault)

        await asyncio.gather(load(), load(), load(), inject())
        # Settle: the provider behaves, the panel catches up and stale attempts go to review.
        async with httpx.AsyncClient() as client:
            await client.post(
                f"http://127.0.0.1:{SANDBOX}/sandbox/services/1/behaviour",
                json={"behaviour": "complete"},
            )
        if procs.api is None or procs.api.poll() is not None:
            procs.start_api()
        if procs.worker is None or procs.worker.poll() is not None:
            procs.start_worker()
        await asyncio.sleep(40)
        summary = await verify(acked)
        summary.update(
            injected=injected,
            acknowledged_orders=len(acked),
            refused_or_unavailable_calls=unavailable,
        )
        print(json.dumps(summary, indent=2))
        if not summary["ok"]:
            sys.exit(1)
    finally:
        procs.stop()
        sandbox.terminate()
        sandbox.wait()
        config.unlink(missing_ok=True)


async def prepare_catalog() -> str:
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{API}",
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        timeout=10,
    ) as c:
        provider = (
            await c.post(
                "/admin/v1/providers",
                json={
                    "name": "sandbox",
                    "url": f"http://127.0.0.1:{SANDBOX}/api/v2",
                    "api_key": "sandbox-key",
                },
            )
        ).json()
        category = (await c.post("/admin/v1/categories", json={"name": "C"})).json()
        await c.post(
            "/admin/v1/services",
            json={
                "category_id": category["id"],
                "name": "Followers",
                "rate": "0.9",
                "min_quantity": 10,
                "max_quantity": 100000,
                "cancel": True,
                "provider_id": provider["id"],
                "provider_service_id": "1",
            },
        )
        user = (
            await c.post(
                "/admin/v1/users", json={"email": "chaos@example.com", "initial_balance": "100000"}
            )
        ).json()
        key: str = user["api_key"]
        return key


async def verify(acked: list[int]) -> dict[str, Any]:
    conn = await asyncpg.connect(DSN)
    existing = {r["id"] for r in await conn.fetch("SELECT id FROM orders")}
    lost = sorted(set(acked) - existing)
    double_refunds = await conn.fetchval(
        "SELECT count(*) FROM (SELECT order_id FROM ledger_entries WHERE kind = 'refund'"
        " GROUP BY order_id HAVING count(*) > 1) t"
    )
    dangling = await conn.fetchval("SELECT count(*) FROM orders WHERE upstream_state = 'sending'")
    by_state = {
        r["upstream_state"]: r["n"]
        for r in await conn.fetch("SELECT upstream_state, count(*) AS n FROM orders GROUP BY 1")
    }
    await conn.close()
    async with httpx.AsyncClient(timeout=30) as client:
        stats = (await client.get(f"http://127.0.0.1:{SANDBOX}/sandbox/stats")).json()
        check = (
            await client.get(
                f"http://127.0.0.1:{API}/admin/v1/ledger/check",
                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            )
        ).json()
    summary = {
        "lost_orders": len(lost),
        "sent_upstream_twice": len(stats["duplicated_links"]),
        "double_refunds": double_refunds,
        "attempts_without_outcome": dangling,
        "ledger_invariants_ok": check["ok"],
        "orders_by_upstream_state": by_state,
    }
    summary["ok"] = (
        not lost
        and not stats["duplicated_links"]
        and double_refunds == 0
        and dangling == 0
        and check["ok"]
    )
    return summary


if __name__ == "__main__":
    asyncio.run(main())
