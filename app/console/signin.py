"""Signing in to the console (/web/admin/login): email, password and TOTP code; the first
sign-in enrols the second factor with a QR code drawn on the server; the mailed
invitation sets the password; signing out ends the session. Everything goes through the
staff domain's sign-in (app/staff/signin.py: the guessing limits, one use per code), and
every form is refused without its CSRF token before anything else happens."""

from __future__ import annotations

import contextlib
from typing import Annotated

import segno
from fastapi import APIRouter, Depends
from fastapi.responses import Response

from app.console.render import (
    CONSOLE,
    LANGUAGE_COOKIE,
    STAFF_COOKIE,
    Who,
    inside,
    page,
    posted,
    redirect,
    visitor,
)
from app.customers.signin import Caller
from app.errors import DomainError, NotFound
from app.pages.csrf import set_cookie
from app.pages.i18n import LANGUAGES
from app.staff import service as staff
from app.staff import signin
from app.staff.service import OpenedSession

router = APIRouter()
Visitor = Annotated[Who, Depends(visitor)]


def caller_of(who: Who) -> Caller:
    client = who.request.client
    return Caller(client.host if client else "unknown", who.request.headers.get("user-agent"))


def with_session(who: Who, to: str, opened: OpenedSession) -> Response:
    response = redirect(who, to)
    settings = who.services.settings
    seconds = round((opened.row.expires_at - opened.row.created_at).total_seconds())
    set_cookie(
        response, settings, STAFF_COOKIE, opened.token, seconds, path=CONSOLE, samesite="strict"
    )
    return response


def error_words(who: Who, exc: DomainError) -> str:
    return who._(exc.message)


@router.get("/login")
async def login_form(who: Visitor, next: str = "", done: str = "") -> Response:
    if who.signed is not None and not who.signed.enrolling:
        return redirect(who, inside(next))
    return page(who, "login.html", next=inside(next), done=done[:20], form={})


@router.post("/login")
async def login(who: Visitor) -> Response:
    fields = await posted(who)
    target = inside(fields.get("next"))
    try:
        async with who.services.db.transaction() as tx:
            opened = await signin.sign_in(
                who.services,
                tx,
                caller_of(who),
                email=fields.get("email", ""),
                password=fields.get("password", ""),
                code=fields.get("code", ""),
            )
    except DomainError as exc:
        status = getattr(exc, "http_status", 401)
        shown = page(
            who,
            "login.html",
            status,
            next=target,
            error=error_words(who, exc),
            form={"email": fields.get("email", "")},
        )
        shown.headers.update(exc.headers or {})
        return shown
    return with_session(who, CONSOLE + "/login/enrol" if opened.row.enrolling else target, opened)


async def enrolment_page(who: Who, status: int = 200, error: str = "") -> Response:
    assert who.signed is not None
    async with who.services.db.transaction() as tx:
        made = await staff.enrolment(tx, who.services.settings.secret_key, who.signed.member.id)
    qr = segno.make(made.uri, error="m").svg_inline(scale=4, title="QR")
    return page(who, "enrol.html", status, secret=made.secret, qr=qr, error=error)


@router.get("/login/enrol")
async def enrol_form(who: Visitor) -> Response:
    if who.signed is None or not who.signed.enrolling:
        return redirect(who, CONSOLE + "/login")
    return await enrolment_page(who)


@router.post("/login/enrol")
async def enrol(who: Visitor) -> Response:
    fields = await posted(who)
    if who.signed is None or not who.signed.enrolling:
        return redirect(who, CONSOLE + "/login")
    try:
        async with who.services.db.transaction() as tx:
            opened = await signin.confirm_enrolment(
                who.services, tx, caller_of(who), who.signed, fields.get("code", "")
            )
    except DomainError as exc:
        return await enrolment_page(who, getattr(exc, "http_status", 422), error_words(who, exc))
    return with_session(who, CONSOLE + "/", opened)


@router.post("/logout")
async def logout(who: Visitor) -> Response:
    await posted(who)
    if who.signed is not None:
        with contextlib.suppress(NotFound):  # ended already elsewhere
            async with who.services.db.transaction() as tx:
                await staff.revoke_session(tx, who.signed.member.id, who.signed.session_id)
    response = redirect(who, CONSOLE + "/login")
    response.delete_cookie(STAFF_COOKIE, path=CONSOLE)
    return response


@router.get("/invite")
async def invite_form(who: Visitor, token: str = "") -> Response:
    try:
        async with who.services.db.session() as session:
            member = await staff.invited_member(session, token)
    except DomainError as exc:
        return page(who, "message.html", 400, message=error_words(who, exc))
    return page(who, "invite.html", token=token, email=member.email)


@router.post("/invite")
async def accept_invite(who: Visitor) -> Response:
    fields = await posted(who)
    token = fields.get("token", "")
    try:
        async with who.services.db.transaction() as tx:
            await staff.accept_invitation(tx, token, fields.get("password", ""))
    except DomainError as exc:
        async with who.services.db.session() as session:
            try:
                member = await staff.invited_member(session, token)
            except DomainError:
                return page(who, "message.html", 400, message=error_words(who, exc))
        error = error_words(who, exc)
        return page(who, "invite.html", 422, token=token, email=member.email, error=error)
    return redirect(who, CONSOLE + "/login?done=password")


@router.post("/language")
async def language(who: Visitor) -> Response:
    fields = await posted(who)
    chosen = fields.get("language", "")
    response = redirect(who, inside(fields.get("next")))
    if chosen in LANGUAGES:
        set_cookie(
            response,
            who.services.settings,
            LANGUAGE_COOKIE,
            chosen,
            365 * 86400,
            path=CONSOLE,
            samesite="strict",
        )
    return response
