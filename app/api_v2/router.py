"""POST/GET /api/v2 as the framework sees it: registered for the OpenAPI document. Calls
are served by `DirectRoute` (direct.py) ahead of routing; both run the same `handle`."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from app.api_v2 import docs
from app.api_v2.direct import DirectRoute, handle

__all__ = ["DirectRoute", "router"]

router = APIRouter(tags=["API v2"])

for method in ("POST", "GET"):
    router.add_api_route(
        "/api/v2",
        handle,
        methods=[method],
        operation_id=f"api_v2_{method.lower()}",
        summary=f"API v2 (action-style, {method})",
        description=docs.DESCRIPTION,
        openapi_extra=docs.OPENAPI_EXTRA,
        response_class=JSONResponse,
    )
