"""Signing up: the account with its sign-in, and the mail that verifies its address (in
the outbox, sent after the commit), as /client/v1/register and the storefront's sign-up
form offer it."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.models import User
from app.customers import service as customers
from app.customers import signin
from app.http.context import Services

WRAPS = (customers.register, signin.mail_verification)


async def sign_up(
    tx: AsyncSession,
    services: Services,
    *,
    email: str,
    password: str,
    referral_code: str | None,
    language: str,
) -> User:
    """A new customer (email unique whatever its case, password 8–200 characters, the
    referrer's code if any, the language of the mails)."""
    async with tx.begin_nested():
        user = await customers.register(
            tx, email=email, password=password, referral_code=referral_code, language=language
        )
        await signin.mail_verification(services, tx, user.id)
    return user
