"""The staff domain's refusals, each with its HTTP status and problem slug. Sign-in
mistakes reuse the customers' errors (same words, same problem types)."""

from __future__ import annotations

from decimal import Decimal

from app.errors import Conflict, DomainError, NotFound
from app.money import plain


class StaffNotFound(NotFound):
    http_status = 404
    message = "Staff member not found"


class StaffEmailTaken(Conflict):
    http_status = 409
    slug = "email-taken"
    message = "A staff member with this email already exists"


class UnknownRole(DomainError):
    http_status = 422
    slug = "unknown-role"

    def __init__(self, roles: tuple[str, ...]) -> None:
        super().__init__("Unknown role: one of " + ", ".join(roles))


class StaffDisabled(DomainError):
    http_status = 403
    slug = "staff-disabled"
    message = "This staff account is disabled"


class LastOwner(Conflict):
    http_status = 409
    slug = "last-owner"
    message = "The last active owner cannot be disabled or given another role"


class PermissionDenied(DomainError):
    """Something the caller's role does not allow, found past the route's own check (an
    amount above a limit); names the permission that would allow it."""

    http_status = 403
    slug = "permission-denied"

    def __init__(self, permission: str, message: str) -> None:
        self.permission = permission
        self.extra = {"permission": permission}
        super().__init__(message)


class RefundAboveLimit(PermissionDenied):
    http_status = 403

    def __init__(self, limit: Decimal) -> None:
        super().__init__(
            "reviews:refund",
            f"A refund above {plain(limit)} on a review needs the permission reviews:refund",
        )
