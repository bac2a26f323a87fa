"""Typed path and query parameters shared by the routers: ids fit a PostgreSQL bigint."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

from app.db import MAX_ID

PathId = Annotated[int, Path(ge=1, le=MAX_ID, description="id")]
QueryId = Annotated[int, Query(ge=1, le=MAX_ID)]
# The next page's cursor: the last id of the page before.
Cursor = Annotated[int | None, Query(ge=1, le=MAX_ID, description="next_cursor of a page")]
Limit = Annotated[int, Query(ge=1, le=1000, description="page size")]
Offset = Annotated[int, Query(ge=0, le=10**9, description="rows to skip")]
