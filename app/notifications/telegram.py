"""The Telegram Bot API over plain httpx: the few methods the panel uses (getMe,
getUpdates, sendMessage) at TELEGRAM_API_URL with TELEGRAM_BOT_TOKEN. The token is part
of every address, so neither addresses nor bodies are ever logged; a failure is a
TelegramError with the method's name and Telegram's description only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

TIMEOUT = httpx.Timeout(10.0, connect=5.0)


class TelegramError(Exception):
    """A call to the Bot API that failed (network, HTTP status or `ok: false`)."""


@dataclass(frozen=True)
class Bot:
    api_url: str  # TELEGRAM_API_URL
    token: str  # TELEGRAM_BOT_TOKEN

    async def call(self, http: httpx.AsyncClient, method: str, **params: Any) -> Any:
        url = f"{self.api_url.rstrip('/')}/bot{self.token}/{method}"
        try:
            response = await http.post(url, json=params, timeout=TIMEOUT)
            answer = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise TelegramError(f"{method}: {type(exc).__name__}") from None
        if not isinstance(answer, dict) or not answer.get("ok"):
            why = answer.get("description") if isinstance(answer, dict) else None
            raise TelegramError(f"{method}: {str(why or response.status_code)[:200]}")
        return answer.get("result")

    async def username(self, http: httpx.AsyncClient) -> str | None:
        found = await self.call(http, "getMe")
        name = found.get("username") if isinstance(found, dict) else None
        return str(name) if name else None

    async def updates(self, http: httpx.AsyncClient, offset: int) -> list[dict[str, Any]]:
        found = await self.call(http, "getUpdates", offset=offset, timeout=0, limit=100)
        return [u for u in found if isinstance(u, dict)] if isinstance(found, list) else []

    async def send(self, http: httpx.AsyncClient, chat_id: int, text: str) -> None:
        await self.call(http, "sendMessage", chat_id=chat_id, text=text)
