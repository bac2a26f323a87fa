"""The catalog as users see it: enabled services with the user's effective rate (a custom
rate, or the service's rate less the user's discount)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import Select, and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.models import User
from app.catalog.models import Category, Service, UserRate
from app.catalog.sql import effective_rate
from app.errors import Conflict, DomainError, IncorrectServiceId


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


async def refuse_used_category(session: AsyncSession, category_id: int) -> None:
    """Only an empty category may go."""
    used = await session.scalar(
        select(func.count(Service.id)).where(Service.category_id == category_id)
    )
    if used:
        raise CategoryNotEmpty()


def check_terms(
    min_quantity: int, max_quantity: int, provider_id: int | None, provider_service_id: str | None
) -> None:
    """A service's quantity bounds and its upstream mapping, as an operator sets them."""
    if min_quantity > max_quantity:
        raise QuantityBoundsRefused()
    if (provider_id is None) != (provider_service_id is None):
        raise ProviderMappingRefused()


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
