"""Staff sign-in: password, then the second factor (enrolled at the first sign-in when
STAFF_REQUIRE_2FA), under the customers' guessing limits (app/customers/limits.py: per
account and per IP, doubling locks), and the mailed invitation that sets a password.

A right password without an enrolled second factor opens an `enrolling` session only:
it reaches the enrolment page and nothing else, and it becomes a full session once a code
from the new seed is confirmed.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.customers import limits
from app.customers import service as customers
from app.customers.errors import InvalidCredentials, InvalidTwoFactorCode, TwoFactorRequired
from app.customers.limits import Policy, Scope
from app.customers.signin import Caller
from app.http.context import Services
from app.mail import service as mail
from app.settings import Settings
from app.staff import service as staff
from app.staff.errors import StaffDisabled
from app.staff.mails import compose
from app.staff.models import StaffMember

ENROLMENT = timedelta(minutes=15)  # how long an enrolling session waits for its code
CONSOLE = "/web/admin"


def _policy(services: Services) -> Policy:
    s = services.settings
    return Policy(s.client_attempt_window_seconds, s.client_lock_seconds, s.client_lock_max_seconds)


def _scopes(services: Services, caller: Caller, email: str) -> list[Scope]:
    s = services.settings
    return [
        Scope("staff-login", "account", email, s.client_attempts_per_account),
        Scope("staff-login", "ip", caller.ip, s.client_attempts_per_ip),
    ]


async def _member_for(session: AsyncSession, address: str, password: str) -> StaffMember:
    """The member behind email and password, or InvalidCredentials (an unknown email
    costs the same hash)."""
    member = await staff.member_by_email(session, address)
    stored = member.password_hash if member is not None else None
    if not customers.password_matches(stored, password) or member is None:
        raise InvalidCredentials()
    return member


async def sign_in(
    services: Services,
    session: AsyncSession,
    caller: Caller,
    *,
    email: str,
    password: str,
    code: str,
) -> staff.OpenedSession:
    address = email.strip().lower()[:320]
    scopes = _scopes(services, caller, address)
    jobs = services.jobs
    await limits.check(jobs, scopes)
    try:
        member = await _member_for(session, address, password)
        if member.disabled_at is not None:
            raise StaffDisabled()
        if member.totp_enabled_at is not None:
            if not code.strip():
                raise TwoFactorRequired()
            await staff.check_code(session, services.settings.secret_key, member, code)
    except (InvalidCredentials, InvalidTwoFactorCode):
        await limits.failed(jobs, scopes, _policy(services))
        raise
    await limits.forget(jobs, scopes[0])
    enrolling = member.totp_enabled_at is None and services.settings.staff_require_2fa
    hours = timedelta(hours=services.settings.staff_session_hours)
    return await staff.open_session(
        session,
        member.id,
        ENROLMENT if enrolling else hours,
        enrolling=enrolling,
        ip=caller.ip,
        user_agent=caller.user_agent,
    )


async def confirm_enrolment(
    services: Services, session: AsyncSession, caller: Caller, signed: staff.SignedIn, code: str
) -> staff.OpenedSession:
    """The enrolling session's code: the second factor is on, the session becomes a full
    one (a new token; the enrolling one ends). Wrong codes count as failed sign-ins."""
    scopes = _scopes(services, caller, signed.member.email.lower())
    jobs = services.jobs
    await limits.check(jobs, scopes)
    try:
        await staff.confirm_enrolment(session, services.settings.secret_key, signed.member.id, code)
    except InvalidTwoFactorCode:
        await limits.failed(jobs, scopes, _policy(services))
        raise
    await limits.forget(jobs, scopes[0])
    await staff.revoke_session(session, signed.member.id, signed.session_id)
    return await staff.open_session(
        session,
        signed.member.id,
        timedelta(hours=services.settings.staff_session_hours),
        enrolling=False,
        ip=caller.ip,
        user_agent=caller.user_agent,
    )


def mailer(services: Services) -> mail.Mailer:
    s = services.settings
    return mail.Mailer(services.db, s.mail_url, s.mail_from)


async def invite(
    session: AsyncSession, mailer: mail.Mailer, settings: Settings, member: StaffMember
) -> int:
    """Mail the member a link to set their password (queued in the outbox, in the
    caller's transaction); answers the outbox row's id."""
    hours = settings.staff_invite_hours
    token = await staff.issue_invitation(session, member.id, timedelta(hours=hours))
    base = settings.public_url.rstrip("/")
    message = compose(
        "invite",
        member.language,
        member.email,
        role=member.role,
        link=f"{base}{CONSOLE}/invite?token={token}",
        login=f"{base}{CONSOLE}/login",
        hours=hours,
    )
    return await mail.queue(session, mailer, message)
