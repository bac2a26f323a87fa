"""The operator's switch of the storefront (/admin/v1/storefront): the panel's name, its
logo and the legal texts, kept in the database and taking precedence over the settings.
Every change is audited (before and after; a logo by its type, size and digest)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from app.http.audit import Audit
from app.http.auth import require
from app.http.context import ServicesDep
from app.http.tx import Reader, Tx
from app.storefront import analytics
from app.storefront import service as storefront
from app.storefront.models import LOGO_MAX_BYTES, LOGO_TYPES
from app.storefront.schemas import StorefrontIn, StorefrontOut

admin_router = APIRouter(tags=["storefront"])


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
    return await storefront.shown(db, services.settings)


@admin_router.put(
    "/storefront",
    dependencies=[require("settings:write")],
    summary="Set the panel's name, legal texts and analytics",
    description="Shown from the next page load on. name and the texts are required; null "
    "brings the setting back. metrica_id, ga_id and chaport_id are optional (left out: "
    "unchanged; null: off); once one is set, visitors are asked for their consent before "
    "any of them loads. Texts are plain text (the pages escape them; blank lines separate "
    "paragraphs), at most 50000 characters each; the whole request must fit "
    "API_MAX_BODY_BYTES.",
    responses={422: problem("an empty name, a text too long, an unknown field")},
)
async def put_storefront(
    tx: Tx, audit: Audit, services: ServicesDep, body: StorefrontIn
) -> StorefrontOut:
    values = body.model_dump()
    for field in analytics.FIELDS:  # optional: left out, unchanged
        if field not in body.model_fields_set:
            values.pop(field)
    return await storefront.change_audited(tx, audit, services.settings, values)


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
    content, declared = await request.body(), request.headers.get("content-type", "")
    return await storefront.set_logo_audited(tx, audit, services.settings, content, declared)


@admin_router.delete(
    "/storefront/logo",
    dependencies=[require("settings:write")],
    summary="Remove the logo set here (PANEL_LOGO applies again)",
)
async def delete_logo(tx: Tx, audit: Audit, services: ServicesDep) -> StorefrontOut:
    return await storefront.remove_logo_audited(tx, audit, services.settings)
