"""Typed domain errors: a refusal the user can act on, raised by the rule that decides it
and only rendered by the front ends.

Every error class declares what each front end needs to render it:

- `message`: the exact API v2 wire string (`{"error": message}`), which the other front
  ends show as well (the storefront in the page's language);
- `http_status`: the status of the JSON APIs' problem answer (/client/v1, /admin/v1);
- `field`: the storefront form field the refusal belongs to, marked `aria-invalid` with the
  message next to it (None: the form as a whole);
- a stable problem `type`, `/errors/<slug>`: the `slug` a class declares (its subclasses
  keep it), else its own name in kebab case (IncorrectLink -> /errors/incorrect-link).

The tree's trunk, the rest growing in the domains (`tests/test_errors.py` lists every
class with its status and type, a contract):

    DomainError                  422  /errors/invalid-request
    ├── NotFound                 404
    ├── Conflict                 409  (reviews, tickets, payments…)
    ├── NotEnoughFunds           409  /errors/insufficient-funds
    └── the order's refusals     422  (IncorrectLink, QuantityTooSmall, InvalidField…)
"""

from __future__ import annotations

import re
from typing import ClassVar

DEFAULT_SLUG = "invalid-request"


def kebab(name: str) -> str:
    """A class name as a problem type slug: IncorrectLink -> incorrect-link."""
    return re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()


class DomainError(Exception):
    """A refusal the user can act on; `message` is the exact wire string."""

    message: str = "Incorrect request"
    http_status: int = 422
    field: str | None = None
    # Declared by a class that answers a type other than its own name's (inherited).
    slug: ClassVar[str | None] = None
    # Headers the JSON APIs add to the problem answer (Retry-After, WWW-Authenticate).
    headers: dict[str, str] | None = None

    def __init__(self, message: str | None = None) -> None:
        if message is not None:
            self.message = message
        super().__init__(self.message)

    @property
    def problem_type(self) -> str:
        """The stable problem type of this refusal: /errors/<slug>."""
        return problem_type_of(type(self))


def problem_type_of(kind: type[DomainError]) -> str:
    """/errors/<slug>: the slug the class or its nearest ancestor declares, else the
    class's own name in kebab case."""
    for klass in kind.__mro__:
        if klass is DomainError:
            break
        declared = vars(klass).get("slug")
        if isinstance(declared, str):
            return f"/errors/{declared}"
    return f"/errors/{DEFAULT_SLUG if kind is DomainError else kebab(kind.__name__)}"


class InvalidApiKey(DomainError):
    http_status = 422
    message = "Invalid API key"


class IncorrectRequest(DomainError):
    http_status = 422
    message = "Incorrect request"


class IncorrectServiceId(DomainError):
    http_status = 422
    field = "service"
    message = "Incorrect service ID"


class IncorrectOrderId(DomainError):
    http_status = 422
    field = "orders"  # the storefront's forms name orders in `orders` (a ticket's)
    message = "Incorrect order ID"


class IncorrectLink(DomainError):
    http_status = 422
    field = "link"
    message = "Incorrect link"


class InvalidField(DomainError):
    """A field of an order's type is missing or malformed: `Incorrect <field>`, or the
    rule it broke."""

    http_status = 422

    def __init__(self, field: str, message: str | None = None) -> None:
        self.field = field
        super().__init__(message or f"Incorrect {field}")


class QuantityTooSmall(DomainError):
    http_status = 422
    field = "quantity"

    def __init__(self, minimum: int) -> None:
        super().__init__(f"Quantity less than minimal {minimum}")


class QuantityTooLarge(DomainError):
    http_status = 422
    field = "quantity"

    def __init__(self, maximum: int) -> None:
        super().__init__(f"Quantity more than maximal {maximum}")


class NotEnoughFunds(DomainError):
    http_status = 409
    slug = "insufficient-funds"
    message = "Not enough funds on balance"


class DuplicateActiveOrder(DomainError):
    http_status = 422
    field = "link"
    message = "You have active order with this link. Please wait until order being completed."


class IncorrectRequestId(DomainError):
    http_status = 422
    message = "Incorrect request ID"


class RequestIdReused(DomainError):
    http_status = 422
    message = "Request ID already used with other parameters"


class RefillNotFound(DomainError):
    http_status = 422
    message = "Refill not found"


class RefillDisabled(DomainError):
    http_status = 422
    message = "Refill is disabled for this service"


class CancelDisabled(DomainError):
    http_status = 422
    message = "Cancel is disabled for this service"


class NotFound(DomainError):
    http_status = 404
    message = "Not found"


class Conflict(DomainError):
    http_status = 409
    message = "Conflict"


class OrderUnderReview(Conflict):
    """ToS 2.5: an order sent to Support for review keeps its target as it is."""

    http_status = 409
    message = "Order is under review by Support: it cannot be changed until the review ends"


class LinkUnderReview(Conflict):
    """ToS 2.5: no new order on the target (link and service) of an order under review."""

    http_status = 409
    message = (
        "An order on this link and service is under review by Support: wait until the review ends"
    )
