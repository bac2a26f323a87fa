"""Guessing limits hold when Redis is down: sign-in, mailed tokens, password reset and the
operator's page keep counting in the process (the same thresholds and locks) instead of
letting every guess through. Redis here is a real client pointed at a port where nothing
listens, so every command fails as it does when Redis is unreachable."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pyotp
import pytest

from app.context import AppContext
from app.customers import limits
from app.customers.errors import TooManyAttempts
from app.jobs import JobQueue
from tests.support.client import Customer, MakeCustomer
from tests.support.env import ADMIN_TOKEN
from tests.support.mail import Mailbox
from tests.support.redis import unreachable_redis
from tests.support.web import csrf_of, signed_in


@asynccontextmanager
async def down(ctx: AppContext, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[None]:
    dead = unreachable_redis()
    monkeypatch.setattr(ctx.jobs, "redis", dead)
    limits.LOCAL.clear()
    try:
        yield
    finally:
        limits.LOCAL.clear()
        await dead.aclose()


@pytest.fixture
async def redis_down(ctx: AppContext, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[None]:
    async with down(ctx, monkeypatch):
        yield


@pytest.fixture(params=["up", "down"])
async def redis_up_or_down(
    request: pytest.FixtureRequest, ctx: AppContext, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[None]:
    if request.param == "up":
        yield
        return
    async with down(ctx, monkeypatch):
        yield


async def login(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await client.post("/client/v1/login", json={"email": email, "password": password})


async def test_wrong_passwords_still_lock_the_account_while_redis_is_down(
    client: httpx.AsyncClient, make_customer: MakeCustomer, ctx: AppContext, redis_down: None
) -> None:
    customer = await make_customer()
    guesses = [await login(client, customer.email, f"guess {n}") for n in range(12)]
    limit = ctx.settings.client_attempts_per_account
    assert [g.status_code for g in guesses] == [401] * limit + [429] * (12 - limit)
    assert guesses[limit].json()["type"] == "/errors/too-many-attempts"
    assert guesses[limit].headers["retry-after"] == "30"  # CLIENT_LOCK_SECONDS
    # Locked: the right password is refused too, as with Redis up.
    right = await login(client, customer.email, customer.password)
    assert (right.status_code, right.json()["detail"]) == (
        429,
        "Too many attempts, try again later",
    )


async def test_an_unknown_email_is_limited_alike_while_redis_is_down(
    client: httpx.AsyncClient, ctx: AppContext, redis_down: None
) -> None:
    limit = ctx.settings.client_attempts_per_account
    statuses = [(await login(client, "nobody@example.com", "x")).status_code for _ in range(7)]
    assert statuses == [401] * limit + [429, 429]


async def test_mailed_tokens_and_resets_still_lock_the_address_while_redis_is_down(
    client: httpx.AsyncClient, ctx: AppContext, redis_down: None
) -> None:
    limit = ctx.settings.client_attempts_per_ip
    for _ in range(limit):
        wrong = await client.post("/client/v1/verify", json={"token": "guess"})
        assert wrong.status_code == 400
    locked = await client.post("/client/v1/verify", json={"token": "guess"})
    assert locked.status_code == 429
    for _ in range(limit):
        wrong = await client.post(
            "/client/v1/password/reset", json={"token": "guess", "password": "long enough"}
        )
        assert wrong.status_code == 400
    reset = await client.post(
        "/client/v1/password/reset", json={"token": "guess", "password": "long enough"}
    )
    assert reset.status_code == 429


async def test_forgot_stops_mailing_past_its_limit_while_redis_is_down(
    client: httpx.AsyncClient,
    make_customer: MakeCustomer,
    mailbox: Mailbox,
    ctx: AppContext,
    redis_down: None,
) -> None:
    customer = await make_customer()
    for _ in range(ctx.settings.client_attempts_per_account + 3):
        answer = await client.post("/client/v1/password/forgot", json={"email": customer.email})
        assert answer.status_code == 202
    await mailbox.wait_for(customer.email, count=ctx.settings.client_attempts_per_account)
    await asyncio.sleep(0.3)
    assert len(mailbox.to(customer.email)) == ctx.settings.client_attempts_per_account


async def test_the_storefront_sign_in_says_too_many_attempts_while_redis_is_down(
    client: httpx.AsyncClient, make_customer: MakeCustomer, ctx: AppContext, redis_down: None
) -> None:
    customer = await make_customer()
    csrf = csrf_of(await client.get("/web/"))
    form = {"csrf": csrf, "email": customer.email, "password": "wrong"}
    for _ in range(ctx.settings.client_attempts_per_account):
        wrong = await client.post("/web/signin", data=form)
        assert "Invalid email or password" in wrong.text
    locked = await client.post("/web/signin", data={**form, "password": customer.password})
    assert locked.status_code == 429
    assert "Too many attempts, try again later" in locked.text
    assert "panel_session" not in locked.headers.get("set-cookie", "")


async def operator_sign_in(client: httpx.AsyncClient, token: str) -> httpx.Response:
    csrf = csrf_of(await client.get("/web/operator"))
    return await client.post("/web/operator/signin", data={"csrf": csrf, "token": token})


async def test_the_operator_page_limits_wrong_tokens(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    limit = ctx.settings.client_attempts_per_account
    for n in range(limit):
        wrong = await operator_sign_in(client, f"guess-{n}")
        assert wrong.status_code == 401
    locked = await operator_sign_in(client, ADMIN_TOKEN)
    assert locked.status_code == 429
    assert locked.headers["retry-after"] == "30"
    assert "Too many attempts, try again later" in locked.text
    assert "panel_operator" not in locked.headers.get("set-cookie", "")


async def test_the_operator_page_limits_wrong_tokens_while_redis_is_down(
    client: httpx.AsyncClient, ctx: AppContext, redis_down: None
) -> None:
    limit = ctx.settings.client_attempts_per_account
    statuses = [(await operator_sign_in(client, f"guess-{n}")).status_code for n in range(12)]
    assert statuses == [401] * limit + [429] * (12 - limit)
    locked = await operator_sign_in(client, ADMIN_TOKEN)
    assert locked.status_code == 429
    assert "panel_operator" not in locked.headers.get("set-cookie", "")


async def test_a_lock_taken_while_redis_was_down_outlasts_its_return(
    client: httpx.AsyncClient,
    make_customer: MakeCustomer,
    ctx: AppContext,
    monkeypatch: pytest.MonkeyPatch,
    redis_down: None,
) -> None:
    customer = await make_customer()
    for n in range(ctx.settings.client_attempts_per_account):
        assert (await login(client, customer.email, f"guess {n}")).status_code == 401
    monkeypatch.undo()  # Redis is back
    assert ctx.jobs.redis is not None and await ctx.jobs.redis.ping()
    locked = await login(client, customer.email, customer.password)
    assert locked.status_code == 429


async def test_full_in_process_counters_answer_a_new_scope_as_locked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(limits, "LOCAL", limits.LocalCounters(max_scopes=2))
    policy = limits.Policy(window_seconds=900, lock_seconds=30, lock_max_seconds=3600)
    no_redis = JobQueue(None, "unused")
    seen = [limits.Scope("login", "ip", ip, threshold=5) for ip in ("10.0.0.1", "10.0.0.2")]
    for scope in seen:
        await limits.failed(no_redis, [scope], policy)
    await limits.check(no_redis, seen)  # counted, below the threshold: not locked
    stranger = limits.Scope("login", "ip", "10.0.0.3", threshold=5)
    with pytest.raises(TooManyAttempts) as refused:
        await limits.check(no_redis, [stranger])
    assert refused.value.retry_after == limits.FULL_RETRY_SECONDS


async def two_factor_on(client: httpx.AsyncClient, customer: Customer) -> list[str]:
    """Turn two-factor sign-in on; its recovery codes."""
    setup = await client.post("/client/v1/2fa/setup", headers=customer.auth)
    code = pyotp.TOTP(setup.json()["secret"]).now()
    enabled = await client.post("/client/v1/2fa/enable", headers=customer.auth, json={"code": code})
    codes: list[str] = enabled.json()["recovery_codes"]
    return codes


async def test_a_signed_in_customer_cannot_guess_the_code_that_turns_two_factor_off(
    client: httpx.AsyncClient,
    make_customer: MakeCustomer,
    ctx: AppContext,
    redis_up_or_down: None,
) -> None:
    """A stolen session is not enough: the code (or a recovery code) is limited per
    account like a password, Redis up or down."""
    customer = await make_customer()
    codes = await two_factor_on(client, customer)
    limit = ctx.settings.client_attempts_per_account
    for n in range(limit):
        wrong = await client.post(
            "/client/v1/2fa/disable", headers=customer.auth, json={"code": f"{n:06d}"}
        )
        assert wrong.status_code == 401
    right = await client.post(
        "/client/v1/2fa/disable", headers=customer.auth, json={"code": codes[0]}
    )
    assert right.status_code == 429
    assert right.json()["type"] == "/errors/too-many-attempts"
    me = await client.get("/client/v1/me", headers=customer.auth)
    assert me.json()["two_factor"] is True


async def test_the_storefront_limits_guesses_of_the_current_password(
    client: httpx.AsyncClient, make_customer: MakeCustomer, ctx: AppContext, redis_down: None
) -> None:
    customer = await signed_in(client, make_customer, "0")
    csrf = csrf_of(await client.get("/web/account"))
    for n in range(ctx.settings.client_attempts_per_account):
        wrong = await client.post(
            "/web/account/password",
            data={"csrf": csrf, "current": f"guess {n}", "new": "a new password"},
        )
        assert "The current password is not correct" in wrong.text
    locked = await client.post(
        "/web/account/password",
        data={"csrf": csrf, "current": customer.password, "new": "a new password"},
    )
    assert "Too many attempts, try again later" in locked.text
    assert (await login(client, customer.email, customer.password)).status_code == 200
