"""The catalog as users see it: enabled services with the user's effective rate (a custom
rate, or the service's rate less the user's discount); and the operator's changes to it
(categories, services, custom rates), with the rules every front end applies the same way:
a removed service stays removed, a service is mapped upstream with both halves of the
mapping or none, its bounds stay in order, a category in use is not deleted."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Label, Select, and_, delete, func, literal_column, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.models import User
from app.catalog.models import Category, Service, UserRate
from app.catalog.sql import effective_rate
from app.db import utcnow
from app.errors import Conflict, DomainError, IncorrectServiceId, NotFound

# A service row's version: it changes with every update of the row.
ROW_VERSION: Label[str] = literal_column("services.xmin::text").label("row_version")


@dataclass(frozen=True)
class OfferedService:
    service: Service
    category: str
    rate: Decimal  # the rate this user pays (custom rate or the service's)


def _offered(user_id: int) -> Select[Service, str, Decimal | None, Decimal | None]:
    # The rate itself is computed by `effective_rate` (its SQL twin is in catalog/sql.py).
    discount = select(User.discount_percent).where(User.id == user_id).scalar_subquery()
    return (
        select(Service, Category.name, UserRate.rate, discount)
        .join(Category, Category.id == Service.category_id)
        .outerjoin(UserRate, and_(UserRate.service_id == Service.id, UserRate.user_id == user_id))
        .where(Service.enabled, Service.deleted_at.is_(None), Category.enabled)
    )


async def list_offered(session: AsyncSession, user_id: int) -> list[OfferedService]:
    stmt = _offered(user_id).order_by(Category.position, Category.id, Service.position, Service.id)
    rows = (await session.execute(stmt)).all()
    return [OfferedService(s, c, effective_rate(s.rate, d, r)) for s, c, r, d in rows]


async def get_offered(session: AsyncSession, user_id: int, service_id: int) -> OfferedService:
    """The service if this user may order it now, else IncorrectServiceId."""
    row = (await session.execute(_offered(user_id).where(Service.id == service_id))).first()
    if row is None:
        raise IncorrectServiceId()
    service, category, custom, discount = row
    return OfferedService(service, category, effective_rate(service.rate, discount, custom))


async def get_offered_many(
    session: AsyncSession, user_id: int, service_ids: Collection[int]
) -> dict[int, tuple[OfferedService, str]]:
    """Those of `service_ids` this user may order now, each with its row version (`xmin`,
    which a statement placing orders on it re-checks), in one statement."""
    if not service_ids:
        return {}
    stmt = _offered(user_id).add_columns(ROW_VERSION).where(Service.id.in_(set(service_ids)))
    found: dict[int, tuple[OfferedService, str]] = {}
    for service, category, custom, discount, version in (await session.execute(stmt)).all():
        rate = effective_rate(service.rate, discount, custom)
        found[service.id] = (OfferedService(service, category, rate), version)
    return found


async def user_rates(session: AsyncSession, user_id: int) -> list[UserRate]:
    return list(
        await session.scalars(
            select(UserRate).where(UserRate.user_id == user_id).order_by(UserRate.service_id)
        )
    )


async def set_user_rate(
    session: AsyncSession, user_id: int, service_id: int, rate: Decimal
) -> None:
    """A custom rate of one user on one service (the user is checked by the caller)."""
    if await session.get(Service, service_id) is None:
        raise NotFound("Service not found")
    await session.execute(
        pg_insert(UserRate)
        .values(user_id=user_id, service_id=service_id, rate=rate)
        .on_conflict_do_update(index_elements=["user_id", "service_id"], set_={"rate": rate})
    )


async def remove_user_rate(session: AsyncSession, user_id: int, service_id: int) -> None:
    await session.execute(
        delete(UserRate).where(UserRate.user_id == user_id, UserRate.service_id == service_id)
    )


# Categories -------------------------------------------------------------------------------


async def get_category(session: AsyncSession, category_id: int) -> Category:
    category = await session.get(Category, category_id)
    if category is None:
        raise NotFound("Category not found")
    return category


async def list_categories(session: AsyncSession) -> list[Category]:
    return list(await session.scalars(select(Category).order_by(Category.position, Category.id)))


async def create_category(session: AsyncSession, values: Mapping[str, Any]) -> Category:
    category = Category(**values)
    session.add(category)
    await session.flush()
    return category


async def change_category(
    session: AsyncSession, category: Category, changes: Mapping[str, Any]
) -> Category:
    """Set the given fields (a None leaves a field as it is)."""
    for name, value in changes.items():
        if value is not None:
            setattr(category, name, value)
    await session.flush()
    return category


async def delete_category(session: AsyncSession, category: Category) -> None:
    used = await session.scalar(
        select(func.count(Service.id)).where(Service.category_id == category.id)
    )
    if used:
        raise CategoryNotEmpty()
    await session.delete(category)
    await session.flush()


# Services ---------------------------------------------------------------------------------

# Fields a change may set to null (the others keep their value when given null).
NULLABLE_SERVICE_FIELDS = frozenset(
    {
        "description",
        "name_ru",
        "description_ru",
        "link_pattern",
        "provider_id",
        "provider_service_id",
        "provider_rate",
        "price_multiplier",
        "price_fixed",
        "price_step",
        "stuck_after_seconds",
    }
)


class CategoryNotEmpty(Conflict):
    http_status = 409
    message = "Category still has services"


class ServiceRemoved(Conflict):
    http_status = 409
    message = "Service was removed: it cannot be enabled again; create a new service instead"


class QuantityBoundsRefused(DomainError):
    http_status = 422
    message = "min_quantity must not exceed max_quantity"


class ProviderMappingRefused(DomainError):
    """A service is relayed upstream only with both halves of the mapping: a provider
    alone (or a provider's service id alone) would look mapped and never be sent."""

    http_status = 422
    message = "provider_id and provider_service_id must be set together (or both null)"


def check_terms(
    min_quantity: int, max_quantity: int, provider_id: int | None, provider_service_id: str | None
) -> None:
    """A service's quantity bounds and its upstream mapping, as an operator sets them."""
    if min_quantity > max_quantity:
        raise QuantityBoundsRefused()
    check_provider_pair(provider_id, provider_service_id)


def check_provider_pair(provider_id: int | None, provider_service_id: str | None) -> None:
    """A service is relayed upstream only with both halves of the mapping: a provider
    alone (or a provider's service id alone) would look mapped and never be sent."""
    if (provider_id is None) != (provider_service_id is None):
        raise ProviderMappingRefused()


async def get_service(session: AsyncSession, service_id: int) -> Service:
    service = await session.get(Service, service_id)
    if service is None:
        raise NotFound("Service not found")
    return service


@dataclass(frozen=True)
class ServiceSearch:
    """The operator's filters of the service list (None: any); removed ones included."""

    category_id: int | None = None
    provider_id: int | None = None
    enabled: bool | None = None
    name: str | None = None  # a part of the name, whatever its case


async def search_services(
    session: AsyncSession, where: ServiceSearch, *, limit: int, offset: int
) -> list[Service]:
    stmt = select(Service).order_by(Service.id).limit(limit).offset(offset)
    if where.category_id is not None:
        stmt = stmt.where(Service.category_id == where.category_id)
    if where.provider_id is not None:
        stmt = stmt.where(Service.provider_id == where.provider_id)
    if where.enabled is not None:
        stmt = stmt.where(Service.enabled.is_(where.enabled))
    if where.name:
        stmt = stmt.where(Service.name.icontains(where.name, autoescape=True))
    return list(await session.scalars(stmt))


async def create_service(session: AsyncSession, values: Mapping[str, Any]) -> Service:
    """A new service from the given fields (None: the column's default)."""
    await get_category(session, values["category_id"])
    check_terms(
        values["min_quantity"],
        values["max_quantity"],
        values.get("provider_id"),
        values.get("provider_service_id"),
    )
    service = Service(**{k: v for k, v in values.items() if v is not None})
    session.add(service)
    await session.flush()
    await session.refresh(service)
    return service


async def change_service(
    session: AsyncSession, service: Service, changes: Mapping[str, Any]
) -> Service:
    """Apply an operator's change; existing orders keep the terms they were placed with.
    A null clears a field that may be empty and leaves a required one as it is."""
    if service.deleted_at is not None and changes.get("enabled"):
        raise ServiceRemoved()
    for name, value in changes.items():
        if value is None and name not in NULLABLE_SERVICE_FIELDS:
            continue
        setattr(service, name, value)
    check_terms(
        service.min_quantity,
        service.max_quantity,
        service.provider_id,
        service.provider_service_id,
    )
    await session.flush()
    await session.refresh(service)
    return service


async def remove_service(session: AsyncSession, service: Service) -> Service:
    """Soft delete: off sale and out of `services` for good; existing orders continue."""
    service.enabled = False
    service.deleted_at = utcnow()
    await session.flush()
    await session.refresh(service)
    return service
