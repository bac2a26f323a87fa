"""Who calls the operator API, and what they may do.

A caller is a `Principal`: a staff member signed in with one of their API tokens (their
role's permissions), or the holder of ADMIN_TOKEN (the owner's bootstrap and automation
token: every permission; compared in constant time). Staff tokens are looked up by the
staff domain, which the application installs here (`install_staff_tokens`): this toolkit
sits below the domains and knows only the shape of the answer.

Every /admin/v1 route declares the one permission it needs with `require("area:verb")`.
The declaration is a `Security` dependency, so it is published in the OpenAPI document
(`security: [{"AdminBearer": ["orders:write"]}]`), which is how the tests walk every route
and check none lacks one. A caller without the permission gets 403 problem JSON naming it.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer, SecurityScopes
from fastapi.security.utils import get_authorization_scheme_param

from app.http.context import get_services
from app.http.problems import Problem

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="AdminBearer",
    description="a staff member's API token (`smm-panel staff token`) or ADMIN_TOKEN; "
    "the permission each operation needs is listed with it",
)
ADMIN_TOKEN_NAME = "admin token"  # noqa: S105 - how the audit log names its holder
PERMISSION_DENIED = "/errors/permission-denied"


@dataclass(frozen=True)
class Principal:
    """The caller of an operator route, as the audit log names them."""

    name: str  # the staff member's email, or "admin token"
    role: str
    permissions: frozenset[str] | None  # None: every permission (the admin token)
    staff_id: int | None = None

    def may(self, permission: str) -> bool:
        return self.permissions is None or permission in self.permissions


ADMIN = Principal(ADMIN_TOKEN_NAME, "owner", None)

# The staff domain's lookup of an API token: the principal, or None for an unknown,
# revoked token or a disabled staff member.
StaffTokenLookup = Callable[[Request, str], Awaitable[Principal | None]]


def install_staff_tokens(app: FastAPI, lookup: StaffTokenLookup) -> None:
    app.state.staff_tokens = lookup


def _unauthorized() -> Problem:
    problem = Problem(401, "Missing or invalid admin token")
    problem.headers = {"WWW-Authenticate": "Bearer"}
    return problem


def admin_token_matches(expected: str | None, given: str) -> bool:
    """ADMIN_TOKEN compared in constant time (no token configured: nothing matches)."""
    return bool(expected) and hmac.compare_digest(given.encode(), (expected or "").encode())


async def authenticate(request: Request) -> Principal:
    """The request's caller (looked up once per request), or 401."""
    known: Principal | None = getattr(request.state, "principal", None)
    if known is not None:
        return known
    scheme, token = get_authorization_scheme_param(request.headers.get("authorization"))
    if scheme.lower() != "bearer" or not token or len(token) > 200:
        raise _unauthorized()
    found: Principal | None = None
    if admin_token_matches(get_services(request).settings.admin_token, token):
        found = ADMIN
    else:
        lookup: StaffTokenLookup | None = getattr(request.app.state, "staff_tokens", None)
        found = await lookup(request, token) if lookup is not None else None
    if found is None:
        raise _unauthorized()
    request.state.principal = found
    return found


# The caller of an operator route (for the audit log and the checks inside a handler).
Operator = Annotated[Principal, Depends(authenticate)]
# The guard of a whole router: no route under it answers an unknown caller (401), whether
# or not it declares its permission.
authenticated = Depends(authenticate)


def refusal(principal: Principal, permission: str) -> Problem:
    return Problem(
        403,
        f"Your role ({principal.role}) does not have the permission {permission}",
        type=PERMISSION_DENIED,
        permission=permission,
    )


async def _permitted(
    request: Request,
    scopes: SecurityScopes,
    _credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
) -> Principal:
    principal = await authenticate(request)
    for permission in scopes.scopes:
        if not principal.may(permission):
            raise refusal(principal, permission)
    return principal


def require(permission: str) -> Any:
    """The dependency a route declares: `dependencies=[require("orders:write")]`."""
    return Security(_permitted, scopes=[permission])
