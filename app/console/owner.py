"""The console's pages of trust: privacy requests with their deadlines (PP 4.2: thirty
days; late ones and those due within a week stand out) and their completion by erasure;
the audit log filtered by staff member and by what changed (pages, CSV); the storefront's
settings (name, logo, legal texts); and the staff, managed by the owner: members and their
roles, invitations, disabling, two-factor resets, sessions, API tokens and the support
refund limit.

Everything goes through the functions behind /admin/v1 (privacy, audit, storefront,
staff), each change audited the same way, naming the member; the last active owner is
kept by the staff domain."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit_log
from app.console.listing import as_id, shown, window
from app.console.render import (
    CONSOLE,
    N_,
    Failure,
    Permit,
    Who,
    csv_download,
    page,
    posted,
    posted_with_files,
    redirect,
)
from app.db import utcnow
from app.errors import DomainError
from app.http.audit import Auditor
from app.http.paths import PathId
from app.http.problems import Problem
from app.pages.export import Cell
from app.privacy import service as privacy
from app.privacy.router import deletion_out
from app.privacy.schemas import DeletionCompletedOut, ErasedOut
from app.staff import service as staff
from app.staff import signin as staff_signin
from app.staff.roles import ROLES
from app.staff.router import staff_out
from app.staff.schemas import (
    StaffIn,
    StaffPatch,
    StaffSettingsIn,
    StaffSettingsOut,
    StaffTokenOut,
    TokenIn,
)
from app.storefront import service as storefront
from app.storefront.models import LEGAL_TEXTS, LOGO_MAX_BYTES

router = APIRouter()
PrivacyReader = Annotated[Who, Depends(Permit("privacy:read"))]
PrivacyWriter = Annotated[Who, Depends(Permit("privacy:write"))]
AuditReader = Annotated[Who, Depends(Permit("audit:read"))]
SettingsReader = Annotated[Who, Depends(Permit("settings:read"))]
SettingsWriter = Annotated[Who, Depends(Permit("settings:write"))]
StaffReader = Annotated[Who, Depends(Permit("staff:read"))]
StaffWriter = Annotated[Who, Depends(Permit("staff:write"))]
Refusals = (DomainError, Problem, ValueError)
SOON = timedelta(days=7)  # a deadline this close stands out

DONE = {
    "completed": N_("The request is completed: the customer's personal data is erased."),
    "settings": N_("The storefront is saved: the next page load shows it."),
    "logo": N_("The logo is saved."),
    "logo-removed": N_("The logo is removed."),
    "member": N_("The staff member is added; an invitation is mailed."),
    "role": N_("The role is changed."),
    "disabled": N_("The member is disabled: their sessions and tokens stop at once."),
    "enabled": N_("The member is enabled."),
    "invited": N_("An invitation to set a password is mailed."),
    "2fa": N_("Two-factor sign-in is reset: the next sign-in enrols it again."),
    "sessions": N_("The sessions are ended."),
    "token-revoked": N_("The token is revoked."),
    "limit": N_("The support refund limit is set."),
}


def shown_done(who: Who, done: str) -> str:
    return who._(DONE[done]) if done in DONE else ""


# Privacy requests -------------------------------------------------------------------------


async def privacy_page(who: Who, failure: Failure | None = None, done: str = "") -> Response:
    async with who.services.db.session() as session:
        requests = await privacy.open_deletion_requests(session)
    now = utcnow()
    return page(
        who,
        "privacy.html",
        failure.status if failure else 200,
        requests=requests,
        late={r.id: r.deadline < now for r in requests},
        soon={r.id: now <= r.deadline < now + SOON for r in requests},
        days_left={r.id: (r.deadline - now).days for r in requests},
        error=failure.message if failure else "",
        done=shown_done(who, done),
    )


REQUEST_HEADER = ["ID", "Customer", "Requested", "Deadline"]


@router.get("/privacy")
async def privacy_requests(who: PrivacyReader, done: str = "", format: str = "") -> Response:
    if format == "csv":
        async with who.services.db.session() as session:
            requests = await privacy.open_deletion_requests(session)
        rows: list[list[Cell]] = [[r.id, r.user_id, r.requested_at, r.deadline] for r in requests]
        return csv_download(who, "privacy-requests", REQUEST_HEADER, rows)
    return await privacy_page(who, done=done)


@router.post("/privacy/{request_id}/complete")
async def complete(who: PrivacyWriter, request_id: PathId) -> Response:
    """The same erasure as the customer page's, and the request closed."""
    fields = await posted(who)
    try:
        if fields.get("confirm") != "1":
            raise ValueError(N_("Tick the box to confirm: personal data cannot be restored."))
        async with who.acting() as (tx, audit):
            request, erased = await privacy.complete_deletion(tx, request_id, audit.actor)
            out = DeletionCompletedOut(
                request=deletion_out(request),
                erased=ErasedOut(
                    user_id=erased.user_id,
                    orders_scrubbed=erased.orders_scrubbed,
                    erased_at=erased.erased_at,
                    purge_after=erased.erased_at
                    + timedelta(days=who.services.settings.retention_days),
                ),
            )
            await audit("user.deletion_complete", "deletion_request", request_id, after=out)
    except Refusals as exc:
        return await privacy_page(who, who.error(exc))
    return redirect(who, f"{CONSOLE}/privacy?done=completed")


# The audit log ----------------------------------------------------------------------------

AUDIT_HEADER = ["ID", "When", "Who", "Staff ID", "Action", "Entity", "Entity ID", "Before", "After"]


@router.get("/audit")
async def audit_page(
    who: AuditReader, staff_id: str = "", entity: str = "", entity_id: str = "", format: str = ""
) -> Response:
    at = window(who.request.query_params.get("page"), format)
    chosen = as_id(staff_id)
    async with who.services.db.session() as session:
        entries = await audit_log.list_entries(
            session,
            limit=at.limit,
            offset=at.offset,
            staff_id=chosen,
            entity=entity.strip()[:40] or None,
            entity_id=entity_id.strip()[:60] or None,
        )
        members = await staff.list_members(session)
    if at.csv:
        rows: list[list[Cell]] = [
            [
                e.id,
                e.created_at,
                e.actor,
                e.staff_id,
                e.action,
                e.entity,
                e.entity_id,
                str(e.before) if e.before is not None else None,
                str(e.after) if e.after is not None else None,
            ]
            for e in entries
        ]
        return csv_download(who, "audit", AUDIT_HEADER, rows)
    return page(
        who,
        "audit.html",
        listed=shown(entries, at),
        members=members,
        staff_id=chosen,
        given={"entity": entity[:40], "entity_id": entity_id[:60]},
    )


# Storefront settings ----------------------------------------------------------------------


async def settings_page(who: Who, failure: Failure | None = None, done: str = "") -> Response:
    async with who.services.db.session() as session:
        shown_now = await storefront.shown(session, who.services.settings)
    return page(
        who,
        "settings.html",
        failure.status if failure else 200,
        store=shown_now,
        texts=LEGAL_TEXTS,
        logo_max_kb=LOGO_MAX_BYTES // 1024,
        error=failure.message if failure else "",
        done=shown_done(who, done),
    )


@router.get("/settings")
async def settings(who: SettingsReader, done: str = "") -> Response:
    return await settings_page(who, done=done)


@router.post("/settings")
async def save_settings(who: SettingsWriter) -> Response:
    """The panel's name and legal texts; an empty one brings its setting's default back."""
    fields = await posted(who)
    values = {k: fields.get(k, "").strip() or None for k in ("name", *LEGAL_TEXTS)}
    try:
        async with who.acting() as (tx, audit):
            await storefront.change_audited(tx, audit, who.services.settings, values)
    except Refusals as exc:
        return await settings_page(who, who.error(exc))
    return redirect(who, f"{CONSOLE}/settings?done=settings")


@router.post("/settings/logo")
async def upload_logo(who: SettingsWriter) -> Response:
    _, files = await posted_with_files(who)
    upload = files.get("logo")
    content = await upload.read(LOGO_MAX_BYTES + 1) if upload is not None else b""
    try:
        if upload is None or not content:
            raise ValueError(N_("Choose an image file."))
        async with who.acting() as (tx, audit):
            declared = upload.content_type or ""
            await storefront.set_logo_audited(tx, audit, who.services.settings, content, declared)
    except Refusals as exc:
        return await settings_page(who, who.error(exc))
    return redirect(who, f"{CONSOLE}/settings?done=logo")


@router.post("/settings/logo/remove")
async def remove_logo(who: SettingsWriter) -> Response:
    await posted(who)
    async with who.acting() as (tx, audit):
        await storefront.remove_logo_audited(tx, audit, who.services.settings)
    return redirect(who, f"{CONSOLE}/settings?done=logo-removed")


# Staff ------------------------------------------------------------------------------------


async def staff_page(who: Who, failure: Failure | None = None, done: str = "") -> Response:
    async with who.services.db.session() as session:
        members = await staff.list_members(session)
        limit = await staff.support_refund_limit(session)
    return page(
        who,
        "staff.html",
        failure.status if failure else 200,
        members=members,
        roles=ROLES,
        limit=limit,
        error=failure.message if failure else "",
        done=shown_done(who, done),
    )


@router.get("/staff")
async def staff_list(who: StaffReader, done: str = "") -> Response:
    return await staff_page(who, done=done)


@router.post("/staff")
async def add_member(who: StaffWriter) -> Response:
    fields = await posted(who)
    try:
        body = StaffIn.model_validate(
            {
                "email": fields.get("email", "").strip(),
                "role": fields.get("role", ""),
                "language": fields.get("language") or "en",
            }
        )
        async with who.acting() as (tx, audit):
            member = await staff.create_member(
                tx, email=body.email, role=body.role, password=None, language=body.language
            )
            mailer = staff_signin.mailer(who.services)
            await staff_signin.invite(tx, mailer, who.services.settings, member)
            await audit("staff.create", "staff", member.id, after=staff_out(member))
    except Refusals as exc:
        return await staff_page(who, who.error(exc))
    return redirect(who, f"{CONSOLE}/staff?done=member")


@router.post("/staff/refund-limit")
async def set_limit(who: StaffWriter) -> Response:
    """The largest refund a support agent may grant on one review resolution."""
    fields = await posted(who)
    try:
        body = StaffSettingsIn.model_validate(
            {"support_refund_limit": fields.get("support_refund_limit", "").strip()}
        )
        async with who.acting() as (tx, audit):
            before = StaffSettingsOut.model_validate(await staff.settings_row(tx))
            await staff.set_support_refund_limit(tx, body.support_refund_limit)
            after = StaffSettingsOut.model_validate(await staff.settings_row(tx))
            await audit("staff.settings", "staff_settings", before=before, after=after)
    except Refusals as exc:
        return await staff_page(who, who.error(exc))
    return redirect(who, f"{CONSOLE}/staff?done=limit")


async def member_page(
    who: Who, staff_id: int, failure: Failure | None = None, done: str = "", issued: str = ""
) -> Response:
    async with who.services.db.session() as session:
        member = await staff.get_member(session, staff_id)
        sessions = await staff.list_sessions(session, staff_id)
        tokens = await staff.list_tokens(session, staff_id)
    return page(
        who,
        "member.html",
        failure.status if failure else 200,
        member=member,
        sessions=sessions,
        tokens=tokens,
        roles=ROLES,
        issued=issued,
        error=failure.message if failure else "",
        done=shown_done(who, done),
    )


@router.get("/staff/{staff_id}")
async def member_detail(who: StaffReader, staff_id: PathId, done: str = "") -> Response:
    return await member_page(who, staff_id, done=done)


def back(who: Who, staff_id: int, done: str) -> Response:
    return redirect(who, f"{CONSOLE}/staff/{staff_id}?done={done}")


@router.post("/staff/{staff_id}/role")
async def change_role(who: StaffWriter, staff_id: PathId) -> Response:
    fields = await posted(who)
    try:
        body = StaffPatch.model_validate({"role": fields.get("role", "")})
        async with who.acting() as (tx, audit):
            before = staff_out(await staff.get_member(tx, staff_id))
            after = staff_out(await staff.set_role(tx, staff_id, body.role))
            await audit("staff.role", "staff", staff_id, before=before, after=after)
    except Refusals as exc:
        return await member_page(who, staff_id, who.error(exc))
    return back(who, staff_id, "role")


Change = Callable[[Who, AsyncSession, Auditor, int], Awaitable[None]]


async def disabling(who: Who, tx: AsyncSession, audit: Auditor, staff_id: int) -> None:
    await audit(
        "staff.disable", "staff", staff_id, after=staff_out(await staff.disable(tx, staff_id))
    )


async def enabling(who: Who, tx: AsyncSession, audit: Auditor, staff_id: int) -> None:
    await audit(
        "staff.enable", "staff", staff_id, after=staff_out(await staff.enable(tx, staff_id))
    )


async def inviting(who: Who, tx: AsyncSession, audit: Auditor, staff_id: int) -> None:
    member = await staff.get_member(tx, staff_id)
    await staff_signin.invite(tx, staff_signin.mailer(who.services), who.services.settings, member)
    await audit("staff.invite", "staff", staff_id)


async def resetting(who: Who, tx: AsyncSession, audit: Auditor, staff_id: int) -> None:
    after = staff_out(await staff.reset_totp(tx, staff_id))
    await audit("staff.2fa_reset", "staff", staff_id, after=after)


async def ending_sessions(who: Who, tx: AsyncSession, audit: Auditor, staff_id: int) -> None:
    await staff.get_member(tx, staff_id)
    revoked = await staff.revoke_sessions(tx, staff_id)
    await audit("staff.sessions_revoke", "staff", staff_id, after={"revoked": revoked})


async def member_change(who: Who, staff_id: int, change: Change, done: str) -> Response:
    await posted(who)
    try:
        async with who.acting() as (tx, audit):
            await change(who, tx, audit, staff_id)
    except Refusals as exc:
        return await member_page(who, staff_id, who.error(exc))
    return back(who, staff_id, done)


@router.post("/staff/{staff_id}/disable")
async def disable(who: StaffWriter, staff_id: PathId) -> Response:
    """Sessions end and tokens stop at once (the last active owner stays)."""
    return await member_change(who, staff_id, disabling, "disabled")


@router.post("/staff/{staff_id}/enable")
async def enable(who: StaffWriter, staff_id: PathId) -> Response:
    return await member_change(who, staff_id, enabling, "enabled")


@router.post("/staff/{staff_id}/invite")
async def invite(who: StaffWriter, staff_id: PathId) -> Response:
    """Mail a link to set a (new) password."""
    return await member_change(who, staff_id, inviting, "invited")


@router.post("/staff/{staff_id}/2fa-reset")
async def reset_two_factor(who: StaffWriter, staff_id: PathId) -> Response:
    """The next sign-in enrols a new second factor."""
    return await member_change(who, staff_id, resetting, "2fa")


@router.post("/staff/{staff_id}/sessions/revoke")
async def revoke_sessions(who: StaffWriter, staff_id: PathId) -> Response:
    return await member_change(who, staff_id, ending_sessions, "sessions")


@router.post("/staff/{staff_id}/tokens/issue")
async def issue_token(who: StaffWriter, staff_id: PathId) -> Response:
    """A new API token for /admin/v1, shown on this page once (only its hash is kept)."""
    fields = await posted(who)
    try:
        body = TokenIn.model_validate({"name": fields.get("name", "").strip() or "api"})
        async with who.acting() as (tx, audit):
            issued = await staff.issue_token(tx, staff_id, body.name)
            shown_row = StaffTokenOut.model_validate(issued.row)
            await audit("staff.token_issue", "staff", staff_id, after=shown_row)
    except Refusals as exc:
        return await member_page(who, staff_id, who.error(exc))
    return await member_page(who, staff_id, issued=issued.token)


@router.post("/staff/{staff_id}/tokens/{token_id}/revoke")
async def revoke_token(who: StaffWriter, staff_id: PathId, token_id: PathId) -> Response:
    await posted(who)
    try:
        async with who.acting() as (tx, audit):
            await staff.revoke_token(tx, staff_id, token_id)
            await audit("staff.token_revoke", "staff", staff_id, after={"token": token_id})
    except Refusals as exc:
        return await member_page(who, staff_id, who.error(exc))
    return back(who, staff_id, "token-revoked")
