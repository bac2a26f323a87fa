"""A service's upstream side as the operator manages it: its backup providers (failover,
see app/flows/relay/) and the confirmation of a type the provider changed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.alerts import service as alerts
from app.catalog.models import Service, ServiceBackup
from app.errors import Conflict

HELD_TYPE = "type_changed"  # services.held while a type change waits for the operator


@dataclass(frozen=True)
class Backup:
    provider_id: int
    provider_service_id: str
    provider_rate: Decimal | None


async def backups_of(session: AsyncSession, service_id: int) -> list[ServiceBackup]:
    return list(
        await session.scalars(
            select(ServiceBackup)
            .where(ServiceBackup.service_id == service_id)
            .order_by(ServiceBackup.position)
        )
    )


async def set_backups(
    session: AsyncSession, service: Service, backups: Sequence[Backup]
) -> list[ServiceBackup]:
    """Replace the service's backup providers, tried in this order after its own."""
    pairs = [(b.provider_id, b.provider_service_id) for b in backups]
    if (
        len(set(pairs)) != len(pairs)
        or (
            service.provider_id,
            service.provider_service_id,
        )
        in pairs
    ):
        raise Conflict("A provider service is listed twice (or is the service's own)")
    await session.execute(delete(ServiceBackup).where(ServiceBackup.service_id == service.id))
    rows = [
        ServiceBackup(
            service_id=service.id,
            position=n,
            provider_id=b.provider_id,
            provider_service_id=b.provider_service_id,
            provider_rate=b.provider_rate,
        )
        for n, b in enumerate(backups, start=1)
    ]
    session.add_all(rows)
    await session.flush()
    return rows


async def confirm_type(session: AsyncSession, service: Service) -> Service:
    """Accept the type the provider changed to and put the service back on sale."""
    if service.held != HELD_TYPE or service.pending_type is None:
        raise Conflict("No type change waits for confirmation on this service")
    service.type = service.pending_type
    service.pending_type = None
    service.held = None
    service.enabled = service.deleted_at is None
    await alerts.resolve(session, alerts.TYPE_CHANGED, "service", service.id)
    await session.flush()
    return service
