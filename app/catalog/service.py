"""The catalog as users see it: enabled services with the user's effective rate (a custom
rate, or the service's rate less the user's discount)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import Select, and_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.models import User
from app.catalog.models import Category, Service, UserRate
from app.catalog.sql import effective_rate
from app.errors import IncorrectServiceId


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
