"""The baselines, behind a bare ASGI app (no framework, no validation), one per path:

- `/`: the minimal asyncpg transaction of an `add` (conditional balance update + order
  insert + ledger insert), three statements on a plain pool;
- `/add-statement`: the exact single statement of the fast `add` (app/orders/sql.py
  `ADD_ORDER`) with the parameters the hot path sends, over the same pool the API uses
  (`Database.driver()`): the true ceiling of that statement;
- `/bytes`: the bytes of the file named by BENCH_BYTES_FILE (a `services` answer), as a
  bare app serves them, with the headers the API sent with them (the file named
  BENCH_HEADERS_FILE, when there is one): the same response, less the work of the API.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import asyncpg

from app.accounts.service import hash_key
from app.db import Database
from app.money import charge_for
from app.orders.models import UP_MANUAL
from app.orders.sql import ADD_ORDER, LOAD_RATE, LOAD_SERVICE
from bench.asgi import read_body

DSN = os.environ["BENCH_DSN"]
SERVICE_ID = int(os.environ.get("BENCH_SERVICE_ID", "1"))
state: dict[str, Any] = {}

ADD = """
WITH debit AS (
  UPDATE users SET balance = balance - $2 WHERE id = $1 AND balance >= $2 RETURNING balance
)
SELECT balance FROM debit
"""


async def _startup() -> None:
    state["pool"] = await asyncpg.create_pool(DSN, min_size=10, max_size=20)
    state["db"] = Database(DSN, pool_size=1, max_overflow=0)
    driver = await state["db"].driver()
    rows = await driver.fetch(
        "SELECT k.key_hash, k.user_id FROM api_keys k WHERE k.revoked_at IS NULL"
    )
    state["users"] = {r["key_hash"]: r["user_id"] for r in rows}
    # Each user's rate (discounts, custom rates), as the hot path caches it.
    state["rates"] = {
        user_id: await driver.fetchval(LOAD_RATE, user_id, SERVICE_ID)
        for user_id in set(state["users"].values())
    }
    service = await driver.fetchrow(LOAD_SERVICE, SERVICE_ID)
    state["version"] = service["row_version"] if service else ""
    state["bytes"] = None


def _headers_of(path: str | None) -> list[tuple[bytes, bytes]]:
    """Headers recorded from an API answer (JSON pairs), less those the server writes and
    those `_send` writes itself."""
    if not path:
        return []
    pairs = json.loads(Path(path).read_text())
    skip = {"date", "server", "content-type", "content-length"}
    return [(n.encode(), v.encode()) for n, v in pairs if n.lower() not in skip]


async def _send(
    send: Any, payload: bytes, status: int = 200, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    # Framed as the API frames its answers (a length, not chunks).
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


async def _raw_add(fields: dict[str, str]) -> bytes:
    user_id, link = int(fields["user"]), fields["link"]
    async with state["pool"].acquire() as conn, conn.transaction():
        balance = await conn.fetchval(ADD, user_id, 0.9)
        order_id = await conn.fetchval(
            "INSERT INTO orders (user_id, service_id, type, link, link_normalized, quantity,"
            " rate, charge, upstream_state) VALUES ($1, 1, 'Default', $2, $2, 1000, 0.9, 0.9,"
            " 'manual') RETURNING id",
            user_id,
            link,
        )
        await conn.execute(
            "INSERT INTO ledger_entries (user_id, kind, amount, balance_after, reason, order_id)"
            " VALUES ($1, 'charge', -0.9, $2, 'bench', $3)",
            user_id,
            balance,
            order_id,
        )
    return json.dumps({"order": order_id}).encode()


async def _statement_add(fields: dict[str, str]) -> bytes:
    digest = hash_key(fields["key"])
    link = fields["link"]
    quantity = int(fields["quantity"])
    user_id = state["users"][digest]
    rate = state["rates"][user_id]
    driver = await state["db"].driver()
    row = await driver.fetchrow(
        ADD_ORDER,
        digest,
        user_id,
        SERVICE_ID,
        state["version"],
        rate,
        charge_for(rate, quantity),
        "Default",
        link,
        link.split("://", 1)[-1],
        quantity,
        None,
        None,
        {},
        UP_MANUAL,
        None,
        None,
        None,  # no request id
        None,
    )
    return json.dumps({"order": row["order_id"]}).encode()


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await _startup()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await state["pool"].close()
                await state["db"].dispose()
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = await read_body(receive)
    path = scope["path"]
    if path == "/bytes":
        if state["bytes"] is None:
            state["bytes"] = Path(os.environ["BENCH_BYTES_FILE"]).read_bytes()  # noqa: ASYNC240 - once
            state["headers"] = _headers_of(os.environ.get("BENCH_HEADERS_FILE"))
        await _send(send, state["bytes"], extra=state["headers"])
        return
    fields = {k: v[0] for k, v in parse_qs(body.decode()).items()}
    if path == "/add-statement" and "key" in fields:
        await _send(send, await _statement_add(fields))
    elif "user" in fields:
        await _send(send, await _raw_add(fields))
    else:  # a liveness probe
        await _send(send, b"ok")
