"""The operator's switch of the storefront (/admin/v1/storefront): the panel's name, its
logo and the legal texts, kept in the database and taking precedence over the settings.
Every change is audited (before and after; a logo by its type, size and digest)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.http.audit import Audit
from app.http.auth import require
from app.http.context import ServicesDep
from app.http.tx import Reader, Tx
from app.settings import Settings
from app.storefront import service as storefront
from app.storefront.models import LOGO_MAX_BYTES, LOGO_TYPES
from app.storefront.schemas import LogoOut, StorefrontIn, StorefrontOut

admin_router = APIRouter(tags=["storefront"])


async def storefront_out(session: AsyncSession, settings: Settings) -> StorefrontOut:
    row = await storefront.current(session)
    shown = await storefront.brand(session, settings)
    info = await storefront.logo_info(session)
    return StorefrontOut(
        name=row.name if row else None,
        shown_name=shown.name,
        logo=LogoOut(**vars(info)) if info else None,
        terms=row.terms if row else None,
        privacy_policy=row.privacy_policy if row else None,
        terms_of_use=row.terms_of_use if row else None,
        updated_at=row.updated_at if row else None,
    )


def logo_of(out: StorefrontOut) -> dict[str, Any]:
    """What the audit log keeps of a logo change: its type, size and digest."""
    return {"logo": out.logo.model_dump() if out.logo else None}


def problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/problem+json": {"schema": {"type": "object"}}},
    }


@admin_router.get(
    "/storefront",
    dependencies=[require("settings:read")],
    summary="What the storefront shows: name, logo, legal texts",
    description="Values set here take precedence over PANEL_NAME, PANEL_LOGO, TERMS_FILE, "
    "PRIVACY_FILE and TERMS_OF_USE_FILE; null means the setting's.",
)
async def get_storefront(db: Reader, services: ServicesDep) -> StorefrontOut:
    return await storefront_out(db, services.settings)


@admin_router.put(
    "/storefront",
    dependencies=[require("settings:write")],
    summary="Set the panel's name and legal texts",
    description="Shown from the next page load on. Every field is required; null brings "
    "the setting back. Texts are plain text (the pages escape them; blank lines separate "
    "paragraphs), at most 50000 characters each; the whole request must fit "
    "API_MAX_BODY_BYTES.",
    responses={422: problem("an empty name, a text too long, an unknown field")},
)
async def put_storefront(
    tx: Tx, audit: Audit, services: ServicesDep, body: StorefrontIn
) -> StorefrontOut:
    before = await storefront_out(tx, services.settings)
    await storefront.change(tx, body.model_dump())
    after = await storefront_out(tx, services.settings)
    await audit("storefront.update", "storefront", None, before=before, after=after)
    return after


LOGO_BODY = {
    "required": True,
    "content": {kind: {"schema": {"type": "string", "format": "binary"}} for kind in LOGO_TYPES},
}


@admin_router.put(
    "/storefront/logo",
    dependencies=[require("settings:write")],
    summary="Set the logo (the image's bytes as the body, with its Content-Type)",
    description=f"PNG, SVG, JPEG or WebP, at most {LOGO_MAX_BYTES // 1024} KB; the bytes must "
    "be what the Content-Type says. Served at /web/logo (an SVG with a policy that runs no "
    "script in it).",
    openapi_extra={"requestBody": LOGO_BODY},
    responses={
        413: problem("larger than the limit"),
        415: problem("not a PNG, SVG, JPEG or WebP Content-Type"),
        422: problem("the bytes are not the image the Content-Type says"),
    },
)
async def put_logo(request: Request, tx: Tx, audit: Audit, services: ServicesDep) -> StorefrontOut:
    content = await request.body()
    before = await storefront_out(tx, services.settings)
    await storefront.set_logo(tx, content, request.headers.get("content-type", ""))
    after = await storefront_out(tx, services.settings)
    await audit("storefront.logo", "storefront", None, before=logo_of(before), after=logo_of(after))
    return after


@admin_router.delete(
    "/storefront/logo",
    dependencies=[require("settings:write")],
    summary="Remove the logo set here (PANEL_LOGO applies again)",
)
async def delete_logo(tx: Tx, audit: Audit, services: ServicesDep) -> StorefrontOut:
    before = await storefront_out(tx, services.settings)
    await storefront.remove_logo(tx)
    after = await storefront_out(tx, services.settings)
    await audit(
        "storefront.logo_remove", "storefront", None, before=logo_of(before), after=logo_of(after)
    )
    return after
