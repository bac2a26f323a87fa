"""The baselines `make bench` measures the API against (bench/baseline.py) answer as the
API does: the single-statement `add` places a real order with the statement the hot path
sends, and `/bytes` frames a `services` answer as the API frames it, with the API's headers."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from app.context import AppContext
from app.db import driver_url
from app.orders.models import Order
from tests.support.api import MakeService, MakeUser


@pytest.fixture
def baseline(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.setenv("BENCH_DSN", driver_url(database_url))
    monkeypatch.setenv("BENCH_BYTES_FILE", str(tmp_path / "services.json"))
    monkeypatch.setenv("BENCH_HEADERS_FILE", str(tmp_path / "headers.json"))
    return importlib.reload(importlib.import_module("bench.baseline"))


async def test_statement_add_places_an_order_and_bytes_are_framed_by_length(
    baseline: ModuleType,
    ctx: AppContext,
    make_user: MakeUser,
    make_service: MakeService,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    user = await make_user("100")
    monkeypatch.setattr(baseline, "SERVICE_ID", await make_service())
    body = json.dumps([{"service": 1, "name": "x" * 5000}]).encode()
    (tmp_path / "services.json").write_bytes(body)
    sent_by_api = [
        ["date", "Sun, 29 Nov 2026 11:43:28 GMT"],
        ["content-length", str(len(body))],
        ["content-type", "application/json"],
        ["etag", '"c5d88e0035fe80a72c0849ce"'],
        ["x-frame-options", "DENY"],
    ]
    (tmp_path / "headers.json").write_text(json.dumps(sent_by_api))
    await baseline._startup()
    state: dict[str, Any] = baseline.state
    try:
        transport = httpx.ASGITransport(app=baseline.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            placed = await client.post(
                "/add-statement",
                data={"key": user.key, "link": "https://instagram.com/b", "quantity": "1000"},
            )
            assert placed.status_code == 200
            order_id = placed.json()["order"]
            served = await client.post("/bytes", data={"x": "1"})
        assert served.content == body
        assert served.headers["content-length"] == str(len(body))
        # The API's own headers, once each; the server's and the framing are its own.
        assert served.headers["etag"] == '"c5d88e0035fe80a72c0849ce"'
        assert served.headers["x-frame-options"] == "DENY"
        assert served.headers.get_list("content-type") == ["application/json"]
        assert "date" not in served.headers
        async with ctx.db.session() as session:
            order = await session.get(Order, order_id)
            assert order is not None and order.user_id == user.user_id
            assert await session.scalar(select(func.count()).select_from(Order)) == 1
    finally:
        await state["pool"].close()
        await state["db"].dispose()
