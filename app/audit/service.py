"""Writing audit entries (in the caller's transaction) and reading them back."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.models import AuditEntry


async def record(
    session: AsyncSession,
    *,
    actor: str,
    staff_id: int | None = None,
    action: str,
    entity: str,
    entity_id: object = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    session.add(
        AuditEntry(
            actor=actor,
            staff_id=staff_id,
            action=action,
            entity=entity,
            entity_id=None if entity_id is None else str(entity_id),
            before=before,
            after=after,
        )
    )
    await session.flush()


async def list_entries(
    session: AsyncSession,
    *,
    limit: int = 100,
    offset: int = 0,
    entity: str | None = None,
    entity_id: str | None = None,
    staff_id: int | None = None,
    actor: str | None = None,
) -> list[AuditEntry]:
    """The log, newest first, filtered by what changed and by who changed it."""
    stmt = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit).offset(offset)
    if entity:
        stmt = stmt.where(AuditEntry.entity == entity)
    if entity_id:
        stmt = stmt.where(AuditEntry.entity_id == entity_id)
    if staff_id is not None:
        stmt = stmt.where(AuditEntry.staff_id == staff_id)
    if actor:
        stmt = stmt.where(AuditEntry.actor == actor)
    return list(await session.scalars(stmt))
