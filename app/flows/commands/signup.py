"""Signing up: the account with its sign-in, and the mail that verifies its address (in
the outbox, sent after the commit), as /client/v1/register and the storefront's sign-up
form offer it. Signing up accepts the legal texts in force: the box must be ticked, and
the acceptance is recorded with the client's address."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.models import User
from app.customers import service as customers
from app.customers import signin
from app.http.context import Services
from app.legal import service as legal
from app.legal.models import ACTION_REGISTRATION
from app.referrals import service as referrals
from app.referrals.models import TRACE_SIGNUP

WRAPS = (customers.register, signin.mail_verification, legal.record)


async def sign_up(
    tx: AsyncSession,
    services: Services,
    *,
    email: str,
    password: str,
    referral_code: str | None,
    language: str,
    accept_terms: bool,
    ip: str | None,
    device: str | None = None,
) -> User:
    """A new customer (email unique whatever its case, password 8–200 characters, the
    referrer's code if any, the language of the mails), who ticked the acceptance of the
    legal texts."""
    if not accept_terms:
        raise legal.TermsRequired()
    async with tx.begin_nested():
        user = await customers.register(
            tx, email=email, password=password, referral_code=referral_code, language=language
        )
        await signin.mail_verification(services, tx, user.id)
        await legal.record(tx, user.id, ACTION_REGISTRATION, ip=ip, language=language)
        # Where it signed up from: the referral program's abuse signals read it.
        await referrals.record_trace(tx, user.id, kind=TRACE_SIGNUP, ip=ip, device=device)
    return user
