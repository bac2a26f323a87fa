"""Operator endpoints of staff accounts (under /admin/v1, tag `staff`): members and their
roles, invitations, second factor, console sessions and API tokens, and the support
refund limit. Only the owner's permissions reach them (`staff:read`, `staff:write`);
every change is audited, and no answer but the one issuing a token carries a secret."""

from __future__ import annotations

from fastapi import APIRouter, Request, status
from sqlalchemy.ext.asyncio import AsyncSession

from app.http.audit import Audit
from app.http.auth import Principal, require
from app.http.context import ServicesDep, get_services
from app.http.paths import PathId
from app.http.tx import Reader, Tx
from app.staff import service as staff
from app.staff import signin
from app.staff.models import StaffMember
from app.staff.roles import permissions_of
from app.staff.schemas import (
    AcceptedOut,
    IssuedTokenOut,
    RevokedOut,
    StaffIn,
    StaffOut,
    StaffPatch,
    StaffSessionOut,
    StaffSettingsIn,
    StaffSettingsOut,
    StaffTokenOut,
    TokenIn,
)

admin_router = APIRouter(tags=["staff"])
READ = [require("staff:read")]
WRITE = [require("staff:write")]


def staff_out(member: StaffMember) -> StaffOut:
    return StaffOut(
        id=member.id,
        email=member.email,
        role=member.role,
        permissions=sorted(permissions_of(member.role)),
        has_password=member.password_hash is not None,
        two_factor=member.totp_enabled_at is not None,
        disabled_at=member.disabled_at,
        created_at=member.created_at,
    )


async def _settings_out(session: AsyncSession) -> StaffSettingsOut:
    return StaffSettingsOut.model_validate(await staff.settings_row(session))


@admin_router.get("/staff/settings", dependencies=READ, summary="The owner's settings of roles")
async def get_settings(tx: Tx) -> StaffSettingsOut:
    return await _settings_out(tx)


@admin_router.put(
    "/staff/settings",
    dependencies=WRITE,
    summary="Set the support refund limit",
    description="`support_refund_limit`: the largest refund a `support` agent may grant on "
    "one review resolution (0: none). Above it the resolution needs `reviews:refund`.",
)
async def put_settings(tx: Tx, audit: Audit, body: StaffSettingsIn) -> StaffSettingsOut:
    before = await _settings_out(tx)
    await staff.set_support_refund_limit(tx, body.support_refund_limit)
    after = await _settings_out(tx)
    await audit("staff.settings", "staff_settings", before=before, after=after)
    return after


@admin_router.get("/staff", dependencies=READ, summary="Staff members")
async def list_staff(session: Reader) -> list[StaffOut]:
    return [staff_out(m) for m in await staff.list_members(session)]


@admin_router.post(
    "/staff",
    dependencies=WRITE,
    status_code=status.HTTP_201_CREATED,
    summary="Add a staff member (an invitation to set the password is mailed)",
)
async def create_staff(tx: Tx, audit: Audit, services: ServicesDep, body: StaffIn) -> StaffOut:
    member = await staff.create_member(
        tx, email=body.email, role=body.role, password=None, language=body.language
    )
    await signin.invite(tx, signin.mailer(services), services.settings, member)
    out = staff_out(member)
    await audit("staff.create", "staff", member.id, after=out)
    return out


@admin_router.get("/staff/{staff_id}", dependencies=READ, summary="A staff member")
async def get_staff(session: Reader, staff_id: PathId) -> StaffOut:
    return staff_out(await staff.get_member(session, staff_id))


@admin_router.patch("/staff/{staff_id}", dependencies=WRITE, summary="Change a member's role")
async def patch_staff(tx: Tx, audit: Audit, staff_id: PathId, body: StaffPatch) -> StaffOut:
    before = staff_out(await staff.get_member(tx, staff_id))
    after = staff_out(await staff.set_role(tx, staff_id, body.role))
    await audit("staff.role", "staff", staff_id, before=before, after=after)
    return after


@admin_router.post(
    "/staff/{staff_id}/disable",
    dependencies=WRITE,
    summary="Disable a member: sessions end, tokens stop working",
)
async def disable_staff(tx: Tx, audit: Audit, staff_id: PathId) -> StaffOut:
    out = staff_out(await staff.disable(tx, staff_id))
    await audit("staff.disable", "staff", staff_id, after=out)
    return out


@admin_router.post("/staff/{staff_id}/enable", dependencies=WRITE, summary="Enable a member")
async def enable_staff(tx: Tx, audit: Audit, staff_id: PathId) -> StaffOut:
    out = staff_out(await staff.enable(tx, staff_id))
    await audit("staff.enable", "staff", staff_id, after=out)
    return out


@admin_router.post(
    "/staff/{staff_id}/invite",
    dependencies=WRITE,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Mail the member a link to set a (new) password",
)
async def invite_staff(
    tx: Tx, audit: Audit, services: ServicesDep, staff_id: PathId
) -> AcceptedOut:
    member = await staff.get_member(tx, staff_id)
    await signin.invite(tx, signin.mailer(services), services.settings, member)
    await audit("staff.invite", "staff", staff_id)
    return AcceptedOut()


@admin_router.post(
    "/staff/{staff_id}/2fa/reset",
    dependencies=WRITE,
    summary="Turn the member's second factor off (the next sign-in enrols a new one)",
)
async def reset_staff_totp(tx: Tx, audit: Audit, staff_id: PathId) -> StaffOut:
    out = staff_out(await staff.reset_totp(tx, staff_id))
    await audit("staff.2fa_reset", "staff", staff_id, after=out)
    return out


@admin_router.get(
    "/staff/{staff_id}/sessions", dependencies=READ, summary="A member's console sessions"
)
async def staff_sessions(session: Reader, staff_id: PathId) -> list[StaffSessionOut]:
    await staff.get_member(session, staff_id)
    return [StaffSessionOut.model_validate(s) for s in await staff.list_sessions(session, staff_id)]


@admin_router.post(
    "/staff/{staff_id}/sessions/revoke",
    dependencies=WRITE,
    summary="End every console session of a member",
)
async def revoke_staff_sessions(tx: Tx, audit: Audit, staff_id: PathId) -> RevokedOut:
    await staff.get_member(tx, staff_id)
    revoked = await staff.revoke_sessions(tx, staff_id)
    await audit("staff.sessions_revoke", "staff", staff_id, after={"revoked": revoked})
    return RevokedOut(revoked=revoked)


@admin_router.post(
    "/staff/{staff_id}/sessions/{session_id}/revoke",
    dependencies=WRITE,
    summary="End one console session of a member",
)
async def revoke_staff_session(
    tx: Tx, audit: Audit, staff_id: PathId, session_id: PathId
) -> RevokedOut:
    await staff.revoke_session(tx, staff_id, session_id)
    await audit("staff.session_revoke", "staff", staff_id, after={"session": session_id})
    return RevokedOut(revoked=1)


@admin_router.get("/staff/{staff_id}/tokens", dependencies=READ, summary="A member's API tokens")
async def staff_tokens(session: Reader, staff_id: PathId) -> list[StaffTokenOut]:
    await staff.get_member(session, staff_id)
    return [StaffTokenOut.model_validate(t) for t in await staff.list_tokens(session, staff_id)]


@admin_router.post(
    "/staff/{staff_id}/tokens",
    dependencies=WRITE,
    status_code=status.HTTP_201_CREATED,
    summary="Issue an API token for a member (shown this once)",
)
async def issue_staff_token(
    tx: Tx, audit: Audit, staff_id: PathId, body: TokenIn
) -> IssuedTokenOut:
    issued = await staff.issue_token(tx, staff_id, body.name)
    shown = StaffTokenOut.model_validate(issued.row)
    await audit("staff.token_issue", "staff", staff_id, after=shown)
    return IssuedTokenOut(**shown.model_dump(), token=issued.token)


@admin_router.delete(
    "/staff/{staff_id}/tokens/{token_id}",
    dependencies=WRITE,
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Revoke an API token",
)
async def revoke_staff_token(tx: Tx, audit: Audit, staff_id: PathId, token_id: PathId) -> None:
    await staff.revoke_token(tx, staff_id, token_id)
    await audit("staff.token_revoke", "staff", staff_id, after={"token": token_id})


async def token_principal(request: Request, token: str) -> Principal | None:
    """The staff member behind an /admin/v1 bearer token (installed into app/http/auth.py)."""
    async with get_services(request).db.transaction() as session:
        return await staff.principal_for_token(session, token)
