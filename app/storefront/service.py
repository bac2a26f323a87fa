"""The storefront's name, logo and legal texts as the operator sets them at run time
(`PUT /admin/v1/storefront`, the operator page /web/operator), taking precedence over the
settings, which stay the defaults: a value removed here brings its setting back.

Everything here is checked before it is kept, whichever front end sent it: the name is
1–NAME_MAX characters without control characters; a legal text is plain text (never
markup; the pages escape it) of at most TEXT_MAX characters, its line ends normalised; a
logo is a PNG, SVG, JPEG or WebP image of at most LOGO_MAX_BYTES whose bytes are what its
declared type says (an HTML page sent as image/png is refused). Pages read the row on
every request, so a change shows on the next page load in every process.
"""

from __future__ import annotations

import asyncio
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import utcnow
from app.errors import DomainError, IncorrectRequest
from app.http.audit import Auditor
from app.settings import Settings
from app.storefront import analytics
from app.storefront.models import (
    LEGAL_TEXTS,
    LOGO_MAX_BYTES,
    LOGO_TYPES,
    NAME_MAX,
    ROW,
    TEXT_MAX,
    Storefront,
)
from app.storefront.schemas import LogoOut, StorefrontOut

# The logo file of PANEL_LOGO: its type from its suffix.
FILE_TYPES = {
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
}
# An SVG document: optional XML declaration, comments and a DOCTYPE without an internal
# subset (no entity definitions), then the <svg> element.
SVG_START = re.compile(
    r"\s*(?:<\?xml[^>]*\?>\s*)?(?:<!--.*?-->\s*)*(?:<!DOCTYPE[^>\[]*>\s*)?(?:<!--.*?-->\s*)*"
    r"<svg[\s>/]",
    re.DOTALL | re.IGNORECASE,
)


class StorefrontRefused(DomainError):
    http_status = 422


class NameRefused(StorefrontRefused):
    http_status = 422
    field = "name"
    message = f"The panel's name must be 1 to {NAME_MAX} characters, without control characters"


class TextRefused(StorefrontRefused):
    http_status = 422
    message = f"A legal text must be plain text of at most {TEXT_MAX} characters"


class LogoTypeRefused(StorefrontRefused):
    http_status = 415
    field = "logo"
    message = "The logo must be a PNG, SVG, JPEG or WebP image"


class LogoTooLarge(StorefrontRefused):
    http_status = 413
    field = "logo"
    message = f"The logo must be at most {LOGO_MAX_BYTES // 1024} KB"


class LogoUnreadable(StorefrontRefused):
    http_status = 422
    field = "logo"
    message = "The file is not the image its type says"


# --- checks -------------------------------------------------------------------------------


def clean_name(name: str | None) -> str | None:
    """The name as kept (None: PANEL_NAME applies)."""
    if name is None:
        return None
    text = name.strip()
    if not 1 <= len(text) <= NAME_MAX or any(unicodedata.category(c) == "Cc" for c in text):
        raise NameRefused()
    return text


def clean_text(text: str | None) -> str | None:
    """A legal text as kept: line ends normalised to \\n; empty is None (the file applies)."""
    if text is None:
        return None
    normal = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    if len(normal) > TEXT_MAX or "\x00" in normal:
        raise TextRefused()
    return normal or None


def logo_type(content: bytes, declared: str) -> str:
    """The logo's content type, if the image may be kept: an allowed type, within the size,
    and bytes that are what the type says."""
    kind = declared.split(";", 1)[0].strip().lower()
    if kind not in LOGO_TYPES:
        raise LogoTypeRefused()
    if len(content) > LOGO_MAX_BYTES:
        raise LogoTooLarge()
    if not _looks_like(kind, content):
        raise LogoUnreadable()
    return kind


def _looks_like(kind: str, content: bytes) -> bool:
    if kind == "image/png":
        return content.startswith(b"\x89PNG\r\n\x1a\n")
    if kind == "image/jpeg":
        return content.startswith(b"\xff\xd8\xff")
    if kind == "image/webp":
        return content[:4] == b"RIFF" and content[8:12] == b"WEBP"
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        return False
    return SVG_START.match(text) is not None


# --- changes ------------------------------------------------------------------------------


async def current(session: AsyncSession) -> Storefront | None:
    return await session.get(Storefront, ROW)


async def _row_for_update(session: AsyncSession) -> Storefront:
    await session.execute(insert(Storefront).values(id=ROW).on_conflict_do_nothing())
    row = await session.get(Storefront, ROW, with_for_update=True, populate_existing=True)
    assert row is not None
    return row


async def change(session: AsyncSession, values: Mapping[str, str | None]) -> Storefront:
    """Set the given fields (`name`, the legal texts, the analytics ids); None brings a
    field's setting back (an analytics id: the service is off)."""
    cleaned: dict[str, str | None] = {}
    for key, value in values.items():
        if key == "name":
            cleaned[key] = clean_name(value)
        elif key in LEGAL_TEXTS:
            cleaned[key] = clean_text(value)
        elif key in analytics.FIELDS:
            cleaned[key] = analytics.clean_id(key, value)
        else:
            raise IncorrectRequest(f"Unknown storefront field {key}")
    row = await _row_for_update(session)
    for key, value in cleaned.items():
        setattr(row, key, value)
    row.updated_at = utcnow()
    await session.flush()
    return row


async def set_logo(session: AsyncSession, content: bytes, declared_type: str) -> Storefront:
    kind = logo_type(content, declared_type)
    row = await _row_for_update(session)
    row.logo, row.logo_type, row.updated_at = content, kind, utcnow()
    await session.flush()
    return row


async def remove_logo(session: AsyncSession) -> Storefront:
    """PANEL_LOGO (if set) applies again."""
    row = await _row_for_update(session)
    row.logo, row.logo_type, row.updated_at = None, None, utcnow()
    await session.flush()
    return row


# --- the operator's changes, audited -------------------------------------------------------
# The storefront's switch is offered by /admin/v1/storefront and the operator page
# /web/operator: both change it through these, so every change, whichever front end made
# it, writes the same audit entry (before and after; a logo by its type, size and digest)
# in the same transaction.


async def shown(session: AsyncSession, settings: Settings) -> StorefrontOut:
    """What the operator sees of the storefront: the values set here and what shows."""
    row = await current(session)
    brand_now = await brand(session, settings)
    info = await logo_info(session)
    return StorefrontOut(
        name=row.name if row else None,
        shown_name=brand_now.name,
        logo=LogoOut(**vars(info)) if info else None,
        terms=row.terms if row else None,
        privacy_policy=row.privacy_policy if row else None,
        terms_of_use=row.terms_of_use if row else None,
        metrica_id=row.metrica_id if row else None,
        ga_id=row.ga_id if row else None,
        chaport_id=row.chaport_id if row else None,
        updated_at=row.updated_at if row else None,
    )


def logo_of(out: StorefrontOut) -> dict[str, Any]:
    """What the audit log keeps of a logo change: its type, size and digest."""
    return {"logo": out.logo.model_dump() if out.logo else None}


async def change_audited(
    session: AsyncSession, audit: Auditor, settings: Settings, values: Mapping[str, str | None]
) -> StorefrontOut:
    """`change`, with its audit entry."""
    before = await shown(session, settings)
    await change(session, values)
    after = await shown(session, settings)
    await audit("storefront.update", "storefront", None, before=before, after=after)
    return after


async def set_logo_audited(
    session: AsyncSession, audit: Auditor, settings: Settings, content: bytes, declared: str
) -> StorefrontOut:
    """`set_logo`, with its audit entry."""
    before = await shown(session, settings)
    await set_logo(session, content, declared)
    after = await shown(session, settings)
    await audit("storefront.logo", "storefront", None, before=logo_of(before), after=logo_of(after))
    return after


async def remove_logo_audited(
    session: AsyncSession, audit: Auditor, settings: Settings
) -> StorefrontOut:
    """`remove_logo`, with its audit entry."""
    before = await shown(session, settings)
    await remove_logo(session)
    after = await shown(session, settings)
    await audit(
        "storefront.logo_remove", "storefront", None, before=logo_of(before), after=logo_of(after)
    )
    return after


# --- what the pages show ------------------------------------------------------------------


NO_ANALYTICS = analytics.Analytics()


@dataclass(frozen=True)
class Brand:
    """What every page shows: the panel's name, and whether there is a logo to serve."""

    name: str
    logo: bool
    analytics: analytics.Analytics = NO_ANALYTICS


async def brand(session: AsyncSession, settings: Settings) -> Brand:
    row = (
        await session.execute(
            select(
                Storefront.name,
                Storefront.logo_type,
                Storefront.metrica_id,
                Storefront.ga_id,
                Storefront.chaport_id,
            ).where(Storefront.id == ROW)
        )
    ).first()
    name = row.name if row is not None and row.name else settings.panel_name
    stored_logo = row is not None and row.logo_type is not None
    ids = (
        analytics.Analytics(row.metrica_id, row.ga_id, row.chaport_id)
        if row is not None
        else NO_ANALYTICS
    )
    return Brand(name=name, logo=stored_logo or bool(settings.panel_logo), analytics=ids)


@dataclass(frozen=True)
class Logo:
    """The logo to serve: the bytes kept here, or the PANEL_LOGO file."""

    content_type: str
    content: bytes | None = None
    path: Path | None = None


async def logo(session: AsyncSession, settings: Settings) -> Logo | None:
    row = (
        await session.execute(
            select(Storefront.logo, Storefront.logo_type).where(Storefront.id == ROW)
        )
    ).first()
    if row is not None and row.logo is not None and row.logo_type is not None:
        return Logo(row.logo_type, content=row.logo)
    return await asyncio.to_thread(logo_file, settings.panel_logo)


def logo_file(path: str | None) -> Logo | None:
    kind = FILE_TYPES.get(Path(path).suffix.lower()) if path else None
    if not path or kind is None or not Path(path).is_file():
        return None
    return Logo(kind, path=Path(path))


@dataclass(frozen=True)
class LogoInfo:
    content_type: str
    size: int
    sha256: str


async def logo_info(session: AsyncSession) -> LogoInfo | None:
    """The logo kept here, described (its bytes stay in the database)."""
    row = (
        await session.execute(
            select(
                Storefront.logo_type,
                func.octet_length(Storefront.logo),
                func.encode(func.sha256(Storefront.logo), "hex"),
            ).where(Storefront.id == ROW, Storefront.logo.is_not(None))
        )
    ).first()
    return None if row is None else LogoInfo(row[0], int(row[1]), str(row[2]))


async def legal_text(session: AsyncSession, settings: Settings, kind: str) -> str | None:
    """A legal text: the one kept here, else its file's (None when neither is set)."""
    if kind not in LEGAL_TEXTS:
        raise IncorrectRequest(f"Unknown legal text {kind}")
    kept = await session.scalar(select(getattr(Storefront, kind)).where(Storefront.id == ROW))
    if kept:
        return str(kept)
    return await asyncio.to_thread(read_text, getattr(settings, LEGAL_TEXTS[kind]))


def read_text(path: str | None) -> str | None:
    if not path:
        return None
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
