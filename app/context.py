"""Process-wide resources shared by requests: database, job queue, settings."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from app.db import Database
from app.jobs import JobQueue
from app.settings import Settings


@dataclass
class AppContext:
    settings: Settings
    db: Database
    jobs: JobQueue


def get_context(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx
