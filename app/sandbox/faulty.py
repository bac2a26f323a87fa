"""Providers that misbehave on the wire, for the liveness tests and the soak: real HTTP
servers on loopback, written on raw asyncio streams so that the bytes and their timing
are exactly what is asked.

- `Dribbling`: answers every request with HTTP 200 and a body that arrives one byte every
  `interval` seconds and never ends in time. Each read gets a byte well within any read
  timeout; only a total deadline per call ends it (PROVIDER_TOTAL_TIMEOUT).
- `Garbage`: answers `add` with one answer after another from `GARBAGE_ADDS` (ids that
  are no ids, an order named with an error, a 4xx naming an order, HTML, an id given
  twice) and `status` with reports that cannot be applied (a Partial without remains, an
  unknown status, numbers out of range, an item that is not an object).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Self
from urllib.parse import parse_qs

# (HTTP status, body) answers to `add`, in turn: none of them may be bound to an order.
GARBAGE_ADDS: tuple[tuple[int, str], ...] = (
    (200, '{"order": {"id": 5}}'),
    (200, '{"order": false}'),
    (200, '{"order": -1}'),
    (200, '{"order": "' + "x" * 65 + '"}'),
    (200, '{"order": "12\\u0000"}'),
    (200, '{"order": "7\\u202e1"}'),
    (200, '{"error": "Not enough funds on balance", "order": 5}'),
    (400, '{"order": 99}'),
    (200, "<html>busy</html>"),
    (200, '{"order": 424242}'),  # the same id each time: every later order is a duplicate
)

# Status items that cannot be applied, in turn (keyed by the asked id when sent).
GARBAGE_STATUSES: tuple[str, ...] = (
    '{"status": "Partial", "remains": "Unknown"}',
    '{"status": "Partial"}',
    '{"status": "Fail"}',
    '{"status": "In progress", "remains": 1e40}',
    '"garbage"',
)


async def _read_request(reader: asyncio.StreamReader) -> dict[str, str] | None:
    """One HTTP/1.1 request's form fields; None when the connection ended."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        return None
    length = 0
    for line in head.decode("latin-1").split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip() or 0)
    try:
        body = await reader.readexactly(length) if length else b""
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    return {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}


@dataclass
class FaultyServer:
    """A server on 127.0.0.1; `url` is its API v2 endpoint once started."""

    port: int = 0
    requests: Counter[str] = field(default_factory=Counter)  # by action
    _server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v2"

    async def start(self) -> Self:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while (fields := await _read_request(reader)) is not None:
                self.requests[fields.get("action", "")] += 1
                if not await self.answer(fields, writer):
                    break
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def answer(self, fields: dict[str, str], writer: asyncio.StreamWriter) -> bool:
        """Answer one request; False: the connection is done."""
        raise NotImplementedError

    @staticmethod
    async def send(writer: asyncio.StreamWriter, status: int, body: str) -> None:
        data = body.encode()
        head = (
            f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n\r\n"
        )
        writer.write(head.encode() + data)
        await writer.drain()


@dataclass
class Dribbling(FaultyServer):
    """HTTP 200, then one byte every `interval` seconds of a body `length` bytes long."""

    interval: float = 2.0
    length: int = 100_000

    async def answer(self, fields: dict[str, str], writer: asyncio.StreamWriter) -> bool:
        head = (
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            f"Content-Length: {self.length}\r\n\r\n"
        )
        writer.write(head.encode())
        await writer.drain()
        for _ in range(self.length):
            writer.write(b" ")
            await writer.drain()  # raises once the caller has hung up
            await asyncio.sleep(self.interval)
        return False


@dataclass
class Garbage(FaultyServer):
    """Every answer is one a provider should never send (see the module docstring)."""

    adds: int = 0
    statuses: int = 0

    async def answer(self, fields: dict[str, str], writer: asyncio.StreamWriter) -> bool:
        action = fields.get("action")
        if action == "add":
            status, body = GARBAGE_ADDS[self.adds % len(GARBAGE_ADDS)]
            self.adds += 1
            await self.send(writer, status, body)
        elif action == "status":
            ids = fields.get("orders", fields.get("order", "")).split(",")
            items = []
            for asked in ids:
                items.append(f"{json.dumps(asked)}: {GARBAGE_STATUSES[self.statuses % 5]}")
                self.statuses += 1
            await self.send(writer, 200, "{" + ", ".join(items) + "}")
        else:
            await self.send(writer, 200, '{"error": "Incorrect request"}')
        return True
