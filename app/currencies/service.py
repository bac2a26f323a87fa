"""Conversion into the panel's currency: rates set by operators, defaults from settings."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.currencies.models import CurrencyRate
from app.errors import Conflict, DomainError, NotFound
from app.settings import Settings


class NoConversionRate(DomainError):
    http_status = 422

    def __init__(self, code: str) -> None:
        super().__init__(f"No conversion rate for {code}")


@dataclass(frozen=True)
class Rate:
    code: str
    rate: Decimal  # panel currency per unit of `code`
    source: str  # "panel", "admin" or "settings"


def normalize_code(code: str) -> str:
    return code.strip().upper()


async def conversion_rate(session: AsyncSession, settings: Settings, code: str) -> Decimal:
    """Panel currency per unit of `code`; NoConversionRate when none is known."""
    code = normalize_code(code)
    if code == normalize_code(settings.currency):
        return Decimal(1)
    rate = await session.scalar(select(CurrencyRate.rate).where(CurrencyRate.code == code))
    if rate is None:
        rate = settings.currency_rates.get(code)
    if rate is None or rate <= 0:
        raise NoConversionRate(code)
    return rate


async def list_rates(session: AsyncSession, settings: Settings) -> list[Rate]:
    rates = {
        normalize_code(code): Rate(normalize_code(code), rate, "settings")
        for code, rate in settings.currency_rates.items()
    }
    for row in await session.scalars(select(CurrencyRate)):
        rates[row.code] = Rate(row.code, row.rate, "admin")
    panel = normalize_code(settings.currency)
    rates[panel] = Rate(panel, Decimal(1), "panel")
    return sorted(rates.values(), key=lambda r: r.code)


async def set_rate(session: AsyncSession, code: str, rate: Decimal) -> None:
    stmt = pg_insert(CurrencyRate).values(code=normalize_code(code), rate=rate)
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[CurrencyRate.code], set_={"rate": rate, "updated_at": func.now()}
        )
    )


class OwnCurrency(Conflict):
    http_status = 409
    message = "The panel's own currency always converts at 1"


class NoOperatorRate(NotFound):
    http_status = 404
    message = "No operator-set rate for this currency"


async def set_operator_rate(
    session: AsyncSession, settings: Settings, code: str, rate: Decimal
) -> Decimal | None:
    """An operator's rate for a currency (never the panel's own); the rate before, if any."""
    code = normalize_code(code)
    if code == normalize_code(settings.currency):
        raise OwnCurrency()
    try:
        before: Decimal | None = await conversion_rate(session, settings, code)
    except NoConversionRate:
        before = None
    await set_rate(session, code, rate)
    return before


async def remove_operator_rate(session: AsyncSession, code: str) -> None:
    """The settings' default (if any) applies again."""
    if not await delete_rate(session, code):
        raise NoOperatorRate()


async def delete_rate(session: AsyncSession, code: str) -> bool:
    result = await session.execute(
        delete(CurrencyRate)
        .where(CurrencyRate.code == normalize_code(code))
        .returning(CurrencyRate.code)
    )
    return result.first() is not None
