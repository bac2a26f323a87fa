"""The raw baseline: the minimal asyncpg transaction of an `add` behind a bare ASGI app
(conditional balance update + order insert + ledger insert), no framework, no validation."""

from __future__ import annotations

import json
import os
from typing import Any
from urllib.parse import parse_qs

import asyncpg

DSN = os.environ["BENCH_DSN"]
state: dict[str, Any] = {}

ADD = """
WITH debit AS (
  UPDATE users SET balance = balance - $2 WHERE id = $1 AND balance >= $2 RETURNING balance
)
SELECT balance FROM debit
"""


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                state["pool"] = await asyncpg.create_pool(DSN, min_size=10, max_size=20)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await state["pool"].close()
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    fields = {k: v[0] for k, v in parse_qs(body.decode()).items()}
    if "user" not in fields:  # a liveness probe
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})
        return
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
    payload = json.dumps({"order": order_id}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": payload})
