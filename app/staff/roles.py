"""The role matrix: which permission each staff role holds. One table, read by the
operator API (`require(...)` on every /admin/v1 route), the console's pages and the
README; a permission not named here does not exist, and a role holds exactly the
permissions listed for it (the owner holds every one).

Permissions are `<area>:<verb>`. A route declares the one it needs; a caller without it
is refused with 403 naming it.
"""

from __future__ import annotations

OWNER = "owner"
MANAGER = "manager"
SUPPORT = "support"
FINANCE = "finance"
ROLES = (OWNER, MANAGER, SUPPORT, FINANCE)

# Every permission with what it allows (the README's table is generated from the same words).
PERMISSIONS: dict[str, str] = {
    "users:read": "users, their sign-in state, custom rates and webhook deliveries",
    "users:write": "create, edit, block and unblock users; keys, rates, referrers, sign-in help",
    "privacy:read": "a user's data export; deletion requests",
    "privacy:write": "erase a user; complete a deletion request",
    "ledger:read": "ledger entries, the invariant check, referral rewards",
    "balances:topup": "credit a user's balance (top-up)",
    "balances:adjust": "adjust a balance, grant credit, void a referral reward",
    "payments:read": "gateway payments and their notifications",
    "reports:read": "the margin and support reports",
    "currencies:read": "conversion rates",
    "currencies:write": "set and remove conversion rates",
    "catalog:read": "categories, services and their backups",
    "catalog:write": "change categories, services, backups and pricing",
    "providers:read": "providers, their balances, catalog changes and alerts",
    "providers:write": "add, change, remove, import and sync providers",
    "orders:read": "orders, refills and the review queue",
    "orders:write": "order status, anomalies, refills and review-queue actions",
    "tickets:read": "support tickets and canned answers",
    "tickets:write": "assign, answer, annotate and close tickets; canned answers",
    "reviews:resolve": "resolve an order's review (refunds up to the support limit)",
    "reviews:refund": "refund on a review resolution above the support limit",
    "news:read": "the announcements published to customers",
    "news:write": "publish, change and remove announcements",
    "settings:read": "the storefront's name, logo and legal texts",
    "settings:write": "change the storefront's name, logo and legal texts",
    "audit:read": "the audit log",
    "metrics:read": "the Prometheus metrics",
    "staff:read": "staff members, their sessions and tokens; the support refund limit",
    "staff:write": "add, change, disable staff; revoke their sessions and tokens; set the limit",
    "secrets:rotate": "re-encrypt the stored secrets under a new SECRET_KEY",
}

_MANAGER = frozenset(
    {
        "users:read",
        "users:write",
        "privacy:read",
        "privacy:write",
        "ledger:read",
        "currencies:read",
        "catalog:read",
        "catalog:write",
        "providers:read",
        "providers:write",
        "orders:read",
        "orders:write",
        "tickets:read",
        "tickets:write",
        "reviews:resolve",
        "reviews:refund",
        "news:read",
        "news:write",
        "settings:read",
        "metrics:read",
    }
)
_SUPPORT = frozenset(
    {
        "catalog:read",
        "orders:read",
        "tickets:read",
        "tickets:write",
        "reviews:resolve",
        "news:read",
    }
)
_FINANCE = frozenset(
    {
        "users:read",
        "ledger:read",
        "balances:topup",
        "balances:adjust",
        "payments:read",
        "reports:read",
        "currencies:read",
        "currencies:write",
        "catalog:read",
        "providers:read",
        "orders:read",
    }
)

MATRIX: dict[str, frozenset[str]] = {
    OWNER: frozenset(PERMISSIONS),
    MANAGER: _MANAGER,
    SUPPORT: _SUPPORT,
    FINANCE: _FINANCE,
}


def permissions_of(role: str) -> frozenset[str]:
    """What a role may do; an unknown role may do nothing."""
    return MATRIX.get(role, frozenset())


def check_matrix() -> None:
    """Every role names only permissions that exist (run at import: a typo fails loudly)."""
    for role, granted in MATRIX.items():
        unknown = granted - PERMISSIONS.keys()
        if unknown:
            raise ValueError(f"role {role} names unknown permissions: {sorted(unknown)}")


check_matrix()
