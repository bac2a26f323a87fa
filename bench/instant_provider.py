"""A provider that answers instantly: `add` returns the next id, multi-status reports every
order Completed. It isolates the panel's own relay and sync costs."""

from __future__ import annotations

import itertools
import json
from typing import Any
from urllib.parse import parse_qs

from bench.asgi import read_body

ids = itertools.count(1)


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            kind = message["type"].replace("lifespan.", "")
            await send({"type": f"lifespan.{kind}.complete"})
            if kind == "shutdown":
                return
    body = await read_body(receive)
    fields = {k: v[0] for k, v in parse_qs(body.decode()).items()}
    action = fields.get("action")
    answer: Any
    if action == "add":
        answer = {"order": next(ids)}
    elif action == "status":
        answer = {
            i: {
                "charge": "0.1",
                "start_count": "10",
                "status": "Completed",
                "remains": "0",
                "currency": "USD",
            }
            for i in fields.get("orders", "").split(",")
            if i
        }
    else:
        answer = {"balance": "1000000", "currency": "USD"}
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": json.dumps(answer).encode()})
