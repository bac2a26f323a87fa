"""Operator endpoints for users and their API keys (under /admin/v1)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.accounts import service as accounts
from app.accounts.schemas import KeyOut, UserOut, UserPatch
from app.http.audit import Audit
from app.http.auth import refusal, require
from app.http.context import ServicesDep
from app.http.paths import Limit, Offset, PathId
from app.http.problems import Problem
from app.http.tx import Reader, Tx

admin_router = APIRouter(tags=["users"])


@admin_router.get("/users", dependencies=[require("users:read")], summary="List users")
async def list_users(
    session: Reader,
    limit: Limit = 100,
    offset: Offset = 0,
    status_filter: Annotated[str | None, Query(alias="status")] = None,
    email: str | None = None,
) -> list[UserOut]:
    where = accounts.UserSearch(status=status_filter, email=email)
    found = await accounts.search_users(session, where, limit=limit, offset=offset)
    return [UserOut.model_validate(u) for u in found]


@admin_router.patch(
    "/users/{user_id}",
    dependencies=[require("users:write")],
    summary="Change a user's details, credit limit or discount",
    description="`discount_percent` lowers the rate of every service the user has no custom "
    "rate for, in `services` and in charges, from the next call on. `credit_limit` lets the "
    "balance go below zero: it also needs the permission `balances:adjust`.",
)
async def patch_user(
    tx: Tx, audit: Audit, services: ServicesDep, user_id: PathId, body: UserPatch
) -> UserOut:
    changes = body.model_dump(exclude_unset=True)
    fields = ("email", "currency", "credit_limit", "discount_percent")
    if any(changes.get(name, "") is None for name in fields):
        raise Problem(422, "email, currency, credit_limit and discount_percent cannot be null")
    if "credit_limit" in changes and not audit.principal.may("balances:adjust"):
        raise refusal(audit.principal, "balances:adjust")
    before = UserOut.model_validate(await accounts.get_live_user(tx, user_id))
    user = await accounts.update_user(
        tx, user_id, changes, panel_currency=services.settings.currency
    )
    out = UserOut.model_validate(user)
    await audit("user.update", "user", user_id, before=before, after=out)
    return out


@admin_router.get("/users/{user_id}", dependencies=[require("users:read")], summary="Show a user")
async def get_user(session: Reader, user_id: PathId) -> UserOut:
    return UserOut.model_validate(await accounts.get_user(session, user_id))


async def _key_action(tx: Tx, audit: Audit, user_id: int, *, rotate: bool) -> KeyOut:
    await accounts.get_live_user(tx, user_id)
    issued = await (accounts.rotate_key if rotate else accounts.issue_key)(tx, user_id)
    action = "user.key_rotate" if rotate else "user.key_issue"
    await audit(action, "user", user_id, after={"prefix": issued.prefix})
    return KeyOut(user_id=user_id, api_key=issued.key, prefix=issued.prefix)


@admin_router.post(
    "/users/{user_id}/keys",
    dependencies=[require("users:write")],
    summary="Issue an extra API key",
    description="Earlier keys keep working. The key is shown this once.",
)
async def issue_key(tx: Tx, audit: Audit, user_id: PathId) -> KeyOut:
    return await _key_action(tx, audit, user_id, rotate=False)


@admin_router.post(
    "/users/{user_id}/keys/rotate",
    dependencies=[require("users:write")],
    summary="Rotate API keys",
    description="Revokes every key of the user and issues a new one, shown this once.",
)
async def rotate_key(tx: Tx, audit: Audit, user_id: PathId) -> KeyOut:
    return await _key_action(tx, audit, user_id, rotate=True)


@admin_router.post(
    "/users/{user_id}/unblock",
    dependencies=[require("users:write")],
    summary="Unblock an account",
    description="Keys work again; forfeited money stays forfeited.",
)
async def unblock(tx: Tx, audit: Audit, user_id: PathId) -> UserOut:
    before = UserOut.model_validate(await accounts.get_user(tx, user_id))
    out = UserOut.model_validate(await accounts.unblock_user(tx, user_id))
    await audit("user.unblock", "user", user_id, before=before, after=out)
    return out
