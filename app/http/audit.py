"""The before/after audit entry of an operator's change, written once for every route.

`audit: Audit` in a handler is bound to the request's transaction and caller; the entry
is written in the same transaction as the change, so there is no change without its entry,
and it names who acted (the staff member, with their id, or the admin token).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import Depends
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import record
from app.http.auth import Operator, Principal
from app.http.tx import Tx

Snapshot = BaseModel | Mapping[str, Any] | None


def snapshot(value: Snapshot) -> dict[str, Any] | None:
    """What the audit log keeps of a value: JSON-ready, money as exact strings."""
    if value is None:
        return None
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    return dict(value)


async def audited(
    session: AsyncSession,
    actor: str,
    action: str,
    entity: str,
    entity_id: object = None,
    *,
    before: Snapshot = None,
    after: Snapshot = None,
    staff_id: int | None = None,
) -> None:
    await record(
        session,
        actor=actor,
        staff_id=staff_id,
        action=action,
        entity=entity,
        entity_id=entity_id,
        before=snapshot(before),
        after=snapshot(after),
    )


class Auditor:
    def __init__(self, session: AsyncSession, principal: Principal) -> None:
        self.session = session
        self.principal = principal

    @property
    def actor(self) -> str:
        """Who acted, as the audit log, the ledger and the tickets name them."""
        return self.principal.name

    async def __call__(
        self,
        action: str,
        entity: str,
        entity_id: object = None,
        *,
        before: Snapshot = None,
        after: Snapshot = None,
    ) -> None:
        await audited(
            self.session,
            self.actor,
            action,
            entity,
            entity_id,
            before=before,
            after=after,
            staff_id=self.principal.staff_id,
        )


def auditor(tx: Tx, operator: Operator) -> Auditor:
    return Auditor(tx, operator)


Audit = Annotated[Auditor, Depends(auditor)]
