"""What the customer API reads and shows about sign-in, sessions and the profile. Every
body it reads is a ClientInput: an unknown field is refused (422)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from zoneinfo import available_timezones

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.http.schemas import ClientInput, example

ZONES = frozenset(available_timezones()) | {"UTC"}


class RegisterIn(ClientInput):
    model_config = example(
        email="ann@example.com",
        password="correct horse",  # noqa: S106
        language="en",
        accept_terms=True,
    )
    email: str = Field(max_length=320)
    password: str = Field(max_length=200)
    referral_code: str | None = Field(default=None, max_length=32)
    language: Literal["en", "ru"] = "en"
    accept_terms: bool = Field(
        default=False, description="must be true: the legal texts in force are accepted"
    )


class RegisteredOut(BaseModel):
    user_id: int
    email: str
    verification: Literal["sent"] = "sent"


class TokenIn(ClientInput):
    token: str = Field(max_length=200)


class VerifiedOut(BaseModel):
    verified: bool = True


class LoginIn(ClientInput):
    model_config = example(email="ann@example.com", password="correct horse", code="")  # noqa: S106
    email: str = Field(max_length=320)
    password: str = Field(max_length=200)
    code: str = Field(default="", max_length=32, description="TOTP or recovery code (2FA on)")


class LoginOut(BaseModel):
    token: str = Field(description="session token: send as `Authorization: Bearer <token>`")
    expires_at: datetime


class SessionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    created_at: datetime
    expires_at: datetime
    ip: str | None
    user_agent: str | None
    current: bool = False


class ForgotIn(ClientInput):
    email: str = Field(max_length=320)


class AcceptedOut(BaseModel):
    accepted: bool = True


class ResetIn(ClientInput):
    token: str = Field(max_length=200)
    password: str = Field(max_length=200)


class ResetOut(BaseModel):
    reset: bool = True
    sessions_revoked: int


class TotpSetupOut(BaseModel):
    secret: str
    uri: str = Field(description="otpauth:// URI for an authenticator app")


class CodeIn(ClientInput):
    code: str = Field(max_length=32)


class RecoveryCodesOut(BaseModel):
    recovery_codes: list[str]


class TwoFactorOut(BaseModel):
    enabled: bool


class MeOut(BaseModel):
    id: int
    email: str | None
    name: str | None
    language: str
    timezone: str
    currency: str
    balance: str
    email_verified: bool
    two_factor: bool
    referral_code: str | None
    created_at: datetime


class MePatch(ClientInput):
    name: str | None = Field(default=None, max_length=200)
    language: Literal["en", "ru"] | None = None
    timezone: str | None = Field(default=None, max_length=64)

    @field_validator("timezone")
    @classmethod
    def known_zone(cls, value: str | None) -> str | None:
        if value is not None and value not in ZONES:
            raise ValueError("unknown time zone (use an IANA name such as Europe/Moscow)")
        return value


class ApiKeyOut(BaseModel):
    prefix: str
    created_at: datetime


class ApiKeysOut(BaseModel):
    keys: list[ApiKeyOut]


class NewKeyOut(BaseModel):
    key: str = Field(description="shown once; the previous key stops working at once")
    prefix: str


class LoginStateOut(BaseModel):
    """The operator's view of a user's sign-in."""

    user_id: int
    has_password: bool
    email_verified_at: datetime | None
    two_factor: bool
    recovery_codes_left: int
    sessions: list[SessionOut]


class RevokedOut(BaseModel):
    revoked: int
