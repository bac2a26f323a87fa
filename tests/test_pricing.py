"""Pricing rules as numbers: a markup rounds up to its step, a cost is never under-estimated."""

from __future__ import annotations

from decimal import Decimal

import pytest

from app.catalog.pricing import PricingRule, cost_of


@pytest.mark.parametrize(
    ("multiplier", "fixed", "step", "cost", "rate"),
    [
        ("2", "0.01", "0.01", "0.40", "0.81"),
        ("2", "0.01", "0.01", "0.503", "1.02"),  # 1.016 rounds up
        ("1.5", "0", "0.00001", "0.333333", "0.50000"),  # 0.4999995 rounds up
        ("1", "0", "0.05", "1.01", "1.05"),
        ("1.2", "0.10", "1", "10", "13"),  # 12.10 rounds up to a whole unit
    ],
)
def test_markup_rounds_up_to_its_step(
    multiplier: str, fixed: str, step: str, cost: str, rate: str
) -> None:
    rule = PricingRule("markup", Decimal(multiplier), Decimal(fixed), Decimal(step))
    price = rule.price(Decimal(cost))
    assert price == Decimal(rate) and price >= Decimal(cost)


def test_cost_in_the_panel_currency_rounds_up_at_eight_places() -> None:
    assert cost_of(Decimal("0.40"), Decimal("0.011")) == Decimal("0.0044")
    assert cost_of(Decimal("0.123456789"), Decimal(1)) == Decimal("0.12345679")
