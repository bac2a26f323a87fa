"""Process-wide resources shared by every request: settings, database, job queue and the
HTTP client for upstream calls. The application puts them on `app.state.ctx` at start-up;
the full context (app/context.py) adds what only the assemblers use."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import httpx
from fastapi import Depends, Request

from app.db import Database
from app.jobs import JobQueue
from app.settings import Settings


@dataclass
class Services:
    settings: Settings
    db: Database
    jobs: JobQueue
    http: httpx.AsyncClient  # the one shared client for upstream calls made by the API


def get_services(request: Request) -> Services:
    services: Services = request.app.state.ctx
    return services


# A handler's view of the shared services.
ServicesDep = Annotated[Services, Depends(get_services)]
