"""What the storefront's API page documents of API v2: every action with its parameters
and an example answer, the fields of each service type (from the types themselves), the
statuses, the refusals clients match on, and samples in PHP and Python. The wire shapes
are SPEC.md's; the page fills in the customer's key and the panel's address."""

from __future__ import annotations

from dataclasses import dataclass

from app import errors
from app.orders.models import STATUSES
from app.orders.types import SERVICE_TYPES, field_names
from app.refills.models import REFILL_STATUSES


@dataclass(frozen=True)
class Action:
    name: str
    what: str  # English words, translated on the page
    params: str
    answer: str


ACTIONS = (
    Action(
        "services",
        "The services you can order, with your prices",
        "",
        '[{"service": 1, "name": "Followers", "type": "Default", "category": "Instagram", '
        '"rate": "0.90", "min": "50", "max": "10000", "refill": true, "cancel": true, '
        '"dripfeed": true, "average_time": "135"}]',
    ),
    Action(
        "add",
        "Place an order (the fields of the service's type, below)",
        "service, link, quantity [, runs, interval]",
        '{"order": 23501}',
    ),
    Action(
        "status",
        "An order's status",
        "order",
        '{"charge": "0.27819", "start_count": "3572", "status": "Partial", '
        '"remains": "157", "currency": "USD"}',
    ),
    Action(
        "status",
        "Several orders' status (up to 100 ids)",
        "orders=1,10,100",
        '{"1": {"charge": "0.27819", "start_count": "3572", "status": "Partial", '
        '"remains": "157", "currency": "USD"}, "10": {"error": "Incorrect order ID"}}',
    ),
    Action("refill", "Ask for a refill", "order", '{"refill": "1"}'),
    Action(
        "refill",
        "Refills of several orders (up to 100)",
        "orders=1,3",
        '[{"order": 1, "refill": 1}, {"order": 3, "refill": {"error": "Incorrect order ID"}}]',
    ),
    Action("refill_status", "A refill's status", "refill", '{"status": "Completed"}'),
    Action(
        "refill_status",
        "Several refills' status (up to 100)",
        "refills=1,3",
        '[{"refill": 1, "status": "Completed"}, '
        '{"refill": 3, "status": {"error": "Refill not found"}}]',
    ),
    Action(
        "cancel",
        "Cancel orders (up to 100)",
        "orders=2,9",
        '[{"order": 2, "cancel": 1}, {"order": 9, "cancel": {"error": "Incorrect order ID"}}]',
    ),
    Action("balance", "Your balance", "", '{"balance": "100.84292", "currency": "USD"}'),
)

# The refusals clients match on (the wire strings, always English).
REFUSALS = (
    errors.InvalidApiKey.message,
    errors.IncorrectRequest.message,
    errors.IncorrectServiceId.message,
    errors.IncorrectOrderId.message,
    errors.IncorrectLink.message,
    "Incorrect quantity",
    "Quantity less than minimal N",
    "Quantity more than maximal N",
    errors.NotEnoughFunds.message,
    errors.DuplicateActiveOrder.message,
    errors.RefillNotFound.message,
    errors.RefillDisabled.message,
    errors.CancelDisabled.message,
)


def type_fields() -> list[tuple[str, list[str], list[str]]]:
    """Each service type with its required and optional `add` fields."""
    rows = []
    for name in SERVICE_TYPES:
        names = field_names(name)
        required = [n for n in names if not n.endswith("?")]
        optional = [n.rstrip("?") for n in names if n.endswith("?")]
        rows.append((name, required, optional))
    return rows


def statuses() -> tuple[tuple[str, ...], tuple[str, ...]]:
    return STATUSES, REFILL_STATUSES
