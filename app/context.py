"""Process-wide resources shared by requests: database, job queue, settings."""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx
from fastapi import Request

from app.db import Database
from app.jobs import JobQueue
from app.orders.fast import HotPath
from app.settings import Settings


@dataclass
class AppContext:
    settings: Settings
    db: Database
    jobs: JobQueue
    http: httpx.AsyncClient  # the one shared client for upstream calls made by the API
    hot: HotPath = field(init=False)  # single-statement add and status

    def __post_init__(self) -> None:
        self.hot = HotPath(self.db)


def get_context(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx
