"""How the console's long lists are cut and read: pages of PAGE_SIZE rows (one more is
read to know whether a next page exists), or, exported as CSV, every matching row up to
EXPORT_MAX; and the filters of a list read leniently from the query string (a value that
does not parse is no filter, never an error page)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Generic, TypeVar

from app.db import MAX_ID

PAGE_SIZE = 50
EXPORT_MAX = 10_000
MAX_PAGE = 100_000

T = TypeVar("T")


@dataclass(frozen=True)
class Window:
    """The rows a list reads: one page, or (`csv`) everything up to EXPORT_MAX."""

    page: int
    csv: bool

    @property
    def limit(self) -> int:
        return EXPORT_MAX if self.csv else PAGE_SIZE + 1

    @property
    def offset(self) -> int:
        return 0 if self.csv else (self.page - 1) * PAGE_SIZE


def window(page: str | None, format: str | None) -> Window:
    number = as_int(page, 1, MAX_PAGE) or 1
    return Window(number, format == "csv")


@dataclass(frozen=True)
class Shown(Generic[T]):
    """A page of rows, and whether there are more after it."""

    rows: list[T]
    page: int
    more: bool


def shown(rows: Sequence[T], at: Window) -> Shown[T]:
    if at.csv:
        return Shown(list(rows), 1, False)
    return Shown(list(rows[:PAGE_SIZE]), at.page, len(rows) > PAGE_SIZE)


def as_int(text: str | None, low: int = 1, high: int = MAX_ID) -> int | None:
    """A whole number within [low, high], or None."""
    try:
        value = int((text or "").strip())
    except ValueError:
        return None
    return value if low <= value <= high else None


def as_id(text: str | None) -> int | None:
    return as_int(text, 1, MAX_ID)


def as_day(text: str | None) -> date | None:
    try:
        return date.fromisoformat((text or "").strip())
    except ValueError:
        return None


def day_start(day: date | None) -> datetime | None:
    return datetime.combine(day, time.min, tzinfo=UTC) if day is not None else None


def day_end(day: date | None) -> datetime | None:
    """The end of a day (exclusive), for an inclusive "to" date."""
    return day_start(day + timedelta(days=1)) if day is not None and day < date.max else None


def as_decimal(text: str | None) -> Decimal | None:
    try:
        value = Decimal((text or "").strip().replace(",", "."))
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def as_choice(text: str | None, choices: Sequence[str]) -> str | None:
    return text if text in choices else None
