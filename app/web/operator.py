"""The operator's switch on the storefront (/web/operator), and nothing else of an operator
console: sign in with the admin token (the token of /admin/v1, compared in constant time;
wrong tokens are limited per IP like passwords, app/customers/limits.py) into a cookie
session of its own (app/web/session.py: HttpOnly, SameSite=Strict, sent only
to /web/operator), then set the panel's name, logo and the three legal texts. Each change
is the storefront's audited change /admin/v1/storefront makes too (the same audit entry),
in the request's transaction; every form carries its CSRF token, which is checked before
anything else."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from app.customers import signin
from app.customers.errors import TooManyAttempts
from app.errors import DomainError
from app.http.audit import Auditor
from app.http.auth import Principal
from app.http.tx import Reader, Tx
from app.pages.csrf import set_cookie
from app.storefront import service as storefront
from app.storefront.models import LEGAL_TEXTS, LOGO_MAX_BYTES, LOGO_TYPES, NAME_MAX, TEXT_MAX
from app.web.forms import posted, posted_with_files
from app.web.public import caller
from app.web.render import Visitor, page, redirect, refusal, visitor
from app.web.session import (
    OPERATOR_COOKIE,
    OPERATOR_HOURS,
    OPERATOR_PATH,
    admin_token_matches,
    is_operator,
    operator_cookie,
)

log = logging.getLogger(__name__)
router = APIRouter()
Who = Annotated[Visitor, Depends(visitor)]
ACTOR = "admin (web)"  # the audit log's operator for changes made on this page
OPERATOR = Principal(ACTOR, "owner", None)
FIELDS = ("name", *LEGAL_TEXTS)


def operator(who: Visitor) -> bool:
    return is_operator(who.services.settings, who.request)


async def operator_page(
    who: Visitor, db: AsyncSession, status: int = 200, **values: object
) -> Response:
    if not operator(who):
        return page(who, "operator.html", status, operator=False, **values)
    settings = who.services.settings
    shown = await storefront.shown(db, settings)
    # The defaults: PANEL_NAME, and whether each text has a file (TERMS_FILE…) behind it.
    files = {kind: bool(getattr(settings, setting)) for kind, setting in LEGAL_TEXTS.items()}
    return page(
        who,
        "operator.html",
        status,
        operator=True,
        shown=shown,
        texts=LEGAL_TEXTS,
        default_name=settings.panel_name,
        files=files,
        name_max=NAME_MAX,
        text_max=TEXT_MAX,
        logo_types=",".join(LOGO_TYPES),
        logo_kb=LOGO_MAX_BYTES // 1024,
        form={},
        **values,
    )


@router.get("/operator")
async def operator_home(who: Who, db: Reader, done: str = "") -> Response:
    return await operator_page(who, db, done=done[:40])


@router.post("/operator/signin")
async def operator_sign_in(who: Who, db: Reader) -> Response:
    fields = await posted(who)
    settings = who.services.settings
    matches = admin_token_matches(settings, fields.get("token", ""))
    try:
        accepted = await signin.operator_token(who.services, caller(who.request), matches)
    except TooManyAttempts as exc:
        log.warning("operator sign-in locked", extra={"client_ip": caller(who.request).ip})
        locked = await operator_page(who, db, exc.http_status, signin_error=who.error(exc.message))
        locked.headers.update(exc.headers or {})
        return locked
    if not accepted:
        log.warning("operator sign-in refused", extra={"client_ip": caller(who.request).ip})
        refused = who._("This is not the admin token.")
        return await operator_page(who, db, 401, signin_error=refused)
    response = redirect(who, OPERATOR_PATH)
    set_cookie(
        response,
        settings,
        OPERATOR_COOKIE,
        operator_cookie(settings),
        OPERATOR_HOURS * 3600,
        path=OPERATOR_PATH,
        samesite="strict",
    )
    return response


@router.post("/operator/signout")
async def operator_sign_out(who: Who) -> Response:
    await posted(who)
    response = redirect(who, OPERATOR_PATH)
    response.delete_cookie(OPERATOR_COOKIE, path=OPERATOR_PATH)
    return response


@router.post("/operator/storefront/{field}")
async def change(who: Who, tx: Tx, field: str) -> Response:
    """The name or one legal text: an empty text (or the reset button) brings the
    setting's back."""
    fields = await posted(who)
    if not operator(who):
        return redirect(who, OPERATOR_PATH)
    if field not in FIELDS:
        return page(who, "message.html", 404, message=who.error("Not found"))
    value: str | None = None if fields.get("reset") == "1" else fields.get("value", "")
    try:
        async with tx.begin_nested():
            await storefront.change_audited(
                tx, Auditor(tx, OPERATOR), who.services.settings, {field: value}
            )
    except DomainError as exc:
        return await operator_page(
            who, tx, 422, error=who.error(exc.message), error_field=field, posted_value=value or ""
        )
    return redirect(who, f"{OPERATOR_PATH}?done={field}#{field}-h")


@router.post("/operator/logo")
async def upload_logo(who: Who, tx: Tx) -> Response:
    _, files = await posted_with_files(who)
    if not operator(who):
        return redirect(who, OPERATOR_PATH)
    upload = files.get("logo")
    content = await upload.read(LOGO_MAX_BYTES + 1) if upload is not None else b""
    if upload is None or not content:
        chosen = who._("Choose an image file.")
        return await operator_page(who, tx, 422, error=chosen, error_field="logo")
    declared = upload.content_type or ""
    try:
        async with tx.begin_nested():
            await storefront.set_logo_audited(
                tx, Auditor(tx, OPERATOR), who.services.settings, content, declared
            )
    except DomainError as exc:
        return await operator_page(who, tx, 422, **refusal(who, exc, {"logo"}))
    return redirect(who, f"{OPERATOR_PATH}?done=logo#logo-h")


@router.post("/operator/logo/remove")
async def remove_logo(who: Who, tx: Tx) -> Response:
    await posted(who)
    if not operator(who):
        return redirect(who, OPERATOR_PATH)
    await storefront.remove_logo_audited(tx, Auditor(tx, OPERATOR), who.services.settings)
    return redirect(who, f"{OPERATOR_PATH}?done=logo#logo-h")
