"""The application's context: the shared services every request and job uses
(app/http/context.py) and what a front end keeps for the life of the process (API v2's hot
path with its caches, app/api_v2/context.py). app/main.py builds it once per process; the
front ends each see their own part of it."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from app.api_v2.context import ApiV2Context


@dataclass
class AppContext(ApiV2Context):
    pass


def get_context(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx
