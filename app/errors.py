"""Typed domain errors. The API v2 layer renders `message` as {"error": message}."""

from __future__ import annotations


class DomainError(Exception):
    """A refusal the user can act on; `message` is the exact wire string."""

    message: str = "Incorrect request"

    def __init__(self, message: str | None = None) -> None:
        if message is not None:
            self.message = message
        super().__init__(self.message)


class InvalidApiKey(DomainError):
    message = "Invalid API key"


class IncorrectRequest(DomainError):
    message = "Incorrect request"


class IncorrectServiceId(DomainError):
    message = "Incorrect service ID"


class IncorrectOrderId(DomainError):
    message = "Incorrect order ID"


class IncorrectLink(DomainError):
    message = "Incorrect link"


class InvalidField(DomainError):
    """A type-specific field is missing or malformed."""


class QuantityTooSmall(DomainError):
    def __init__(self, minimum: int) -> None:
        super().__init__(f"Quantity less than minimal {minimum}")


class QuantityTooLarge(DomainError):
    def __init__(self, maximum: int) -> None:
        super().__init__(f"Quantity more than maximal {maximum}")


class NotEnoughFunds(DomainError):
    message = "Not enough funds on balance"


class DuplicateActiveOrder(DomainError):
    message = "You have active order with this link. Please wait until order being completed."


class IncorrectRequestId(DomainError):
    message = "Incorrect request ID"


class RequestIdReused(DomainError):
    message = "Request ID already used with other parameters"


class RefillNotFound(DomainError):
    message = "Refill not found"


class RefillDisabled(DomainError):
    message = "Refill is disabled for this service"


class CancelDisabled(DomainError):
    message = "Cancel is disabled for this service"


class NotFound(DomainError):
    message = "Not found"


class Conflict(DomainError):
    message = "Conflict"


class OrderUnderReview(Conflict):
    """ToS 2.5: an order sent to Support for review keeps its target as it is."""

    message = "Order is under review by Support: it cannot be changed until the review ends"


class LinkUnderReview(Conflict):
    """ToS 2.5: no new order on the target (link and service) of an order under review."""

    message = (
        "An order on this link and service is under review by Support: wait until the review ends"
    )
