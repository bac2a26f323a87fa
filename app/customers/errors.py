"""The customer API's refusals. Each carries its HTTP status and the stable slug of its
problem `type` (/errors/<slug>); `message` is the words a front end shows."""

from __future__ import annotations

from app.errors import DomainError


class CustomerError(DomainError):
    http_status = 422
    slug = "invalid-request"


class InvalidCredentials(CustomerError):
    http_status = 401
    slug = "invalid-credentials"
    message = "Invalid email or password"


class TwoFactorRequired(CustomerError):
    http_status = 401
    slug = "two-factor-required"
    message = "Two-factor code required"


class InvalidTwoFactorCode(CustomerError):
    http_status = 401
    slug = "invalid-two-factor-code"
    message = "Invalid two-factor code"


class TwoFactorCodeUsed(InvalidTwoFactorCode):
    """A right code, already accepted (e.g. the one that just turned 2FA on): each code
    works once, so the next one must be awaited."""

    http_status = 401
    message = "This code was already used; wait for the next code of your app"


class EmailNotVerified(CustomerError):
    http_status = 403
    slug = "email-not-verified"
    message = "Email is not verified"


class AccountBlocked(CustomerError):
    http_status = 403
    slug = "account-blocked"
    message = "This account is blocked"


class NotSignedIn(CustomerError):
    http_status = 401
    slug = "not-signed-in"
    message = "Not signed in or the session has expired"
    headers = {"WWW-Authenticate": "Bearer"}


class InvalidToken(CustomerError):
    http_status = 400
    slug = "invalid-token"
    message = "Invalid or expired token"


class EmailTaken(CustomerError):
    http_status = 409
    slug = "email-taken"
    message = "A user with this email already exists"


class InvalidEmail(CustomerError):
    http_status = 422
    slug = "invalid-email"
    message = "Incorrect email"


class WeakPassword(CustomerError):
    http_status = 422
    slug = "weak-password"
    message = "Password must be 8 to 200 characters"


class TwoFactorState(CustomerError):
    http_status = 409
    slug = "two-factor-state"


class TooManyAttempts(CustomerError):
    http_status = 429
    slug = "too-many-attempts"
    message = "Too many attempts, try again later"

    def __init__(self, retry_after: int) -> None:
        super().__init__()
        self.retry_after = max(1, retry_after)
        self.headers = {"Retry-After": str(self.retry_after)}


class WrongPassword(CustomerError):
    http_status = 401
    slug = "wrong-password"
    message = "The current password is not correct"
