"""The customer API's accounts: registration, verification by mail, sign-in with two-factor
codes, guessing limits, password reset, sessions, API key rotation, and the operator's view.
Mail goes through a real SMTP server on 127.0.0.1 (aiosmtpd)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pyotp
import pytest
from sqlalchemy import select

from app.audit.models import AuditEntry
from app.context import AppContext
from app.customers.models import CustomerLogin, CustomerSession, RecoveryCode
from app.db import utcnow
from tests.support.api import Api, MakeService
from tests.support.client import MakeCustomer
from tests.support.env import AUTH
from tests.support.mail import Mailbox

PASSWORD = "correct horse battery"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def login(
    client: httpx.AsyncClient, email: str, password: str, code: str = ""
) -> httpx.Response:
    return await client.post(
        "/client/v1/login", json={"email": email, "password": password, "code": code}
    )


def next_code(secret: str, after: int = 0) -> str:
    """A valid TOTP code of a later step than `after` (the panel never takes a step twice)."""
    totp = pyotp.TOTP(secret)
    now = utcnow()
    step = totp.timecode(now)
    return totp.at(now, counter_offset=1 if step <= after else 0)


async def test_register_verify_login_two_factor_and_a_recovery_code_once(
    client: httpx.AsyncClient, mailbox: Mailbox, ctx: AppContext
) -> None:
    made = await client.post(
        "/client/v1/register",
        json={
            "email": "  Ann@Example.COM ",
            "password": PASSWORD,
            "language": "ru",
            "accept_terms": True,
        },
    )
    assert made.status_code == 201, made.text
    assert made.json()["email"] == "ann@example.com"
    # Unique whatever the case.
    again = await client.post(
        "/client/v1/register",
        json={"email": "ANN@example.com", "password": PASSWORD, "accept_terms": True},
    )
    assert again.status_code == 409
    assert again.json()["type"] == "/errors/email-taken"

    (mail,) = await mailbox.wait_for("ann@example.com")
    assert mail.subject == "Подтвердите адрес почты"  # the user's language
    token = mail.token()

    # Not verified yet: the right password is not enough.
    early = await login(client, "ann@example.com", PASSWORD)
    assert early.status_code == 403
    assert early.json()["detail"] == "Email is not verified"

    verified = await client.post("/client/v1/verify", json={"token": token})
    assert verified.status_code == 200, verified.text
    reused = await client.post("/client/v1/verify", json={"token": token})
    assert reused.status_code == 400
    assert reused.json() == {
        "type": "/errors/invalid-token",
        "title": "Bad Request",
        "status": 400,
        "detail": "Invalid or expired token",
    }

    signed = await login(client, "ANN@example.com", PASSWORD)
    assert signed.status_code == 200, signed.text
    session_token = signed.json()["token"]
    me = await client.get("/client/v1/me", headers=bearer(session_token))
    assert me.json()["email_verified"] is True
    assert me.json()["two_factor"] is False
    assert me.json()["language"] == "ru"

    setup = await client.post("/client/v1/2fa/setup", headers=bearer(session_token))
    secret = setup.json()["secret"]
    assert setup.json()["uri"].startswith("otpauth://totp/smm-panel:ann%40example.com?secret=")
    wrong = await client.post(
        "/client/v1/2fa/enable", headers=bearer(session_token), json={"code": "000000"}
    )
    assert wrong.status_code == 401
    enabled = await client.post(
        "/client/v1/2fa/enable",
        headers=bearer(session_token),
        json={"code": pyotp.TOTP(secret).now()},
    )
    assert enabled.status_code == 200, enabled.text
    codes = enabled.json()["recovery_codes"]
    assert len(codes) == 10 and len(set(codes)) == 10
    async with ctx.db.session() as session:
        stored = list(await session.scalars(select(RecoveryCode.code_hash)))
    assert len(stored) == 10 and not set(codes) & set(stored)  # hashed

    # Now a password alone is refused, and so is a wrong code.
    bare = await login(client, "ann@example.com", PASSWORD)
    assert bare.status_code == 401
    assert bare.json()["type"] == "/errors/two-factor-required"
    bad = await login(client, "ann@example.com", PASSWORD, "123456")
    assert bad.json()["type"] == "/errors/invalid-two-factor-code"

    async with ctx.db.session() as session:
        row = await session.get(CustomerLogin, made.json()["user_id"])
        assert row is not None
        last_step = row.totp_last_step or 0
    code = next_code(secret, last_step)
    with_code = await login(client, "ann@example.com", PASSWORD, code)
    assert with_code.status_code == 200, with_code.text
    # The same code is never taken twice.
    replay = await login(client, "ann@example.com", PASSWORD, code)
    assert replay.status_code == 401

    recovered = await login(client, "ann@example.com", PASSWORD, codes[3].lower())
    assert recovered.status_code == 200, recovered.text
    spent = await login(client, "ann@example.com", PASSWORD, codes[3])
    assert spent.status_code == 401
    assert spent.json()["detail"] == "Invalid two-factor code"

    sessions = await client.get("/client/v1/sessions", headers=bearer(session_token))
    assert len(sessions.json()) == 3
    assert [s["current"] for s in sessions.json()].count(True) == 1


async def test_wrong_passwords_lock_with_growing_delays_and_unknown_emails_look_the_same(
    client: httpx.AsyncClient, make_customer: MakeCustomer, mailbox: Mailbox, ctx: AppContext
) -> None:
    known = await make_customer()
    limit = ctx.settings.client_attempts_per_account
    assert limit == 5

    async def attempts(email: str) -> list[tuple[int, dict[str, object], str | None]]:
        answers = []
        for _ in range(limit + 2):
            r = await login(client, email, "wrong password")
            answers.append((r.status_code, r.json(), r.headers.get("retry-after")))
        return answers

    seen_known = await attempts(known.email)
    seen_unknown = await attempts("nobody@example.com")
    assert seen_known == seen_unknown
    statuses = [status for status, _, _ in seen_known]
    assert statuses == [401] * limit + [429, 429]
    assert seen_known[0][1] == {
        "type": "/errors/invalid-credentials",
        "title": "Unauthorized",
        "status": 401,
        "detail": "Invalid email or password",
    }
    assert seen_known[-1][1]["type"] == "/errors/too-many-attempts"
    assert seen_known[-1][2] == "30"  # the first lock: CLIENT_LOCK_SECONDS

    # Locked: even the right password is refused, with the same answer.
    right = await login(client, known.email, known.password)
    assert right.status_code == 429

    # The account's owner is told, once; nobody is mailed for the unknown address.
    (notice,) = await mailbox.wait_for(known.email)
    assert notice.subject == "Sign-in to your account was locked"
    assert "5 failed attempts" in notice.body
    await asyncio.sleep(0.2)
    assert len(mailbox.received) == 1

    # Each failure past the threshold doubles the lock.
    redis = ctx.jobs.redis
    assert redis is not None
    locks = ctx.jobs.key("client:limit:login:account:*:lock")  # under the panel's prefix
    keys = sorted(k.decode() for k in await redis.keys(locks))
    assert len(keys) == 2
    await redis.delete(*keys)
    again = await login(client, known.email, "wrong password")
    assert again.status_code == 401  # the lock ended; the guess is still wrong
    relocked = await login(client, known.email, known.password)
    assert relocked.status_code == 429
    assert relocked.headers["retry-after"] == "60"


async def test_timing_of_unknown_and_known_emails_is_alike(
    client: httpx.AsyncClient, make_customer: MakeCustomer
) -> None:
    known = await make_customer()
    loop = asyncio.get_running_loop()

    async def took(email: str) -> float:
        start = loop.time()
        r = await login(client, email, "wrong password")
        assert r.status_code == 401
        return loop.time() - start

    known_t = min([await took(known.email) for _ in range(3)])
    unknown_t = min([await took(f"x{i}@example.com") for i in range(3)])
    # Both pay for one Argon2id verification: neither is several times the other.
    assert unknown_t > known_t / 3 and known_t > unknown_t / 3


async def test_forgot_always_202_and_reset_revokes_every_session(
    client: httpx.AsyncClient, make_customer: MakeCustomer, mailbox: Mailbox, ctx: AppContext
) -> None:
    customer = await make_customer()
    second = await login(client, customer.email, customer.password)
    assert second.status_code == 200

    unknown = await client.post("/client/v1/password/forgot", json={"email": "who@example.com"})
    known = await client.post("/client/v1/password/forgot", json={"email": customer.email.upper()})
    assert unknown.status_code == known.status_code == 202
    assert unknown.json() == known.json() == {"accepted": True}
    (mail,) = await mailbox.wait_for(customer.email)
    assert mail.subject == "Reset your password"
    await asyncio.sleep(0.1)
    assert len(mailbox.received) == 1

    short = await client.post(
        "/client/v1/password/reset", json={"token": mail.token(), "password": "short"}
    )
    assert short.status_code == 422
    assert short.json()["detail"] == "Password must be 8 to 200 characters"
    done = await client.post(
        "/client/v1/password/reset", json={"token": mail.token(), "password": "brand new pass"}
    )
    assert done.status_code == 200, done.text
    assert done.json() == {"reset": True, "sessions_revoked": 2}
    for token in (customer.token, second.json()["token"]):
        gone = await client.get("/client/v1/me", headers=bearer(token))
        assert gone.status_code == 401
        assert gone.json()["type"] == "/errors/not-signed-in"
    twice = await client.post(
        "/client/v1/password/reset", json={"token": mail.token(), "password": "other new pass"}
    )
    assert twice.status_code == 400
    assert (await login(client, customer.email, customer.password)).status_code == 401
    assert (await login(client, customer.email, "brand new pass")).status_code == 200


async def test_logout_and_deleting_a_session(
    client: httpx.AsyncClient, make_customer: MakeCustomer
) -> None:
    customer = await make_customer()
    other = (await login(client, customer.email, customer.password)).json()["token"]
    listed = (await client.get("/client/v1/sessions", headers=customer.auth)).json()
    other_id = next(s["id"] for s in listed if not s["current"])
    deleted = await client.delete(f"/client/v1/sessions/{other_id}", headers=customer.auth)
    assert deleted.status_code == 200
    assert (await client.get("/client/v1/me", headers=bearer(other))).status_code == 401
    missing = await client.delete(f"/client/v1/sessions/{other_id}", headers=customer.auth)
    assert missing.status_code == 404
    out = await client.post("/client/v1/logout", headers=customer.auth)
    assert out.status_code == 200
    assert (await client.get("/client/v1/me", headers=customer.auth)).status_code == 401


async def test_profile_changes(client: httpx.AsyncClient, make_customer: MakeCustomer) -> None:
    customer = await make_customer("12.5")
    changed = await client.patch(
        "/client/v1/me",
        headers=customer.auth,
        json={"name": "Ann Lee", "language": "ru", "timezone": "Europe/Moscow"},
    )
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert (body["name"], body["language"], body["timezone"], body["balance"]) == (
        "Ann Lee",
        "ru",
        "Europe/Moscow",
        "12.50000",
    )
    bad = await client.patch("/client/v1/me", headers=customer.auth, json={"timezone": "Mars/Base"})
    assert bad.status_code == 422


async def test_rotated_key_is_refused_at_once_on_api_v2(
    client: httpx.AsyncClient, make_customer: MakeCustomer, make_service: MakeService, api: Api
) -> None:
    customer = await make_customer("10")
    service = await make_service()
    # Warm the hot path's caches with the old key.
    first = await api(customer.key, "add", service=service, link="https://x.com/a", quantity=100)
    assert "order" in first
    assert "charge" in await api(customer.key, "status", order=first["order"])

    shown = await client.get("/client/v1/api-key", headers=customer.auth)
    assert [k["prefix"] for k in shown.json()["keys"]] == [customer.key[:6]]
    assert customer.key not in shown.text
    rotated = await client.post("/client/v1/api-key/rotate", headers=customer.auth)
    new_key = rotated.json()["key"]
    assert new_key != customer.key

    refused = {"error": "Invalid API key"}
    assert (
        await api(customer.key, "add", service=service, link="https://x.com/b", quantity=100)
        == refused
    )
    assert await api(customer.key, "status", order=first["order"]) == refused
    assert await api(customer.key, "status", orders=str(first["order"])) == refused
    assert await api(customer.key, "balance") == refused
    placed = await api(new_key, "add", service=service, link="https://x.com/b", quantity=100)
    assert "order" in placed


async def test_operator_sees_sign_in_revokes_sessions_resets_two_factor_and_invites(
    client: httpx.AsyncClient, make_customer: MakeCustomer, mailbox: Mailbox, ctx: AppContext
) -> None:
    customer = await make_customer()
    secret = (await client.post("/client/v1/2fa/setup", headers=customer.auth)).json()["secret"]
    enabled = await client.post(
        "/client/v1/2fa/enable", headers=customer.auth, json={"code": pyotp.TOTP(secret).now()}
    )
    assert enabled.status_code == 200
    state = (await client.get(f"/admin/v1/users/{customer.user_id}/login", headers=AUTH)).json()
    assert state["two_factor"] is True
    assert state["has_password"] is True
    assert state["email_verified_at"] is not None
    assert state["recovery_codes_left"] == 10
    assert len(state["sessions"]) == 1

    revoked = await client.post(f"/admin/v1/users/{customer.user_id}/sessions/revoke", headers=AUTH)
    assert revoked.json() == {"revoked": 1}
    assert (await client.get("/client/v1/me", headers=customer.auth)).status_code == 401
    reset = await client.post(f"/admin/v1/users/{customer.user_id}/2fa/reset", headers=AUTH)
    assert reset.json() == {"enabled": False}
    assert (await login(client, customer.email, customer.password)).status_code == 200

    # A user the operator made has no password: the invitation sets one.
    made = await client.post("/admin/v1/users", headers=AUTH, json={"email": "bob@example.com"})
    bob = made.json()["id"]
    invited = await client.post(f"/admin/v1/users/{bob}/invite", headers=AUTH)
    assert invited.status_code == 202
    (mail,) = await mailbox.wait_for("bob@example.com")
    assert mail.subject == "Your account on the panel"
    assert (await login(client, "bob@example.com", "whatever pass")).status_code == 401
    set_pw = await client.post(
        "/client/v1/password/reset", json={"token": mail.token(), "password": "bob's password"}
    )
    assert set_pw.status_code == 200
    assert (await login(client, "bob@example.com", "bob's password")).status_code == 200

    async with ctx.db.session() as session:
        actions = list(await session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))
    mine = [a for a in actions if a in ("user.sessions_revoke", "user.2fa_reset", "user.invite")]
    assert mine == ["user.sessions_revoke", "user.2fa_reset", "user.invite"]


async def test_expired_session_is_refused(
    client: httpx.AsyncClient, make_customer: MakeCustomer, ctx: AppContext
) -> None:
    customer = await make_customer()
    async with ctx.db.transaction() as session:
        row = await session.scalar(
            select(CustomerSession).where(CustomerSession.user_id == customer.user_id)
        )
        assert row is not None
        row.expires_at = utcnow() - timedelta(seconds=1)
    assert (await client.get("/client/v1/me", headers=customer.auth)).status_code == 401
    assert (await client.get("/client/v1/me")).status_code == 401


@pytest.fixture
def console_mail(ctx: AppContext) -> Iterator[None]:
    before = ctx.settings.mail_url
    ctx.settings.mail_url = "console"
    yield
    ctx.settings.mail_url = before


async def test_console_backend_logs_the_mail(
    client: httpx.AsyncClient, console_mail: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="app.mail.service")
    made = await client.post(
        "/client/v1/register",
        json={"email": "cat@example.com", "password": PASSWORD, "accept_terms": True},
    )
    assert made.status_code == 201
    for _ in range(50):
        if any(r.getMessage() == "mail (console backend)" for r in caplog.records):
            break
        await asyncio.sleep(0.02)
    record = next(r for r in caplog.records if r.getMessage() == "mail (console backend)")
    assert record.__dict__["to"] == "cat@example.com"
    # A link to open, with the token in it; no API call to make by hand.
    assert "/verify?token=" in record.__dict__["body"]
    assert "/client/v1" not in record.__dict__["body"]


async def test_wrong_tokens_lock_the_address(
    client: httpx.AsyncClient, make_customer: MakeCustomer, ctx: AppContext
) -> None:
    limit = ctx.settings.client_attempts_per_ip
    for _ in range(limit):
        wrong = await client.post("/client/v1/verify", json={"token": "guess"})
        assert wrong.status_code == 400
    locked = await client.post("/client/v1/verify", json={"token": "guess"})
    assert locked.status_code == 429
    assert locked.json()["detail"] == "Too many attempts, try again later"
    # Reset tokens are counted on their own.
    other = await client.post(
        "/client/v1/password/reset", json={"token": "guess", "password": "long enough"}
    )
    assert other.status_code == 400


async def test_unsigned_requests_are_told_how_to_sign_in(client: httpx.AsyncClient) -> None:
    for path in ("/client/v1/me", "/client/v1/orders", "/client/v1/transactions"):
        response = await client.get(path, headers={"Authorization": "Bearer nope"})
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.headers["content-type"] == "application/problem+json"


async def test_the_docs_describe_the_customer_api(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    for path in (
        "/client/v1/register",
        "/client/v1/verify",
        "/client/v1/login",
        "/client/v1/logout",
        "/client/v1/sessions",
        "/client/v1/sessions/{session_id}",
        "/client/v1/password/forgot",
        "/client/v1/password/reset",
        "/client/v1/2fa/setup",
        "/client/v1/2fa/enable",
        "/client/v1/2fa/disable",
        "/client/v1/me",
        "/client/v1/api-key",
        "/client/v1/api-key/rotate",
        "/client/v1/services",
        "/client/v1/orders",
        "/client/v1/orders/mass",
        "/client/v1/orders/{order_id}",
        "/client/v1/orders/{order_id}/refill",
        "/client/v1/orders/{order_id}/cancel",
        "/client/v1/transactions",
        "/client/v1/deposits",
        "/client/v1/referrals",
        "/client/v1/privacy/export",
        "/client/v1/privacy/deletion",
    ):
        assert path in paths, path


async def test_two_factor_can_be_turned_off_with_a_code(
    client: httpx.AsyncClient, make_customer: MakeCustomer
) -> None:
    customer = await make_customer()
    secret = (await client.post("/client/v1/2fa/setup", headers=customer.auth)).json()["secret"]
    codes = (
        await client.post(
            "/client/v1/2fa/enable", headers=customer.auth, json={"code": pyotp.TOTP(secret).now()}
        )
    ).json()["recovery_codes"]
    twice = await client.post("/client/v1/2fa/setup", headers=customer.auth)
    assert twice.status_code == 409
    off = await client.post(
        "/client/v1/2fa/disable", headers=customer.auth, json={"code": codes[0]}
    )
    assert off.json() == {"enabled": False}
    assert (await login(client, customer.email, customer.password)).status_code == 200


async def test_forgot_stops_mailing_an_address_past_its_limit_with_the_same_answer(
    client: httpx.AsyncClient, make_customer: MakeCustomer, mailbox: Mailbox, ctx: AppContext
) -> None:
    customer = await make_customer()
    limit = ctx.settings.client_attempts_per_account
    for _ in range(limit + 3):
        asked = await client.post("/client/v1/password/forgot", json={"email": customer.email})
        assert (asked.status_code, asked.json()) == (202, {"accepted": True})
    await mailbox.wait_for(customer.email, count=limit)
    await asyncio.sleep(0.2)
    assert len(mailbox.to(customer.email)) == limit


async def test_the_totp_seed_is_stored_encrypted_and_rotates_with_the_secret_key(
    client: httpx.AsyncClient, make_customer: MakeCustomer, ctx: AppContext
) -> None:
    from sqlalchemy import select

    from app import keyring
    from app.customers.models import CustomerLogin
    from app.customers.service import TOTP_PURPOSE
    from app.rotation import rotate_secrets

    customer = await make_customer()
    secret = (await client.post("/client/v1/2fa/setup", headers=customer.auth)).json()["secret"]
    enabled = await client.post(
        "/client/v1/2fa/enable", headers=customer.auth, json={"code": pyotp.TOTP(secret).now()}
    )
    assert enabled.status_code == 200, enabled.text

    async def stored() -> str:
        async with ctx.db.session() as session:
            token = await session.scalar(
                select(CustomerLogin.totp_secret).where(CustomerLogin.user_id == customer.user_id)
            )
        assert token is not None
        return token

    token = await stored()
    assert secret not in token
    assert keyring.decrypt(ctx.settings.secret_key, TOTP_PURPOSE, token) == secret
    # A new SECRET_KEY, the old one kept as previous: the rotation re-encrypts the seed.
    new_key = "rotated-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"
    ring = f"{new_key},{ctx.settings.secret_key}"
    async with ctx.db.transaction() as session:
        report = await rotate_secrets(session, ring)
    assert report.reencrypted["customer.totp"] == 1
    assert keyring.is_current(new_key, TOTP_PURPOSE, await stored())
    assert keyring.decrypt(new_key, TOTP_PURPOSE, await stored()) == secret
