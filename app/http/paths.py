"""Typed path and query parameters shared by the routers: ids fit a PostgreSQL bigint."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

MAX_ID = 2**63 - 1

PathId = Annotated[int, Path(ge=1, le=MAX_ID, description="id")]
QueryId = Annotated[int, Query(ge=1, le=MAX_ID)]
Limit = Annotated[int, Query(ge=1, le=1000, description="page size")]
Offset = Annotated[int, Query(ge=0, le=10**9, description="rows to skip")]
