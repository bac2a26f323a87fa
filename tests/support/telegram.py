"""A local fake of the Telegram Bot API (the methods the panel calls: getMe, getUpdates,
sendMessage), served over real HTTP on loopback: a test makes a chat send the bot a
message and reads what the bot sent. Only the configured token is accepted, as Telegram
answers an unknown one (401, `ok: false`); `failing` makes sendMessage answer 502."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from tests.support.upstream import serve_app

TOKEN = "123456:test-bot-token"
BOT_NAME = "panel_test_bot"


@dataclass
class FakeBotApi:
    url: str = ""
    updates: list[dict[str, Any]] = field(default_factory=list)
    sent: list[dict[str, Any]] = field(default_factory=list)
    failing: bool = False
    next_update: int = 1000

    def say(self, chat_id: int, text: str) -> None:
        """A person in chat `chat_id` sends the bot `text`."""
        self.updates.append(
            {
                "update_id": self.next_update,
                "message": {
                    "message_id": self.next_update,
                    "chat": {"id": chat_id, "type": "private"},
                    "from": {"id": chat_id, "is_bot": False, "first_name": "Reseller"},
                    "text": text,
                },
            }
        )
        self.next_update += 1

    def to(self, chat_id: int) -> list[str]:
        return [str(m["text"]) for m in self.sent if m["chat_id"] == chat_id]

    def app(self) -> FastAPI:
        api = FastAPI()

        @api.post("/bot{token}/{method}")
        async def call(token: str, method: str, request: Request) -> JSONResponse:
            if token != TOKEN:
                return JSONResponse(
                    {"ok": False, "error_code": 401, "description": "Unauthorized"}, 401
                )
            body: dict[str, Any] = await request.json()
            if method == "getMe":
                return ok({"id": 1, "is_bot": True, "username": BOT_NAME})
            if method == "getUpdates":
                offset = int(body.get("offset", 0))
                return ok([u for u in self.updates if u["update_id"] >= offset])
            if method == "sendMessage":
                if self.failing:
                    return JSONResponse({"ok": False, "description": "Bad Gateway"}, 502)
                self.sent.append({"chat_id": body["chat_id"], "text": body["text"]})
                return ok({"message_id": len(self.sent)})
            return JSONResponse({"ok": False, "description": "Not Found"}, 404)

        return api


def ok(result: Any) -> JSONResponse:
    return JSONResponse({"ok": True, "result": result})


@asynccontextmanager
async def fake_bot_api() -> AsyncIterator[FakeBotApi]:
    fake = FakeBotApi()
    async with serve_app(fake.app()) as url:
        fake.url = url
        yield fake
