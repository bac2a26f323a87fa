"""Bearer-token guard for the operator API."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.http.context import get_services

bearer = HTTPBearer(auto_error=False, description="ADMIN_TOKEN from the settings")


async def require_admin(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
) -> str:
    """Returns the operator's name for the audit log ("admin")."""
    expected = get_services(request).settings.admin_token
    given = credentials.credentials if credentials is not None else ""
    if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail="Missing or invalid admin token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return "admin"


# The operator making the call (for the audit log).
Operator = Annotated[str, Depends(require_admin)]
