"""The operator's legal texts (/admin/v1/legal/{document}/versions: publish, list) and a
customer's acceptances (/admin/v1/users/{user_id}/acceptances). Publishing is audited."""

from __future__ import annotations

from fastapi import APIRouter, status

from app.http.audit import Audit
from app.http.auth import require
from app.http.paths import PathId
from app.http.tx import Reader, Tx
from app.legal import service as legal
from app.legal.schemas import AcceptanceOut, PublishIn
from app.legal.service import VersionOut

admin_router = APIRouter(tags=["legal"])
DOCUMENT_HELP = "terms, privacy or terms-of-use"


@admin_router.post(
    "/legal/{document}/versions",
    status_code=status.HTTP_201_CREATED,
    dependencies=[require("settings:write")],
    summary="Publish a new version of a legal text",
    description=f"document: {DOCUMENT_HELP}. In force from now on; customers accept it by "
    "their next order (the storefront shows it once first), deposit or registration.",
)
async def publish(tx: Tx, audit: Audit, document: str, body: PublishIn) -> VersionOut:
    return await legal.publish_audited(tx, audit, document, body.language, body.text)


@admin_router.get(
    "/legal/{document}/versions",
    dependencies=[require("settings:read")],
    summary="The versions of a legal text, newest first (with their texts)",
)
async def list_versions(session: Reader, document: str) -> list[VersionOut]:
    rows = await legal.versions(session, document)
    return [legal.version_out(r, with_text=True) for r in rows]


@admin_router.get(
    "/users/{user_id}/acceptances",
    dependencies=[require("users:read")],
    tags=["users"],
    summary="The legal versions the user accepted: by which action, when, from where",
)
async def list_acceptances(session: Reader, user_id: PathId) -> list[AcceptanceOut]:
    found = await legal.acceptances(session, user_id)
    return [AcceptanceOut.model_validate(a, from_attributes=True) for a in found]
