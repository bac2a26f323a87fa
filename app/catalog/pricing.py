"""Pricing rules: what we charge for a service mapped to a provider's service.

A rule is either `fixed` (our rate is what the operator set) or `markup`: the provider's
rate converted into the panel's currency, × multiplier + fixed, rounded up to the rule's
step. Cost is the converted provider rate; no rule may leave a service on sale below it
(the catalog sync disables the service and alerts when a fixed rate falls under it).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal

from app.catalog.models import FIXED, MARKUP, Service

DEFAULT_STEP = Decimal("0.00001")


@dataclass(frozen=True)
class PricingRule:
    mode: str = MARKUP
    multiplier: Decimal = Decimal("1.5")
    fixed: Decimal = Decimal(0)
    step: Decimal = DEFAULT_STEP

    @classmethod
    def of(cls, service: Service) -> PricingRule:
        if service.pricing != MARKUP:
            return cls(FIXED)
        return cls(
            MARKUP,
            service.price_multiplier if service.price_multiplier is not None else Decimal(1),
            service.price_fixed or Decimal(0),
            service.price_step or DEFAULT_STEP,
        )

    def price(self, cost: Decimal) -> Decimal:
        """Our rate for a provider rate of `cost` (already in the panel's currency)."""
        assert self.mode == MARKUP
        rate = cost * self.multiplier + self.fixed
        step = self.step if self.step > 0 else DEFAULT_STEP
        return (rate / step).to_integral_value(rounding=ROUND_CEILING) * step

    def columns(self) -> dict[str, object]:
        """What a service stores of this rule."""
        if self.mode == FIXED:
            return {"pricing": FIXED}
        return {
            "pricing": MARKUP,
            "price_multiplier": self.multiplier,
            "price_fixed": self.fixed,
            "price_step": self.step,
        }


def cost_of(provider_rate: Decimal, fx_rate: Decimal) -> Decimal:
    """A provider rate in the panel's currency (8 places, rounded up: a cost is never
    under-estimated)."""
    return (provider_rate * fx_rate).quantize(Decimal("0.00000001"), rounding=ROUND_CEILING)
