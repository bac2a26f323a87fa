"""What API v2 runs with: the shared services (app/http/context.py) and its hot path, the
one object holding its caches (hot.py). The application's context (app/context.py) is
one of these."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import Request

from app.api_v2.hot import HotPath
from app.http.context import Services


@dataclass
class ApiV2Context(Services):
    hot: HotPath = field(init=False)  # single-statement actions and their caches

    def __post_init__(self) -> None:
        self.hot = HotPath(self.db)


def get_context(request: Request) -> ApiV2Context:
    ctx: ApiV2Context = request.app.state.ctx
    return ctx
