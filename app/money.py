"""Exact money arithmetic: charges round up, refunds round down, never floats."""

from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_UP, Decimal, InvalidOperation
from functools import lru_cache

WIRE_PLACES = 5
MAX_PLACES = 8


def places_of(value: Decimal) -> int:
    """Fractional digits a value really needs (trailing zeros ignored)."""
    exponent = value.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


@lru_cache(maxsize=4096)
def precision_for_rate(rate: Decimal) -> int:
    """Charges are kept with 5 digits, or as many as the rate per unit needs (capped)."""
    per_unit = rate / 1000
    return min(MAX_PLACES, max(WIRE_PLACES, places_of(per_unit)))


def quantum(places: int) -> Decimal:
    return Decimal(1).scaleb(-places)


def charge_for(rate: Decimal, quantity: int) -> Decimal:
    """rate is per 1000 units; the charge is rounded up at the rate's precision."""
    raw = rate * quantity / 1000
    return raw.quantize(quantum(precision_for_rate(rate)), rounding=ROUND_UP)


def proportional_refund(charge: Decimal, quantity: int, remains: int) -> Decimal:
    """remains × (charge / quantity), rounded down, never above the charge."""
    if quantity <= 0 or remains <= 0:
        return Decimal(0)
    remains = min(remains, quantity)
    places = max(WIRE_PLACES, places_of(charge))
    amount = (charge * remains / quantity).quantize(quantum(places), rounding=ROUND_DOWN)
    return min(amount, charge)


def format_money(value: Decimal, min_places: int = WIRE_PLACES) -> str:
    """Wire format: at least 5 fractional digits, more only when the value has them."""
    places = max(min_places, min(MAX_PLACES, places_of(value)))
    return format(value.quantize(quantum(places)), "f")  # never exponent notation


def format_rate(rate: Decimal) -> str:
    """A rate as every front end shows it: at least two decimals ("0.90") and every digit
    it really has."""
    places = max(2, places_of(rate))
    return format(rate.quantize(quantum(places)), "f")


def plain(value: Decimal) -> str:
    """The value's own digits as a plain decimal: `0E-8` → `0.00000000`, `1E+3` → `1000`."""
    return format(value, "f")


def parse_money(text: str) -> Decimal:
    """Parse a decimal amount strictly (no floats, no exponents, no NaN)."""
    cleaned = text.strip()
    if not cleaned or any(c not in "0123456789.-+" for c in cleaned):
        raise ValueError(f"not a decimal amount: {text!r}")
    try:
        value = Decimal(cleaned)
    except InvalidOperation as exc:
        raise ValueError(f"not a decimal amount: {text!r}") from exc
    if not value.is_finite():
        raise ValueError(f"not a decimal amount: {text!r}")
    return value
