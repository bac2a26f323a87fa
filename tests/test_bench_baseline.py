"""The baselines `make bench` measures the API against (bench/baseline.py) answer as the
API does: the single-statement `add` places a real order with the statement the hot path
sends, and `/bytes` frames a `services` answer as the API frames it."""

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
        async with ctx.db.session() as session:
            order = await session.get(Order, order_id)
            assert order is not None and order.user_id == user.user_id
            assert await session.scalar(select(func.count()).select_from(Order)) == 1
    finally:
        await state["pool"].close()
        await state["db"].dispose()
