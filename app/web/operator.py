"""The operator's switch on the storefront (/web/operator), and nothing else of an operator
console: sign in with the admin token (the token of /admin/v1, compared in constant time)
into a cookie session of its own (app/web/session.py: HttpOnly, SameSite=Strict, sent only
to /web/operator), then set the panel's name, logo and the three legal texts. Each change
calls the functions behind /admin/v1/storefront and writes the same audit entry; every
form carries its CSRF token, which is checked before anything else."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from app.errors import DomainError
from app.http.audit import audited
from app.pages.csrf import set_cookie
from app.storefront import service as storefront
from app.storefront.models import LEGAL_TEXTS, LOGO_MAX_BYTES, LOGO_TYPES, NAME_MAX, TEXT_MAX
from app.storefront.router import logo_of, storefront_out
from app.web.forms import posted, posted_with_files
from app.web.render import Visitor, page, redirect, visitor
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
FIELDS = ("name", *LEGAL_TEXTS)


def operator(who: Visitor) -> bool:
    return is_operator(who.services.settings, who.request)


async def operator_page(who: Visitor, status: int = 200, **values: object) -> Response:
    if not operator(who):
        return page(who, "operator.html", status, operator=False, **values)
    settings = who.services.settings
    async with who.services.db.session() as db:
        shown = await storefront_out(db, settings)
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
async def operator_home(who: Who, done: str = "") -> Response:
    return await operator_page(who, done=done[:40])


@router.post("/operator/signin")
async def operator_sign_in(who: Who) -> Response:
    fields = await posted(who)
    settings = who.services.settings
    if not admin_token_matches(settings, fields.get("token", "")):
        client = who.request.client.host if who.request.client else "unknown"
        log.warning("operator sign-in refused", extra={"client_ip": client})
        return await operator_page(who, 401, signin_error=who._("This is not the admin token."))
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
async def change(who: Who, field: str) -> Response:
    """The name or one legal text: an empty text (or the reset button) brings the
    setting's back."""
    fields = await posted(who)
    if not operator(who):
        return redirect(who, OPERATOR_PATH)
    if field not in FIELDS:
        return page(who, "message.html", 404, message=who.error("Not found"))
    value: str | None = None if fields.get("reset") == "1" else fields.get("value", "")
    settings = who.services.settings
    try:
        async with who.services.db.transaction() as tx:
            before = await storefront_out(tx, settings)
            await storefront.change(tx, {field: value})
            after = await storefront_out(tx, settings)
            await audited(tx, ACTOR, "storefront.update", "storefront", before=before, after=after)
    except DomainError as exc:
        return await operator_page(
            who, 422, error=who.error(exc.message), error_field=field, posted_value=value or ""
        )
    return redirect(who, f"{OPERATOR_PATH}?done={field}#{field}-h")


@router.post("/operator/logo")
async def upload_logo(who: Who) -> Response:
    _, files = await posted_with_files(who)
    if not operator(who):
        return redirect(who, OPERATOR_PATH)
    upload = files.get("logo")
    content = await upload.read(LOGO_MAX_BYTES + 1) if upload is not None else b""
    if upload is None or not content:
        return await operator_page(
            who, 422, error=who._("Choose an image file."), error_field="logo"
        )
    settings = who.services.settings
    try:
        async with who.services.db.transaction() as tx:
            before = await storefront_out(tx, settings)
            await storefront.set_logo(tx, content, upload.content_type or "")
            after = await storefront_out(tx, settings)
            await audited(
                tx,
                ACTOR,
                "storefront.logo",
                "storefront",
                before=logo_of(before),
                after=logo_of(after),
            )
    except DomainError as exc:
        return await operator_page(who, 422, error=who.error(exc.message), error_field="logo")
    return redirect(who, f"{OPERATOR_PATH}?done=logo#logo-h")


@router.post("/operator/logo/remove")
async def remove_logo(who: Who) -> Response:
    await posted(who)
    if not operator(who):
        return redirect(who, OPERATOR_PATH)
    settings = who.services.settings
    async with who.services.db.transaction() as tx:
        before = await storefront_out(tx, settings)
        await storefront.remove_logo(tx)
        after = await storefront_out(tx, settings)
        await audited(
            tx,
            ACTOR,
            "storefront.logo_remove",
            "storefront",
            before=logo_of(before),
            after=logo_of(after),
        )
    return redirect(who, f"{OPERATOR_PATH}?done=logo#logo-h")
