"""A provider whose answers a test writes byte for byte: a small real API v2 app over
HTTP, for the shapes a well-behaved sandbox never sends (garbage order ids, an order
named with an error, an upstream id given twice, a Partial without remains)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from urllib.parse import parse_qs

from fastapi import FastAPI, Request, Response
from sqlalchemy import update

from app.context import AppContext
from app.providers.models import Provider
from app.settings import Settings
from tests.support.upstream import register_provider, serve_app

STILL_RUNNING = '{"status": "In progress"}'


@dataclass
class ScriptedProvider:
    """Answers `add` with `add_answer` (HTTP status, raw body) when it is set, else with
    the ids 1, 2, … in turn (a request id seen before answers its first order, as a
    provider taking request ids does); answers `status` with the raw JSON of `statuses`
    per provider order id (`STILL_RUNNING` when absent). `adds` holds every `add` as it
    arrived (the key aside)."""

    url: str = ""
    provider_id: int = 0
    add_answer: tuple[int, str] | None = None
    statuses: dict[str, str] = field(default_factory=dict)
    adds: list[dict[str, str]] = field(default_factory=list)
    request_ids: dict[str, int] = field(default_factory=dict)
    created: int = 0

    def add(self, fields: dict[str, str]) -> tuple[int, str]:
        self.adds.append({k: v for k, v in fields.items() if k != "key"})
        if self.add_answer is not None:
            return self.add_answer
        request_id = fields.get("request_id")
        if request_id is not None and request_id in self.request_ids:
            return 200, json.dumps({"order": self.request_ids[request_id]})
        self.created += 1
        if request_id is not None:
            self.request_ids[request_id] = self.created
        return 200, json.dumps({"order": self.created})

    def status(self, fields: dict[str, str]) -> str:
        ids = fields.get("orders", fields.get("order", "")).split(",")
        if "orders" not in fields:
            return self.statuses.get(ids[0], STILL_RUNNING)
        items = [f"{json.dumps(i)}: {self.statuses.get(i, STILL_RUNNING)}" for i in ids]
        return "{" + ", ".join(items) + "}"


def scripted_app(state: ScriptedProvider) -> FastAPI:
    app = FastAPI()

    @app.post("/api/v2")
    async def api(request: Request) -> Response:
        fields = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        action = fields.get("action")
        if action == "add":
            status_code, body = state.add(fields)
            return Response(body, status_code=status_code, media_type="application/json")
        if action == "status":
            return Response(state.status(fields), media_type="application/json")
        return Response('{"error": "Incorrect request"}', media_type="application/json")

    return app


@asynccontextmanager
async def scripted_provider(
    ctx: AppContext, settings: Settings, *, name: str = "Scripted", request_ids: bool = False
) -> AsyncIterator[ScriptedProvider]:
    """Serve a scripted provider and register it (taking request ids when asked)."""
    state = ScriptedProvider()
    async with serve_app(scripted_app(state)) as url:
        state.url = url
        state.provider_id = await register_provider(ctx, settings, url, name=name)
        if request_ids:
            async with ctx.db.transaction() as session:
                await session.execute(
                    update(Provider)
                    .where(Provider.id == state.provider_id)
                    .values(cap_request_id=True, capabilities_pinned=True)
                )
        yield state
