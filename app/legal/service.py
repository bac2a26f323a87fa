"""Legal documents with versions, and the record of who accepted which version.

Publishing appends a version (never edits one); the version in force for a document is the
one published last in the customer's language, else the last in the other language. An
acceptance names the version, the action (registration, order, deposit), the time and the
client address. Registration and deposits record a row per action; orders record one row
per user and version (a unique index makes the insert of a repeat a no-op), so placing
orders under an accepted version writes nothing new.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import distinct_on, insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.customers.models import CustomerLogin
from app.errors import Conflict, DomainError, NotFound
from app.http.audit import Auditor
from app.legal.models import (
    ACTION_ORDER,
    ACTIONS,
    DOCUMENTS,
    LANGUAGES,
    TEXT_MAX,
    LegalAcceptance,
    LegalVersion,
)

IP_MAX = 64


class UnknownDocument(NotFound):
    http_status = 404
    message = "Unknown legal document"


class LegalTextRefused(DomainError):
    http_status = 422
    field = "text"
    message = f"A legal text must be plain text of 1 to {TEXT_MAX} characters"


class LegalVersionNotFound(NotFound):
    http_status = 404
    message = "Legal text version not found"


class TermsNotAccepted(Conflict):
    """A new version of a legal text was published since the customer last accepted one:
    the next order waits until the customer has seen and accepted it."""

    http_status = 409
    field = "accept_terms"
    message = "The terms have changed: read and accept the new version to continue"


class TermsRequired(DomainError):
    http_status = 422
    field = "accept_terms"
    message = "Accept the Terms of Service and the Privacy Policy to sign up"


def clean(text: str) -> str:
    normal = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    if not normal or len(normal) > TEXT_MAX or "\x00" in normal:
        raise LegalTextRefused()
    return normal


def check_document(document: str) -> str:
    if document not in DOCUMENTS:
        raise UnknownDocument()
    return document


class VersionOut(BaseModel):
    id: int
    document: str
    language: str
    published_at: datetime
    published_by: str
    text: str | None = None


def version_out(row: LegalVersion, *, with_text: bool = False) -> VersionOut:
    return VersionOut(
        id=row.id,
        document=row.document,
        language=row.language,
        published_at=row.published_at,
        published_by=row.published_by,
        text=row.text if with_text else None,
    )


async def publish(
    session: AsyncSession, document: str, language: str, text: str, *, by: str
) -> LegalVersion:
    """A new version of `document` in `language`, in force from now on."""
    check_document(document)
    if language not in LANGUAGES:
        raise LegalTextRefused("Language must be en or ru")
    row = LegalVersion(document=document, language=language, text=clean(text), published_by=by)
    session.add(row)
    await session.flush()
    await session.refresh(row)
    return row


async def publish_audited(
    session: AsyncSession, audit: Auditor, document: str, language: str, text: str
) -> VersionOut:
    """`publish`, with its audit entry (the console and /admin/v1 both call this)."""
    row = await publish(session, document, language, text, by=audit.actor)
    out = version_out(row)
    await audit("legal.publish", "legal_version", row.id, after=out)
    return out


async def versions(session: AsyncSession, document: str) -> list[LegalVersion]:
    """Every version of a document, newest first."""
    check_document(document)
    found = await session.scalars(
        select(LegalVersion)
        .where(LegalVersion.document == document)
        .order_by(LegalVersion.id.desc())
    )
    return list(found)


async def version(session: AsyncSession, document: str, version_id: int) -> LegalVersion:
    row = await session.get(LegalVersion, version_id)
    if row is None or row.document != check_document(document):
        raise LegalVersionNotFound()
    return row


async def in_force(session: AsyncSession, language: str) -> dict[str, LegalVersion]:
    """The version in force of each document that has one: the last published in
    `language`, else the last in another language."""
    rows = await session.scalars(
        select(LegalVersion)
        .ext(distinct_on(LegalVersion.document))
        .order_by(
            LegalVersion.document,
            (LegalVersion.language == language).desc(),
            LegalVersion.id.desc(),
        )
    )
    return {row.document: row for row in rows}


async def current(session: AsyncSession, document: str, language: str) -> LegalVersion | None:
    return (await in_force(session, language)).get(check_document(document))


async def language_of(session: AsyncSession, user_id: int) -> str:
    found = await session.scalar(
        select(CustomerLogin.language).where(CustomerLogin.user_id == user_id)
    )
    return str(found) if found in LANGUAGES else "en"


def bounded_ip(ip: str | None) -> str | None:
    return ip[:IP_MAX] if ip else None


async def record(
    session: AsyncSession,
    user_id: int,
    action: str,
    *,
    ip: str | None,
    reference: str | None = None,
    language: str | None = None,
) -> list[int]:
    """Record the user's acceptance of the versions in force by `action`; the version ids.

    For an order, a version the user already accepted by an order is not recorded again.
    """
    assert action in ACTIONS
    language = language or await language_of(session, user_id)
    force = await in_force(session, language)
    if not force:
        return []
    rows = [
        {
            "user_id": user_id,
            "version_id": v.id,
            "document": v.document,
            "action": action,
            "reference": reference,
            "ip": bounded_ip(ip),
        }
        for v in force.values()
    ]
    stmt = insert(LegalAcceptance).values(rows)
    if action == ACTION_ORDER:
        stmt = stmt.on_conflict_do_nothing(
            index_elements=["user_id", "version_id"],
            index_where=LegalAcceptance.action == ACTION_ORDER,
        )
    await session.execute(stmt)
    return sorted(v.id for v in force.values())


async def accepted_by_order(session: AsyncSession, user_id: int) -> None:
    """API v2's lean `add` (which runs no command): the order accepts the versions in
    force, recorded once per user and version."""
    await record(session, user_id, ACTION_ORDER, ip=None)


async def unaccepted(session: AsyncSession, user_id: int) -> list[LegalVersion]:
    """The versions in force the user has not accepted by any action yet: what the
    customer is shown once before the next order."""
    force = await in_force(session, await language_of(session, user_id))
    if not force:
        return []
    seen = set(
        await session.scalars(
            select(LegalAcceptance.version_id).where(
                LegalAcceptance.user_id == user_id,
                LegalAcceptance.version_id.in_([v.id for v in force.values()]),
            )
        )
    )
    return [v for d, v in sorted(force.items()) if v.id not in seen]


async def confirm_for_order(
    session: AsyncSession, user_id: int, *, accepted: bool, ip: str | None
) -> None:
    """Before an order on a front end the customer reads: a version published since the
    customer's last acceptance must be accepted now (TermsNotAccepted otherwise)."""
    if not await unaccepted(session, user_id):
        return
    if not accepted:
        raise TermsNotAccepted()
    await record(session, user_id, ACTION_ORDER, ip=ip)


@dataclass(frozen=True)
class Acceptance:
    document: str
    version_id: int
    action: str
    at: datetime
    ip: str | None
    reference: str | None


async def acceptances(session: AsyncSession, user_id: int) -> list[Acceptance]:
    rows = await session.scalars(
        select(LegalAcceptance)
        .where(LegalAcceptance.user_id == user_id)
        .order_by(LegalAcceptance.id)
    )
    return [Acceptance(r.document, r.version_id, r.action, r.at, r.ip, r.reference) for r in rows]
