"""Customers' sign-in: registration, verification, passwords, sessions, two-factor codes.

Every secret handed out (session token, mailed token, recovery code) is random and stored
only as its SHA-256; mailed tokens and recovery codes are single-use by a conditional
update (`used_at IS NULL`), so two concurrent uses cannot both pass. Passwords are hashed
with Argon2id; an unknown email costs the same hash as a known one.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app import keyring
from app.accounts import service as accounts
from app.accounts.models import USER_ACTIVE, User
from app.customers.errors import (
    AccountBlocked,
    EmailNotVerified,
    EmailTaken,
    InvalidCredentials,
    InvalidEmail,
    InvalidToken,
    InvalidTwoFactorCode,
    NotSignedIn,
    TwoFactorCodeUsed,
    TwoFactorRequired,
    TwoFactorState,
    WeakPassword,
    WrongPassword,
)
from app.customers.models import (
    LANGUAGES,
    TOKEN_INVITE,
    TOKEN_RESET,
    TOKEN_VERIFY,
    CustomerLogin,
    CustomerSession,
    CustomerToken,
    RecoveryCode,
)
from app.db import utcnow
from app.errors import NotFound
from app.mail.models import OutgoingMail

EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
RECOVERY_CODES = 10
# The keyring purpose of TOTP seeds at rest (see app/keyring.py and app/rotation.py).
TOTP_PURPOSE = "customer.totp"
TOTP_ISSUER = "smm-panel"

hasher = PasswordHasher()  # Argon2id with argon2-cffi's current defaults


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def normalize_email(email: str) -> str:
    value = email.strip().lower()
    if len(value) > 320 or not EMAIL.match(value):
        raise InvalidEmail()
    return value


def check_password(password: str) -> None:
    if not 8 <= len(password) <= 200:
        raise WeakPassword()


def hash_password(password: str) -> str:
    return hasher.hash(password)


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return hasher.hash(secrets.token_hex(16))


def password_matches(stored: str | None, password: str) -> bool:
    """Verify against the stored hash, or against a dummy one when there is none, so an
    unknown email takes as long as a known one."""
    try:
        return hasher.verify(stored or _dummy_hash(), password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


async def login_of(session: AsyncSession, user_id: int) -> CustomerLogin:
    """The user's sign-in row, created empty for users the operator made."""
    row = await session.get(CustomerLogin, user_id)
    if row is None:
        row = CustomerLogin(user_id=user_id, language="en", timezone="UTC")
        session.add(row)
        await session.flush()
    return row


async def user_by_email(session: AsyncSession, email: str) -> User | None:
    user: User | None = await session.scalar(
        select(User).where(func.lower(User.email) == email, User.deleted_at.is_(None))
    )
    return user


# Mailed tokens.


async def issue_token(
    session: AsyncSession, user_id: int, purpose: str, valid_for: timedelta
) -> str:
    token = secrets.token_urlsafe(32)
    session.add(
        CustomerToken(
            user_id=user_id,
            purpose=purpose,
            token_hash=digest(token),
            expires_at=utcnow() + valid_for,
        )
    )
    await session.flush()
    return token


async def use_token(session: AsyncSession, purposes: tuple[str, ...], token: str) -> int:
    """The user of a valid token, spent now; InvalidToken otherwise."""
    if not token or len(token) > 200:
        raise InvalidToken()
    user_id = await session.scalar(
        update(CustomerToken)
        .where(
            CustomerToken.token_hash == digest(token),
            CustomerToken.purpose.in_(purposes),
            CustomerToken.used_at.is_(None),
            CustomerToken.expires_at > func.now(),
        )
        .values(used_at=func.now())
        .returning(CustomerToken.user_id)
    )
    if user_id is None:
        raise InvalidToken()
    return int(user_id)


# Registration and verification.


async def register(
    session: AsyncSession,
    *,
    email: str,
    password: str,
    referral_code: str | None,
    language: str,
) -> User:
    address = normalize_email(email)
    check_password(password)
    if language not in LANGUAGES:
        language = "en"
    if await session.scalar(select(User.id).where(func.lower(User.email) == address)):
        raise EmailTaken()
    user = await accounts.create_user(session, email=address, referral_code=referral_code or None)
    session.add(
        CustomerLogin(
            user_id=user.id,
            password_hash=hash_password(password),
            language=language,
            timezone="UTC",
        )
    )
    await session.flush()
    return user


async def verify_email(session: AsyncSession, token: str) -> int:
    user_id = await use_token(session, (TOKEN_VERIFY, TOKEN_INVITE), token)
    login = await login_of(session, user_id)
    if login.email_verified_at is None:
        login.email_verified_at = utcnow()
    await session.flush()
    return user_id


# Sign-in.


@dataclass(frozen=True)
class SignIn:
    user: User
    login: CustomerLogin


async def check_password_for(session: AsyncSession, email: str, password: str) -> SignIn:
    """The account behind email and password, or InvalidCredentials (the same for an
    unknown email, after the same work)."""
    try:
        address = normalize_email(email)
    except InvalidEmail:
        password_matches(None, password)
        raise InvalidCredentials() from None
    user = await user_by_email(session, address)
    login = await session.get(CustomerLogin, user.id) if user is not None else None
    stored = login.password_hash if login is not None else None
    if not password_matches(stored, password) or user is None or login is None:
        raise InvalidCredentials()
    return SignIn(user, login)


def check_account(sign_in: SignIn) -> None:
    if sign_in.user.status != USER_ACTIVE:
        raise AccountBlocked()
    if sign_in.login.email_verified_at is None:
        raise EmailNotVerified()


async def check_second_factor(
    session: AsyncSession, secret_keyring: str, login: CustomerLogin, code: str
) -> None:
    """Nothing to check without 2FA; else a fresh TOTP code or an unused recovery code."""
    if login.totp_enabled_at is None:
        return
    code = code.strip().replace(" ", "")
    if not code:
        raise TwoFactorRequired()
    step = totp_step(totp_secret_of(secret_keyring, login), code)
    if step is not None:
        # Conditional: the same code (or an older one) is never accepted twice.
        accepted = await session.scalar(
            update(CustomerLogin)
            .where(
                CustomerLogin.user_id == login.user_id,
                func.coalesce(CustomerLogin.totp_last_step, -1) < step,
            )
            .values(totp_last_step=step)
            .returning(CustomerLogin.user_id)
        )
        if accepted is not None:
            return
        raise TwoFactorCodeUsed()
    used = await session.scalar(
        update(RecoveryCode)
        .where(
            RecoveryCode.user_id == login.user_id,
            RecoveryCode.code_hash == digest(code.upper()),
            RecoveryCode.used_at.is_(None),
        )
        .values(used_at=func.now())
        .returning(RecoveryCode.id)
    )
    if used is None:
        raise InvalidTwoFactorCode()


def totp_step(secret: str, code: str) -> int | None:
    """The time step a TOTP code belongs to (now, or one step either side), else None."""
    if not secret or not code.isdigit() or len(code) != 6:
        return None
    totp = pyotp.TOTP(secret)
    now = utcnow()
    current = totp.timecode(now)
    for offset in (0, -1, 1):
        if secrets.compare_digest(totp.at(now, counter_offset=offset), code):
            return int(current + offset)
    return None


@dataclass(frozen=True)
class OpenedSession:
    token: str
    row: CustomerSession


async def open_session(
    session: AsyncSession,
    user_id: int,
    valid_for: timedelta,
    *,
    ip: str | None,
    user_agent: str | None,
) -> OpenedSession:
    token = secrets.token_urlsafe(32)
    row = CustomerSession(
        user_id=user_id,
        token_hash=digest(token),
        expires_at=utcnow() + valid_for,
        ip=(ip or "")[:64] or None,
        user_agent=(user_agent or "")[:300] or None,
    )
    session.add(row)
    await session.flush()
    return OpenedSession(token, row)


@dataclass(frozen=True)
class Customer:
    """The signed-in caller of the customer API."""

    user_id: int
    session_id: int
    currency: str


async def resolve_session(
    session: AsyncSession, token: str | None, *, allow_blocked: bool = False
) -> Customer:
    """The signed-in customer of a session token; a blocked account only where
    `allow_blocked` (reading what they have, e.g. their support tickets)."""
    if not token or len(token) > 200:
        raise NotSignedIn()
    row = (
        await session.execute(
            select(CustomerSession.id, User.id, User.currency, User.status)
            .join(User, User.id == CustomerSession.user_id)
            .where(
                CustomerSession.token_hash == digest(token),
                CustomerSession.revoked_at.is_(None),
                CustomerSession.expires_at > func.now(),
                User.deleted_at.is_(None),
            )
        )
    ).first()
    if row is None:
        raise NotSignedIn()
    if row[3] != USER_ACTIVE and not allow_blocked:
        raise AccountBlocked()
    return Customer(user_id=row[1], session_id=row[0], currency=row[2])


async def list_sessions(session: AsyncSession, user_id: int) -> list[CustomerSession]:
    return list(
        await session.scalars(
            select(CustomerSession)
            .where(
                CustomerSession.user_id == user_id,
                CustomerSession.revoked_at.is_(None),
                CustomerSession.expires_at > func.now(),
            )
            .order_by(CustomerSession.id.desc())
        )
    )


async def revoke_session(session: AsyncSession, user_id: int, session_id: int) -> None:
    done = await session.scalar(
        update(CustomerSession)
        .where(
            CustomerSession.id == session_id,
            CustomerSession.user_id == user_id,
            CustomerSession.revoked_at.is_(None),
        )
        .values(revoked_at=func.now())
        .returning(CustomerSession.id)
    )
    if done is None:
        raise NotFound("Session not found")


async def revoke_sessions(session: AsyncSession, user_id: int) -> int:
    revoked = await session.execute(
        update(CustomerSession)
        .where(CustomerSession.user_id == user_id, CustomerSession.revoked_at.is_(None))
        .values(revoked_at=func.now())
        .returning(CustomerSession.id)
    )
    return len(revoked.all())


# Passwords.


async def start_reset(session: AsyncSession, email: str) -> SignIn | None:
    """The account to mail a reset link to; None when there is none (the caller answers
    the same either way)."""
    try:
        address = normalize_email(email)
    except InvalidEmail:
        return None
    user = await user_by_email(session, address)
    if user is None or user.status != USER_ACTIVE:
        return None
    return SignIn(user, await login_of(session, user.id))


async def reset_password(session: AsyncSession, token: str, password: str) -> int:
    """Spend the token, set the password, revoke every session (answers how many). The
    mailbox was proven, so the address counts as verified."""
    check_password(password)
    user_id = await use_token(session, (TOKEN_RESET, TOKEN_INVITE), token)
    login = await login_of(session, user_id)
    login.password_hash = hash_password(password)
    if login.email_verified_at is None:
        login.email_verified_at = utcnow()
    revoked = await revoke_sessions(session, user_id)
    await session.flush()
    return revoked


async def change_password(
    session: AsyncSession, user_id: int, *, current: str, new: str, keep_session: int
) -> int:
    """Set a new password after checking the current one; every other session ends
    (answers how many)."""
    check_password(new)
    login = await login_of(session, user_id)
    if not password_matches(login.password_hash, current):
        raise WrongPassword()
    login.password_hash = hash_password(new)
    revoked = await session.execute(
        update(CustomerSession)
        .where(
            CustomerSession.user_id == user_id,
            CustomerSession.id != keep_session,
            CustomerSession.revoked_at.is_(None),
        )
        .values(revoked_at=func.now())
        .returning(CustomerSession.id)
    )
    await session.flush()
    return len(revoked.all())


# Two-factor sign-in.


@dataclass(frozen=True)
class TotpSetup:
    secret: str
    uri: str


def totp_secret_of(secret_keyring: str, login: CustomerLogin) -> str:
    """The TOTP seed in clear, for checking a code; stored only encrypted (SECRET_KEY)."""
    if not login.totp_secret:
        return ""
    return keyring.decrypt(secret_keyring, TOTP_PURPOSE, login.totp_secret)


async def setup_totp(
    session: AsyncSession, secret_keyring: str, user_id: int, email: str | None
) -> TotpSetup:
    login = await login_of(session, user_id)
    if login.totp_enabled_at is not None:
        raise TwoFactorState("Two-factor sign-in is already on")
    seed = pyotp.random_base32()
    login.totp_secret = keyring.encrypt(secret_keyring, TOTP_PURPOSE, seed)
    login.totp_last_step = None
    await session.flush()
    uri = pyotp.TOTP(seed).provisioning_uri(
        name=email or f"user-{user_id}", issuer_name=TOTP_ISSUER
    )
    return TotpSetup(seed, uri)


async def enable_totp(
    session: AsyncSession, secret_keyring: str, user_id: int, code: str
) -> list[str]:
    """Turn 2FA on with a current code; answers the recovery codes (shown once)."""
    login = await login_of(session, user_id)
    if login.totp_enabled_at is not None:
        raise TwoFactorState("Two-factor sign-in is already on")
    if not login.totp_secret:
        raise TwoFactorState("Call /client/v1/2fa/setup first")
    step = totp_step(totp_secret_of(secret_keyring, login), code.strip())
    if step is None:
        raise InvalidTwoFactorCode()
    login.totp_enabled_at = utcnow()
    login.totp_last_step = step
    await session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
    codes = [secrets.token_hex(5).upper() for _ in range(RECOVERY_CODES)]
    session.add_all(RecoveryCode(user_id=user_id, code_hash=digest(c)) for c in codes)
    await session.flush()
    return codes


async def disable_totp(session: AsyncSession, secret_keyring: str, user_id: int, code: str) -> None:
    """Turn 2FA off; needs a current code or a recovery code."""
    login = await login_of(session, user_id)
    if login.totp_enabled_at is None:
        raise TwoFactorState("Two-factor sign-in is off")
    await check_second_factor(session, secret_keyring, login, code)
    await clear_totp(session, user_id)


async def clear_totp(session: AsyncSession, user_id: int) -> None:
    login = await login_of(session, user_id)
    login.totp_secret = None
    login.totp_enabled_at = None
    login.totp_last_step = None
    await session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
    await session.flush()


async def recovery_codes_left(session: AsyncSession, user_id: int) -> int:
    left = await session.scalar(
        select(func.count(RecoveryCode.id)).where(
            RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None)
        )
    )
    return int(left or 0)


# Profile.


async def update_profile(
    session: AsyncSession,
    user_id: int,
    *,
    name: str | None,
    language: str | None,
    timezone: str | None,
    display_currency: str | None = None,
) -> tuple[User, CustomerLogin]:
    """`display_currency`: a code to read amounts in, "" for the panel's own, None to keep."""
    user = await accounts.get_live_user(session, user_id)
    login = await login_of(session, user_id)
    if name is not None:
        user.name = name.strip() or None
    if language is not None:
        login.language = language
    if timezone is not None:
        login.timezone = timezone
    if display_currency is not None:
        login.display_currency = display_currency or None
    await session.flush()
    return user, login


async def forget_user(session: AsyncSession, user_id: int) -> None:
    """On erasure: no way to sign in remains (password, 2FA, sessions, mailed tokens), and
    the mails to the user's address leave the outbox."""
    for model in (CustomerSession, CustomerToken, RecoveryCode, CustomerLogin):
        await session.execute(delete(model).where(model.user_id == user_id))
    email = await session.scalar(select(User.email).where(User.id == user_id))
    if email:
        # Mails to the address: the outbox keeps no trace of the person.
        await session.execute(delete(OutgoingMail).where(OutgoingMail.recipient == email))
