"""Sign-in, sessions, two-factor, profile and API key for customers (`client_router`,
mounted under /client/v1; signing up is /client/v1's own, app/client/signup.py), and the
operator's view of a user's sign-in (`admin_router`, under /admin/v1). The
`CurrentCustomer` dependency resolves the session token."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts import service as accounts
from app.accounts.models import ApiKey
from app.customers import service as customers
from app.customers import signin
from app.customers.models import CustomerLogin
from app.customers.schemas import (
    AcceptedOut,
    ApiKeyOut,
    ApiKeysOut,
    CodeIn,
    ForgotIn,
    LoginIn,
    LoginOut,
    LoginStateOut,
    MeOut,
    MePatch,
    NewKeyOut,
    RecoveryCodesOut,
    ResetIn,
    ResetOut,
    RevokedOut,
    SessionOut,
    TokenIn,
    TotpSetupOut,
    TwoFactorOut,
    VerifiedOut,
)
from app.customers.service import Customer
from app.http.audit import Audit
from app.http.auth import require
from app.http.context import ServicesDep, get_services
from app.http.paths import PathId
from app.http.tx import Reader, Tx
from app.money import format_money

session_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="CustomerSession",
    description="the session token from POST /client/v1/login",
)


async def require_customer(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Depends(session_bearer),
) -> Customer:
    async with get_services(request).db.session() as session:
        return await customers.resolve_session(
            session, credentials.credentials if credentials else None
        )


CurrentCustomer = Annotated[Customer, Depends(require_customer)]


async def require_customer_reading(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Depends(session_bearer),
) -> Customer:
    """As `require_customer`, a blocked account included: for routes that only read."""
    async with get_services(request).db.session() as session:
        return await customers.resolve_session(
            session, credentials.credentials if credentials else None, allow_blocked=True
        )


ReadingCustomer = Annotated[Customer, Depends(require_customer_reading)]


def caller(request: Request) -> signin.Caller:
    return signin.Caller(
        ip=request.client.host if request.client else "unknown",
        user_agent=request.headers.get("user-agent"),
    )


Caller = Annotated[signin.Caller, Depends(caller)]

client_router = APIRouter(tags=["client: account"])


@client_router.post("/verify", summary="Confirm the email address with the mailed token")
async def verify(tx: Tx, services: ServicesDep, who: Caller, body: TokenIn) -> VerifiedOut:
    await signin.verify(services, tx, who, body.token)
    return VerifiedOut()


@client_router.post(
    "/login",
    summary="Sign in: a session token",
    description="With two-factor sign-in on, `code` is a current TOTP code or one of the "
    "recovery codes (each works once). Failed attempts are limited per account and per IP "
    "with growing locks (429 with Retry-After); an unknown email gets the same answers.",
)
async def login(tx: Tx, services: ServicesDep, who: Caller, body: LoginIn) -> LoginOut:
    opened = await signin.login(
        services, tx, who, email=body.email, password=body.password, code=body.code
    )
    return LoginOut(token=opened.token, expires_at=opened.row.expires_at)


@client_router.post("/logout", summary="End this session")
async def logout(tx: Tx, me: CurrentCustomer) -> RevokedOut:
    await customers.revoke_session(tx, me.user_id, me.session_id)
    return RevokedOut(revoked=1)


@client_router.get("/sessions", summary="Active sessions")
async def list_sessions(db: Reader, me: CurrentCustomer) -> list[SessionOut]:
    rows = await customers.list_sessions(db, me.user_id)
    return [
        SessionOut.model_validate(r).model_copy(update={"current": r.id == me.session_id})
        for r in rows
    ]


@client_router.delete("/sessions/{session_id}", summary="End a session")
async def delete_session(tx: Tx, me: CurrentCustomer, session_id: PathId) -> RevokedOut:
    await customers.revoke_session(tx, me.user_id, session_id)
    return RevokedOut(revoked=1)


@client_router.post(
    "/password/forgot",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Mail a password reset link",
    description="Always 202, whether the address is known or not.",
)
async def forgot(tx: Tx, services: ServicesDep, who: Caller, body: ForgotIn) -> AcceptedOut:
    await signin.forgot(services, tx, who, body.email)
    return AcceptedOut()


@client_router.post(
    "/password/reset",
    summary="Set a new password with the mailed token (every session ends)",
)
async def reset(tx: Tx, services: ServicesDep, who: Caller, body: ResetIn) -> ResetOut:
    revoked = await signin.reset(services, tx, who, body.token, body.password)
    return ResetOut(sessions_revoked=revoked)


@client_router.post("/2fa/setup", summary="Start two-factor sign-in: a TOTP secret")
async def totp_setup(tx: Tx, services: ServicesDep, me: CurrentCustomer) -> TotpSetupOut:
    user = await accounts.get_live_user(tx, me.user_id)
    made = await customers.setup_totp(tx, services.settings.secret_key, me.user_id, user.email)
    return TotpSetupOut(secret=made.secret, uri=made.uri)


@client_router.post(
    "/2fa/enable",
    summary="Turn two-factor sign-in on with a current code",
    description="Answers ten recovery codes, shown once; each signs in once in place of a code.",
)
async def totp_enable(
    tx: Tx, services: ServicesDep, me: CurrentCustomer, body: CodeIn
) -> RecoveryCodesOut:
    secret = services.settings.secret_key
    codes = await signin.confirmed(
        services, me.user_id, lambda: customers.enable_totp(tx, secret, me.user_id, body.code)
    )
    return RecoveryCodesOut(recovery_codes=codes)


@client_router.post(
    "/2fa/disable",
    summary="Turn two-factor sign-in off (needs a code)",
    description="Wrong codes are limited per account like sign-ins (429 with Retry-After).",
)
async def totp_disable(
    tx: Tx, services: ServicesDep, me: CurrentCustomer, body: CodeIn
) -> TwoFactorOut:
    secret = services.settings.secret_key
    await signin.confirmed(
        services, me.user_id, lambda: customers.disable_totp(tx, secret, me.user_id, body.code)
    )
    return TwoFactorOut(enabled=False)


async def _me(tx: AsyncSession, user_id: int) -> MeOut:
    user = await accounts.get_live_user(tx, user_id)
    login = await customers.login_of(tx, user_id)
    return MeOut(
        id=user.id,
        email=user.email,
        name=user.name,
        language=login.language,
        timezone=login.timezone,
        currency=user.currency,
        balance=format_money(user.balance),
        email_verified=login.email_verified_at is not None,
        two_factor=login.totp_enabled_at is not None,
        referral_code=user.referral_code,
        created_at=user.created_at,
    )


@client_router.get("/me", summary="The profile")
async def me_get(tx: Tx, me: CurrentCustomer) -> MeOut:
    return await _me(tx, me.user_id)


@client_router.patch("/me", summary="Change name, language (en, ru) or time zone")
async def me_patch(tx: Tx, me: CurrentCustomer, body: MePatch) -> MeOut:
    await customers.update_profile(
        tx, me.user_id, name=body.name, language=body.language, timezone=body.timezone
    )
    return await _me(tx, me.user_id)


@client_router.get("/api-key", summary="The API v2 key: prefix and dates only")
async def api_key(db: Reader, me: CurrentCustomer) -> ApiKeysOut:
    rows = await db.scalars(
        select(ApiKey)
        .where(ApiKey.user_id == me.user_id, ApiKey.revoked_at.is_(None))
        .order_by(ApiKey.id.desc())
    )
    return ApiKeysOut(keys=[ApiKeyOut(prefix=r.prefix, created_at=r.created_at) for r in rows])


@client_router.post(
    "/api-key/rotate", summary="A new API v2 key (shown once); the old one stops at once"
)
async def rotate_key(tx: Tx, me: CurrentCustomer) -> NewKeyOut:
    issued = await accounts.rotate_key(tx, me.user_id)
    return NewKeyOut(key=issued.key, prefix=issued.prefix)


admin_router = APIRouter(tags=["users"])


@admin_router.get(
    "/users/{user_id}/login",
    dependencies=[require("users:read")],
    summary="A user's sign-in: verification, 2FA, sessions",
)
async def login_state(db: Reader, user_id: PathId) -> LoginStateOut:
    await accounts.get_user(db, user_id)
    login = await db.get(CustomerLogin, user_id)
    sessions = await customers.list_sessions(db, user_id)
    return LoginStateOut(
        user_id=user_id,
        has_password=login is not None and login.password_hash is not None,
        email_verified_at=login.email_verified_at if login else None,
        two_factor=login is not None and login.totp_enabled_at is not None,
        recovery_codes_left=await customers.recovery_codes_left(db, user_id),
        sessions=[SessionOut.model_validate(s) for s in sessions],
    )


@admin_router.post(
    "/users/{user_id}/invite",
    dependencies=[require("users:write")],
    status_code=status.HTTP_202_ACCEPTED,
    summary="Mail the user a link to set a password (operator-made users)",
)
async def invite(tx: Tx, audit: Audit, services: ServicesDep, user_id: PathId) -> AcceptedOut:
    await signin.mail_invitation(services, tx, user_id)
    await audit("user.invite", "user", user_id)
    return AcceptedOut()


@admin_router.post(
    "/users/{user_id}/sessions/revoke",
    dependencies=[require("users:write")],
    summary="End every session of the user",
)
async def revoke_sessions(tx: Tx, audit: Audit, user_id: PathId) -> RevokedOut:
    await accounts.get_user(tx, user_id)
    revoked = await customers.revoke_sessions(tx, user_id)
    await audit("user.sessions_revoke", "user", user_id, after={"revoked": revoked})
    return RevokedOut(revoked=revoked)


@admin_router.post(
    "/users/{user_id}/2fa/reset",
    dependencies=[require("users:write")],
    summary="Turn the user's two-factor sign-in off",
)
async def reset_two_factor(tx: Tx, audit: Audit, user_id: PathId) -> TwoFactorOut:
    await accounts.get_user(tx, user_id)
    await customers.clear_totp(tx, user_id)
    await audit("user.2fa_reset", "user", user_id)
    return TwoFactorOut(enabled=False)
