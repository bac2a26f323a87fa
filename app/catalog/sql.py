"""The catalog's rules restated in SQL for the single-statement hot paths, each beside its
Python twin (tested as twins in tests/test_sql_twins_api.py).

The effective rate: a custom rate wins; otherwise the service's rate less the user's
discount, rounded half away from zero to `RATE_PLACES` places. Python computes it in
`effective_rate` (used by the catalog service); `effective_rate_sql` writes the same rule
over the columns of a statement (used by the `add` statement and the rate lookup).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from app.accounts.sql import WHO_FROM
from app.money import MAX_PLACES, quantum

RATE_PLACES = MAX_PLACES


def effective_rate(
    service_rate: Decimal, discount_percent: Decimal | None, custom_rate: Decimal | None
) -> Decimal:
    """What a user pays per 1000 for a service."""
    if custom_rate is not None:
        return custom_rate
    discount = discount_percent if discount_percent is not None else Decimal(0)
    raw = service_rate * (100 - discount) / 100
    return raw.quantize(quantum(RATE_PLACES), rounding=ROUND_HALF_UP)


def effective_rate_sql(service_rate: str, discount_percent: str, custom_rate: str) -> str:
    """The twin of `effective_rate` over three SQL expressions (PostgreSQL's numeric
    `round` rounds half away from zero, as ROUND_HALF_UP does)."""
    return (
        f"coalesce({custom_rate}, round({service_rate} * (100 - coalesce({discount_percent}, 0))"
        f" / 100, {RATE_PLACES}))"
    )


# The version of everything `services` shows: bumped in the same transaction as any change
# to categories, services or custom rates (statement triggers, migration 3b1f0c7a9d21), so
# a rendering keyed by it is never served after the change commits. A user's discount is
# part of the key itself (read with the version, below).
CATALOG_VERSION = "SELECT version FROM catalog_version WHERE id = 1"
CATALOG_VERSIONED_TABLES = ("categories", "services", "user_rates")

# Notified (migration a7c3e9d15b28) by every change that can alter what `services` shows a
# key: the catalog version moving, a key revoked or removed, a user's status or discount.
PRICING_CHANNEL = "smm_pricing"

# What the key's user sees in `services` depends on: the catalog version, the user's
# discount and, only for users with custom rates, the user. No row: the key is refused.
CATALOG_PRICING = f"""
SELECT u.id AS user_id, u.discount_percent,
  (SELECT version FROM catalog_version WHERE id = 1) AS version,
  EXISTS (SELECT 1 FROM user_rates r WHERE r.user_id = u.id) AS custom
FROM {WHO_FROM}
"""

# The same facts for one user, read inside the snapshot a rendering is made in.
USER_PRICING = """
SELECT u.discount_percent, EXISTS (SELECT 1 FROM user_rates r WHERE r.user_id = u.id)
FROM users u WHERE u.id = :user_id
"""
