"""The customer API's request bodies are as strict as the operator API's: a field the
route does not know, or a list where one value belongs, is refused with problem JSON 422
naming the field, and nothing is done. `POST /client/v1/orders` (JSON or a form) included."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from app.accounts.models import User
from app.client.schemas import OrderIn
from app.context import AppContext
from app.orders.models import Order
from app.orders.types import SERVICE_TYPES, field_names
from tests.support.api import MakeService
from tests.support.client import Customer, MakeCustomer

LINK = "https://instagram.com/strict"


def problem(response: httpx.Response) -> list[dict[str, Any]]:
    """The errors of a 422 problem answer."""
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert (body["type"], body["title"], body["detail"]) == (
        "about:blank",
        "Unprocessable Content",
        "Invalid request",
    )
    errors: list[dict[str, Any]] = body["errors"]
    return errors


async def nothing_happened(ctx: AppContext, who: Customer, balance: str) -> None:
    async with ctx.db.session() as session:
        orders = await session.scalar(select(func.count()).select_from(Order))
        money = await session.scalar(select(User.balance).where(User.id == who.user_id))
    assert (orders, money) == (0, Decimal(balance))


async def test_every_customer_body_schema_refuses_fields_it_does_not_know(
    client: httpx.AsyncClient,
) -> None:
    spec = (await client.get("/openapi.json")).json()
    schemas = spec["components"]["schemas"]
    seen = []
    for path, operations in spec["paths"].items():
        if not path.startswith("/client/v1"):
            continue
        for method, operation in operations.items():
            for content in operation.get("requestBody", {}).get("content", {}).values():
                schema = content["schema"]
                if "$ref" in schema:
                    schema = schemas[schema["$ref"].rsplit("/", 1)[1]]
                seen.append((method, path, schema.get("additionalProperties")))
    assert len(seen) >= 15
    assert [s for s in seen if s[2] is not False] == []


@pytest.fixture
async def shopper(make_customer: MakeCustomer) -> Customer:
    return await make_customer("10")


@pytest.fixture
async def service(make_service: MakeService) -> int:
    return await make_service(rate=Decimal("1.00"), min_quantity=10)


@pytest.mark.parametrize(
    ("extra", "loc", "msg"),
    [
        ({"colour": "red"}, ["body", "colour"], "Extra inputs are not permitted"),
        ({"key": "an API key"}, ["body", "key"], "Extra inputs are not permitted"),
        ({"quantity": ["100"]}, ["body", "quantity"], None),
        ({"quantity": [100]}, ["body", "quantity"], None),
        ({"link": [LINK]}, ["body", "link"], None),
        ({"link": {"url": LINK}}, ["body", "link"], None),
        ({"quantity": True}, ["body", "quantity"], None),
        ({"quantity": 100.0}, ["body", "quantity"], None),
    ],
)
async def test_an_order_with_an_unknown_field_or_a_wrapped_value_is_refused(
    client: httpx.AsyncClient,
    ctx: AppContext,
    shopper: Customer,
    service: int,
    extra: dict[str, Any],
    loc: list[str],
    msg: str | None,
) -> None:
    body = {"service": str(service), "link": LINK, "quantity": "100", **extra}
    refused = await client.post("/client/v1/orders", headers=shopper.auth, json=body)
    errors = problem(refused)
    assert {tuple(e["loc"][:2]) for e in errors} == {tuple(loc)}
    if msg is not None:
        assert errors == [{"loc": loc, "msg": msg}]
    await nothing_happened(ctx, shopper, "10")


async def test_a_wrapped_service_id_is_refused(
    client: httpx.AsyncClient, ctx: AppContext, shopper: Customer, service: int
) -> None:
    body = {"service": [service], "link": LINK, "quantity": "100"}
    errors = problem(await client.post("/client/v1/orders", headers=shopper.auth, json=body))
    assert {tuple(e["loc"][:2]) for e in errors} == {("body", "service")}
    await nothing_happened(ctx, shopper, "10")


async def test_a_form_order_is_as_strict(
    client: httpx.AsyncClient, ctx: AppContext, shopper: Customer, service: int
) -> None:
    fields = {"service": str(service), "link": LINK, "quantity": "100"}
    unknown = await client.post(
        "/client/v1/orders", headers=shopper.auth, data={**fields, "colour": "red"}
    )
    assert problem(unknown) == [
        {"loc": ["body", "colour"], "msg": "Extra inputs are not permitted"}
    ]
    twice = await client.post(
        "/client/v1/orders",
        headers={**shopper.auth, "content-type": "application/x-www-form-urlencoded"},
        content=f"service={service}&link={LINK}&quantity=100&quantity=200",
    )
    assert {tuple(e["loc"][:2]) for e in problem(twice)} == {("body", "quantity")}
    await nothing_happened(ctx, shopper, "10")
    placed = await client.post("/client/v1/orders", headers=shopper.auth, data=fields)
    assert placed.status_code == 201, placed.text


async def test_numbers_and_strings_are_still_taken_alike(
    client: httpx.AsyncClient, ctx: AppContext, shopper: Customer, service: int
) -> None:
    first = await client.post(
        "/client/v1/orders",
        headers=shopper.auth,
        json={"service": service, "link": LINK, "quantity": 100, "request_id": "r-1"},
    )
    second = await client.post(
        "/client/v1/orders",
        headers=shopper.auth,
        json={"service": str(service), "link": LINK + "2", "quantity": "100", "runs": None},
    )
    assert (first.status_code, second.status_code) == (201, 201), (first.text, second.text)
    async with ctx.db.session() as session:
        money = await session.scalar(select(User.balance).where(User.id == shopper.user_id))
    assert money == Decimal("9.80000")


def test_the_order_body_knows_every_field_of_every_service_type() -> None:
    taken = {name.rstrip("?") for kind in SERVICE_TYPES for name in field_names(kind)}
    assert set(OrderIn.model_fields) == taken | {"service", "request_id", "accept_terms"}


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        (
            "POST",
            "/client/v1/login",
            {"email": "a@b.c", "password": "x", "remember": 1},
            "remember",
        ),
        (
            "POST",
            "/client/v1/register",
            {"email": "a@b.c", "password": "long enough", "role": "admin"},
            "role",
        ),
        ("POST", "/client/v1/password/forgot", {"email": "a@b.c", "lang": "en"}, "lang"),
        ("POST", "/client/v1/verify", {"token": "t", "user": 1}, "user"),
        ("PATCH", "/client/v1/me", {"nmae": "Ann"}, "nmae"),
        ("POST", "/client/v1/orders/mass", {"lines": "", "dry_run": True}, "dry_run"),
        (
            "POST",
            "/client/v1/deposits",
            {"gateway": "robokassa", "amount": "5", "bonus": "1"},
            "bonus",
        ),
        ("POST", "/client/v1/2fa/disable", {"code": "123456", "force": True}, "force"),
    ],
)
async def test_customer_bodies_refuse_unknown_fields(
    client: httpx.AsyncClient,
    shopper: Customer,
    method: str,
    path: str,
    body: dict[str, Any],
    field: str,
) -> None:
    refused = await client.request(method, path, headers=shopper.auth, json=body)
    assert problem(refused) == [{"loc": ["body", field], "msg": "Extra inputs are not permitted"}]


async def test_a_wrapped_value_in_a_customer_body_is_refused(
    client: httpx.AsyncClient, shopper: Customer
) -> None:
    refused = await client.post(
        "/client/v1/login", json={"email": [shopper.email], "password": shopper.password}
    )
    assert [e["loc"] for e in problem(refused)] == [["body", "email"]]
