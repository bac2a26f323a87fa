"""Test fixtures: a throwaway Postgres database per run, real Redis, the real app."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from app import migrate
from app.accounts import service as accounts
from app.catalog.models import Category, Service
from app.context import AppContext
from app.customers import service as customers
from app.main import create_app
from app.settings import Settings
from tests.support.accounts import open_reseller
from tests.support.api import Api, MakeService, MakeUser, Reseller
from tests.support.client import Customer, MakeCustomer
from tests.support.env import ADMIN_TOKEN, BASE_DB, SECRET_KEY, TABLES, TEST_REDIS
from tests.support.mail import Mailbox, start_server


def _with_db(url: str, name: str) -> str:
    return url.rsplit("/", 1)[0] + "/" + name


@pytest.fixture(scope="session")
async def database_url() -> AsyncIterator[str]:
    name = f"smm_test_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(BASE_DB)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    url = _with_db(BASE_DB, name)
    await asyncio.to_thread(migrate.upgrade, url)
    yield url
    admin = await asyncpg.connect(BASE_DB)
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.close()


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        redis_url=TEST_REDIS,
        admin_token=ADMIN_TOKEN,
        queue_name=f"test:queue:{uuid.uuid4().hex[:8]}",
        log_json=False,
        secret_key=SECRET_KEY,
        # Off for the suite (many calls from one address); tests of the limits turn them on.
        rate_limit_per_ip=0,
        rate_limit_per_key=0,
        # The sandbox providers of the suite listen on 127.0.0.1.
        provider_allow_private=True,
    )


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture(scope="session")
def ctx(app: FastAPI) -> AppContext:
    context: AppContext = app.state.ctx
    return context


@pytest.fixture(autouse=True)
async def clean_state(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    if "ctx" not in request.fixturenames:
        yield
        return
    context: AppContext = request.getfixturevalue("ctx")
    async with context.db.engine.begin() as conn:
        await conn.exec_driver_sql(f"TRUNCATE {TABLES} CASCADE")
    if context.jobs.redis is not None:
        await context.jobs.redis.flushdb()
    yield


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://panel.test") as c:
        yield c


@pytest.fixture
def api(client: httpx.AsyncClient) -> Api:
    """Call /api/v2 with form fields and return the decoded JSON (asserting HTTP 200)."""

    async def call(key: str, action: str, **fields: Any) -> Any:
        data = {"key": key, "action": action, **{k: str(v) for k, v in fields.items()}}
        response = await client.post("/api/v2", data=data)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/json"
        return response.json()

    return call


@pytest.fixture
def make_user(ctx: AppContext) -> MakeUser:
    async def make(balance: str | Decimal = "0", email: str | None = None) -> Reseller:
        return await open_reseller(ctx, balance, email or f"{uuid.uuid4().hex[:8]}@example.com")

    return make


@pytest.fixture
def make_service(ctx: AppContext) -> MakeService:
    async def make(**overrides: Any) -> int:
        async with ctx.db.transaction() as session:
            category = Category(name=overrides.pop("category", "First Category"))
            session.add(category)
            await session.flush()
            values: dict[str, Any] = {
                "name": "Followers",
                "type": "Default",
                "rate": Decimal("0.90"),
                "min_quantity": 50,
                "max_quantity": 10000,
                "refill": True,
                "refill_days": 30,
                "cancel": True,
            }
            values.update(overrides)
            service = Service(category_id=category.id, **values)
            session.add(service)
            await session.flush()
            return service.id

    return make


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[Mailbox]:
    controller, box = start_server()
    yield box
    controller.stop()


@pytest.fixture
def mailbox(smtp_server: Mailbox, ctx: AppContext) -> Iterator[Mailbox]:
    """The panel's mail goes to a real local SMTP server for this test."""
    smtp_server.received.clear()
    before = ctx.settings.mail_url
    ctx.settings.mail_url = f"smtp://127.0.0.1:{smtp_server.port}"
    yield smtp_server
    ctx.settings.mail_url = before


@pytest.fixture
def make_customer(ctx: AppContext, client: httpx.AsyncClient, make_user: MakeUser) -> MakeCustomer:
    async def make(balance: str = "0") -> Customer:
        reseller = await make_user(balance)
        password = "s3cret-" + uuid.uuid4().hex[:8]
        async with ctx.db.transaction() as session:
            user = await accounts.get_user(session, reseller.user_id)
            login = await customers.login_of(session, user.id)
            login.password_hash = customers.hash_password(password)
            login.email_verified_at = user.created_at
            email = user.email or ""
        response = await client.post(
            "/client/v1/login", json={"email": email, "password": password}
        )
        assert response.status_code == 200, response.text
        return Customer(reseller.user_id, reseller.key, email, password, response.json()["token"])

    return make
