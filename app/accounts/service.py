"""Users, API keys (hashed, shown once) and authentication."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.models import USER_ACTIVE, ApiKey, User
from app.db import utcnow
from app.errors import Conflict, InvalidApiKey, InvalidField, NotFound

KEY_BYTES = 16  # 32 hex characters, the usual shape of a panel API key
PREFIX_LEN = 6


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    return secrets.token_hex(KEY_BYTES)


@dataclass(frozen=True)
class IssuedKey:
    key: str  # shown once, never stored
    prefix: str
    key_id: int


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of the public API."""

    user_id: int
    currency: str


def normal_email(email: str) -> str:
    """Emails are stored and compared lower-cased: one mailbox, one user."""
    return email.strip().lower()


def check_currency(currency: str, panel_currency: str) -> str:
    """Charges, refunds and balances are kept in the panel's currency; a user's currency
    can only be that one (a different one would be shown but never applied)."""
    if currency.strip().upper() != panel_currency.upper():
        raise InvalidField(
            "currency", f"currency must be the panel's currency ({panel_currency.upper()})"
        )
    return panel_currency.upper()


async def email_taken(session: AsyncSession, email: str, *, other_than: int | None = None) -> bool:
    stmt = select(User.id).where(func.lower(User.email) == normal_email(email))
    if other_than is not None:
        stmt = stmt.where(User.id != other_than)
    return (await session.scalar(stmt.limit(1))) is not None


async def create_user(
    session: AsyncSession,
    *,
    email: str | None,
    name: str | None = None,
    currency: str = "USD",
    credit_limit: Decimal = Decimal(0),
    referral_code: str | None = None,
) -> User:
    """A new user; `referral_code` is the code of the user who referred them."""
    if email is not None:
        email = normal_email(email)
        if await email_taken(session, email):
            raise Conflict("A user with this email already exists")
    referrer_id = None
    if referral_code:
        referrer_id = await referrer_for_code(session, referral_code)
    user = User(
        email=email,
        name=name,
        currency=currency,
        credit_limit=credit_limit,
        referral_code=new_referral_code(),
        referred_by_id=referrer_id,
    )
    session.add(user)
    await session.flush()
    return user


def new_referral_code() -> str:
    # 10 characters of base32: 50 bits, enough to make guessing a code pointless.
    return base64.b32encode(secrets.token_bytes(10)).decode()[:10]


async def referrer_for_code(session: AsyncSession, code: str) -> int:
    """The active user behind a referral code, or NotFound."""
    referrer_id = await session.scalar(
        select(User.id).where(
            User.referral_code == code.strip().upper(),
            User.status == USER_ACTIVE,
            User.deleted_at.is_(None),
        )
    )
    if referrer_id is None:
        raise NotFound("Unknown referral code")
    return referrer_id


@dataclass(frozen=True)
class UserSearch:
    """The operator's filters of the user list (None: any)."""

    status: str | None = None
    email: str | None = None  # a part of the email, whatever its case
    user_id: int | None = None


async def search_users(
    session: AsyncSession, where: UserSearch, *, limit: int, offset: int
) -> list[User]:
    """Users matching `where`, oldest first."""
    stmt = select(User).order_by(User.id).limit(limit).offset(offset)
    if where.status:
        stmt = stmt.where(User.status == where.status)
    if where.email:
        stmt = stmt.where(User.email.icontains(where.email, autoescape=True))
    if where.user_id is not None:
        stmt = stmt.where(User.id == where.user_id)
    return list(await session.scalars(stmt))


async def get_user(session: AsyncSession, user_id: int, *, for_update: bool = False) -> User:
    stmt = select(User).where(User.id == user_id)
    if for_update:
        stmt = stmt.with_for_update()
    user = await session.scalar(stmt)
    if user is None:
        raise NotFound("User not found")
    return user


async def get_live_user(session: AsyncSession, user_id: int) -> User:
    """The user, unless missing (NotFound) or erased (Conflict: nothing new may be attached)."""
    user = await get_user(session, user_id)
    if user.deleted_at is not None:
        raise Conflict("This user's data was erased")
    return user


async def update_user(
    session: AsyncSession, user_id: int, changes: dict[str, Any], *, panel_currency: str
) -> User:
    """Apply an operator's changes to a live user, refusing what would mislead: a taken
    email (compared lower-cased), another currency than the panel's, or a credit limit
    below what the user already owes. The row is locked, so the balance cannot move
    between the check and the change."""
    await get_live_user(session, user_id)
    user = await get_user(session, user_id, for_update=True)
    if "currency" in changes:
        changes["currency"] = check_currency(changes["currency"], panel_currency)
    if "email" in changes:
        changes["email"] = normal_email(changes["email"])
        if await email_taken(session, changes["email"], other_than=user_id):
            raise Conflict("A user with this email already exists")
    limit = changes.get("credit_limit")
    if limit is not None and user.balance < -limit:
        raise Conflict(
            f"credit_limit {limit} is below the user's debt of {-user.balance}: "
            "top up the balance first, or keep a limit of at least the debt"
        )
    for name, value in changes.items():
        setattr(user, name, value)
    await session.flush()
    await session.refresh(user)  # answer what the database holds
    return user


async def unblock_user(session: AsyncSession, user_id: int) -> User:
    """Keys work again; money forfeited on block stays forfeited."""
    user = await get_user(session, user_id, for_update=True)
    user.status = USER_ACTIVE
    user.blocked_at = None
    await session.flush()
    return user


async def issue_key(session: AsyncSession, user_id: int) -> IssuedKey:
    """A new key for the user; earlier keys keep working (use rotate_key to replace them)."""
    key = new_key()
    row = ApiKey(user_id=user_id, prefix=key[:PREFIX_LEN], key_hash=hash_key(key))
    session.add(row)
    await session.flush()
    return IssuedKey(key=key, prefix=row.prefix, key_id=row.id)


async def rotate_key(session: AsyncSession, user_id: int) -> IssuedKey:
    """Revoke every active key of the user and issue a fresh one."""
    await revoke_keys(session, user_id)
    return await issue_key(session, user_id)


async def revoke_keys(session: AsyncSession, user_id: int, at: datetime | None = None) -> None:
    await session.execute(
        update(ApiKey)
        .where(ApiKey.user_id == user_id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=at or utcnow())
    )


async def authenticate(session: AsyncSession, key: str | None) -> Principal:
    """Resolve an API key to an active user, or raise InvalidApiKey.

    Lookup is by the key's SHA-256 (keys are random, so a plain hash is a safe index);
    the stored hash is compared in constant time as well.
    """
    if not key or len(key) > 200:
        raise InvalidApiKey()
    digest = hash_key(key)
    row = (
        await session.execute(
            select(ApiKey.key_hash, User.id, User.currency)
            .join(User, User.id == ApiKey.user_id)
            .where(
                ApiKey.key_hash == digest,
                ApiKey.revoked_at.is_(None),
                User.status == USER_ACTIVE,
            )
        )
    ).first()
    if row is None or not hmac.compare_digest(row[0], digest):
        raise InvalidApiKey()
    return Principal(user_id=row[1], currency=row[2])
