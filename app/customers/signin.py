"""Sign-in and the mailed-token steps with their guessing limits and mails: what the
customer API's handlers call. The database work is in app/customers/service.py, the
limits in limits.py; mails are queued in the outbox of app/mail, in the same transaction."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts import service as accounts
from app.customers import limits
from app.customers import service as customers
from app.customers.errors import (
    InvalidCredentials,
    InvalidToken,
    InvalidTwoFactorCode,
    TooManyAttempts,
    WrongPassword,
)
from app.customers.limits import Policy, Scope
from app.customers.mails import compose
from app.customers.models import TOKEN_INVITE, TOKEN_RESET, TOKEN_VERIFY, CustomerLogin
from app.errors import Conflict
from app.http.context import Services
from app.mail import service as mail

T = TypeVar("T")


@dataclass(frozen=True)
class Caller:
    ip: str
    user_agent: str | None


def _policy(services: Services) -> Policy:
    s = services.settings
    return Policy(s.client_attempt_window_seconds, s.client_lock_seconds, s.client_lock_max_seconds)


def _scopes(services: Services, action: str, caller: Caller, email: str | None) -> list[Scope]:
    s = services.settings
    scopes = [Scope(action, "ip", caller.ip, s.client_attempts_per_ip)]
    if email is not None:
        scopes.insert(0, Scope(action, "account", email, s.client_attempts_per_account))
    return scopes


def _link(services: Services, page: str, token: str) -> str:
    return f"{services.settings.public_url.rstrip('/')}/{page}?token={token}"


def mailer(services: Services) -> mail.Mailer:
    s = services.settings
    return mail.Mailer(services.db, s.mail_url, s.mail_from)


async def _send(
    services: Services, session: AsyncSession, to: str, kind: str, lang: str, **v: object
) -> None:
    await mail.queue(session, mailer(services), compose(kind, lang, to, **v))


async def mail_verification(services: Services, session: AsyncSession, user_id: int) -> None:
    user_email, language = await _address(session, user_id)
    hours = services.settings.client_verify_hours
    token = await customers.issue_token(session, user_id, TOKEN_VERIFY, timedelta(hours=hours))
    await _send(
        services,
        session,
        user_email,
        "verify",
        language,
        link=_link(services, "verify", token),
        token=token,
        hours=hours,
    )


async def mail_invitation(services: Services, session: AsyncSession, user_id: int) -> None:
    user_email, language = await _address(session, user_id)
    days = services.settings.client_invite_days
    token = await customers.issue_token(session, user_id, TOKEN_INVITE, timedelta(days=days))
    await _send(
        services,
        session,
        user_email,
        "invite",
        language,
        link=_link(services, "reset-password", token),
        token=token,
        days=days,
    )


async def _address(session: AsyncSession, user_id: int) -> tuple[str, str]:
    user = await accounts.get_live_user(session, user_id)
    if not user.email:
        raise Conflict("The user has no email address")
    login = await customers.login_of(session, user_id)
    return user.email, login.language


async def login(
    services: Services,
    session: AsyncSession,
    caller: Caller,
    *,
    email: str,
    password: str,
    code: str,
) -> customers.OpenedSession:
    address = email.strip().lower()
    scopes = _scopes(services, "login", caller, address)
    jobs = services.jobs
    await limits.check(jobs, scopes)
    try:
        sign_in = await customers.check_password_for(session, email, password)
        customers.check_account(sign_in)
        await customers.check_second_factor(
            session, services.settings.secret_key, sign_in.login, code
        )
    except (InvalidCredentials, InvalidTwoFactorCode):
        locked = await limits.failed(jobs, scopes, _policy(services))
        if "account" in locked:
            await _mail_lockout(services, session, address, locked["account"])
        raise
    await limits.forget(jobs, scopes[0])
    days = services.settings.client_session_days
    return await customers.open_session(
        session,
        sign_in.user.id,
        timedelta(days=days),
        ip=caller.ip,
        user_agent=caller.user_agent,
    )


async def _mail_lockout(
    services: Services, session: AsyncSession, address: str, seconds: int
) -> None:
    """Tell the account's owner (only a known account has one to tell), queued in a
    transaction of its own: the failed sign-in's is about to roll back."""
    user = await customers.user_by_email(session, address)
    if user is None or not user.email:
        return
    login = await session.get(CustomerLogin, user.id)
    language = login.language if login is not None else "en"
    failures = services.settings.client_attempts_per_account
    message = compose("lockout", language, user.email, failures=failures, seconds=seconds)
    async with services.db.transaction() as own:
        await mail.queue(own, mailer(services), message)


async def confirmed(services: Services, user_id: int, attempt: Callable[[], Awaitable[T]]) -> T:
    """A code or the password asked again of a signed-in customer (turning two-factor
    sign-in on or off, changing the password): wrong answers are limited per account like
    sign-ins, so a stolen session cannot guess its way past them."""
    threshold = services.settings.client_attempts_per_account
    scopes = [Scope("confirm", "account", str(user_id), threshold)]
    await limits.check(services.jobs, scopes)
    try:
        return await attempt()
    except (InvalidTwoFactorCode, WrongPassword):
        await limits.failed(services.jobs, scopes, _policy(services))
        raise


async def operator_token(services: Services, caller: Caller, matches: bool) -> bool:
    """The operator's page signs in with the admin token: its guesses are limited per IP
    like a password's (CLIENT_ATTEMPTS_PER_ACCOUNT failures, then growing locks). Raises
    TooManyAttempts while locked, whether the token matches or not; else `matches`."""
    s = services.settings
    scopes = [Scope("operator", "ip", caller.ip, s.client_attempts_per_account)]
    await limits.check(services.jobs, scopes)
    if not matches:
        await limits.failed(services.jobs, scopes, _policy(services))
    return matches


async def verify(services: Services, session: AsyncSession, caller: Caller, token: str) -> int:
    scopes = _scopes(services, "verify", caller, None)
    await limits.check(services.jobs, scopes)
    try:
        return await customers.verify_email(session, token)
    except InvalidToken:
        await limits.failed(services.jobs, scopes, _policy(services))
        raise


async def forgot(services: Services, session: AsyncSession, caller: Caller, email: str) -> None:
    """Mail a reset link if the account exists; the answer is the same either way. Each
    request counts against the IP (429 past its limit) and the address (past its limit
    no more mail is sent, silently: the answer must not differ)."""
    address = email.strip().lower()
    scopes = _scopes(services, "forgot", caller, address)
    jobs = services.jobs
    await limits.check(jobs, scopes[1:])
    try:
        await limits.check(jobs, scopes[:1])
    except TooManyAttempts:
        return
    await limits.failed(jobs, scopes, _policy(services))
    minutes = services.settings.client_reset_minutes
    found = await customers.start_reset(session, email)
    if found is None or not found.user.email:
        return
    token = await customers.issue_token(
        session, found.user.id, TOKEN_RESET, timedelta(minutes=minutes)
    )
    await _send(
        services,
        session,
        found.user.email,
        "reset",
        found.login.language,
        link=_link(services, "reset-password", token),
        token=token,
        minutes=minutes,
    )


async def reset(
    services: Services, session: AsyncSession, caller: Caller, token: str, password: str
) -> int:
    scopes = _scopes(services, "reset", caller, None)
    await limits.check(services.jobs, scopes)
    try:
        return await customers.reset_password(session, token, password)
    except InvalidToken:
        await limits.failed(services.jobs, scopes, _policy(services))
        raise
