"""The application's context: the shared services plus the hot-path caches of API v2."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import Request

from app.http.context import Services
from app.orders.hot import HotPath


@dataclass
class AppContext(Services):
    hot: HotPath = field(init=False)  # single-statement add and status

    def __post_init__(self) -> None:
        self.hot = HotPath(self.db)


def get_context(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx
