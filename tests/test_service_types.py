"""Every service type at the wire level: happy path (quantity, charge) and each refusal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from app.api_v2.docs import TYPE_EXAMPLES
from app.context import AppContext
from app.orders.models import Order
from tests.support.api import Api, MakeService, MakeUser, order_id_of

L = "https://instagram.com/p/abc"
FUTURE = (datetime.now(UTC) + timedelta(days=30)).strftime("%d/%m/%Y")
PAST = (datetime.now(UTC) - timedelta(days=1)).strftime("%d/%m/%Y")

# type, fields, units charged for (rate 1.00 per 1000 → charge = units / 1000), params kept
HAPPY: list[tuple[str, dict[str, str], int, dict[str, Any]]] = [
    ("Default", {"link": L, "quantity": "100"}, 100, {"quantity": 100}),
    (
        "Default",
        {"link": L, "quantity": "100", "runs": "3", "interval": "15"},
        300,
        {"quantity": 100, "runs": 3, "interval": 15},
    ),
    (
        "Custom Comments",
        {"link": L, "comments": "nice\r\ngreat\n\n  wow  \n"},
        3,
        {"comments": "nice\ngreat\nwow"},
    ),
    (
        "Mentions with Hashtags",
        {"link": L, "quantity": "50", "usernames": "@a,@b", "hashtags": "#x\n#y"},
        50,
        {"quantity": 50, "usernames": "@a\n@b", "hashtags": "#x\n#y"},
    ),
    (
        "Mentions Custom List",
        {"link": L, "usernames": "alice\nbob"},
        2,
        {"usernames": "alice\nbob"},
    ),
    (
        "Mentions Hashtag",
        {"link": L, "quantity": "20", "hashtag": "#sunset"},
        20,
        {"quantity": 20, "hashtag": "#sunset"},
    ),
    (
        "Mentions User Followers",
        {"link": L, "quantity": "20", "username": "@nasa"},
        20,
        {"quantity": 20, "username": "@nasa"},
    ),
    (
        "Mentions Media Likers",
        {"link": L, "quantity": "20", "media": "https://instagram.com/p/x"},
        20,
        {"quantity": 20, "media": "https://instagram.com/p/x"},
    ),
    (
        "Comment Likes",
        {"link": L, "quantity": "30", "username": "commenter"},
        30,
        {"quantity": 30, "username": "commenter"},
    ),
    (
        "Poll",
        {"link": L, "quantity": "40", "answer_number": "2"},
        40,
        {"quantity": 40, "answer_number": 2},
    ),
    (
        "Invites from Groups",
        {"link": L, "quantity": "25", "groups": "g1\ng2"},
        25,
        {"quantity": 25, "groups": "g1\ng2"},
    ),
    (
        "Subscriptions",
        {
            "username": "@star",
            "min": "10",
            "max": "20",
            "posts": "5",
            "old_posts": "1",
            "delay": "30",
            "expiry": FUTURE,
        },
        120,
        {
            "username": "@star",
            "min": 10,
            "max": 20,
            "posts": 5,
            "old_posts": 1,
            "delay": 30,
            "expiry": FUTURE,
        },
    ),
    (
        "Web Traffic",
        {
            "link": L,
            "quantity": "1000",
            "country": "US",
            "device": "Mobile",
            "type_of_traffic": "Google Keyword",
            "google_keyword": "smm panel",
            "referring_url": "https://google.com",
            "runs": "2",
            "interval": "60",
        },
        2000,
        {
            "quantity": 1000,
            "country": "US",
            "device": "Mobile",
            "type_of_traffic": "Google Keyword",
            "google_keyword": "smm panel",
            "referring_url": "https://google.com",
            "runs": 2,
            "interval": 60,
        },
    ),
]

PACKAGES: list[tuple[str, dict[str, str], dict[str, Any]]] = [
    ("Package", {"link": L}, {}),
    ("Custom Comments Package", {"link": L, "comments": "one\ntwo"}, {"comments": "one\ntwo"}),
]

ERRORS: list[tuple[str, dict[str, str], str]] = [
    ("Default", {"quantity": "100"}, "Incorrect link"),
    ("Default", {"link": L}, "Incorrect quantity"),
    ("Default", {"link": L, "quantity": "100", "runs": "0", "interval": "5"}, "Incorrect runs"),
    ("Default", {"link": L, "quantity": "100", "runs": "2"}, "Incorrect interval"),
    ("Default", {"link": L, "quantity": "5"}, "Quantity less than minimal 10"),
    ("Package", {}, "Incorrect link"),
    ("Custom Comments", {"link": L}, "Incorrect comments"),
    ("Custom Comments", {"link": L, "comments": "\n \n"}, "Incorrect comments"),
    ("Custom Comments", {"link": L, "comments": "a\nb"}, "Quantity less than minimal 10"),
    ("Custom Comments Package", {"link": L}, "Incorrect comments"),
    (
        "Mentions with Hashtags",
        {"link": L, "quantity": "50", "hashtags": "#x"},
        "Incorrect usernames",
    ),
    (
        "Mentions with Hashtags",
        {"link": L, "quantity": "50", "usernames": "a"},
        "Incorrect hashtags",
    ),
    ("Mentions Custom List", {"link": L}, "Incorrect usernames"),
    ("Mentions Hashtag", {"link": L, "quantity": "20"}, "Incorrect hashtag"),
    (
        "Mentions Hashtag",
        {"link": L, "quantity": "20", "hashtag": "two words"},
        "Incorrect hashtag",
    ),
    ("Mentions User Followers", {"link": L, "quantity": "20"}, "Incorrect username"),
    (
        "Mentions Media Likers",
        {"link": L, "quantity": "20", "media": "not a url"},
        "Incorrect media",
    ),
    ("Comment Likes", {"link": L, "quantity": "20"}, "Incorrect username"),
    ("Poll", {"link": L, "quantity": "20", "answer_number": "0"}, "Incorrect answer_number"),
    ("Poll", {"link": L, "quantity": "20", "answer_number": "abc"}, "Incorrect answer_number"),
    ("Invites from Groups", {"link": L, "quantity": "20"}, "Incorrect groups"),
    ("Subscriptions", {"min": "10", "max": "20", "posts": "5"}, "Incorrect username"),
    ("Subscriptions", {"username": "u", "min": "30", "max": "20", "posts": "5"}, "Incorrect min"),
    ("Subscriptions", {"username": "u", "min": "10", "max": "x", "posts": "5"}, "Incorrect max"),
    (
        "Subscriptions",
        {"username": "u", "min": "10", "max": "99999", "posts": "5"},
        "Quantity more than maximal 10000",
    ),
    ("Subscriptions", {"username": "u", "min": "10", "max": "20"}, "Incorrect posts"),
    (
        "Subscriptions",
        {"username": "u", "min": "10", "max": "20", "posts": "5", "delay": "7"},
        "Incorrect delay",
    ),
    (
        "Subscriptions",
        {"username": "u", "min": "10", "max": "20", "posts": "5", "expiry": PAST},
        "Incorrect expiry",
    ),
    (
        "Subscriptions",
        {"username": "u", "min": "10", "max": "20", "posts": "5", "expiry": "2030-01-01"},
        "Incorrect expiry",
    ),
    (
        "Web Traffic",
        {"link": L, "quantity": "100", "referring_url": "ftp://x"},
        "Incorrect referring_url",
    ),
]


async def order_params(ctx: AppContext, order_id: int) -> tuple[int, dict[str, Any]]:
    async with ctx.db.session() as session:
        order = await session.scalar(select(Order).where(Order.id == order_id))
        assert order is not None
        return order.quantity, order.params


@pytest.mark.parametrize(
    ("type_name", "fields", "units", "params"),
    HAPPY,
    ids=[f"{h[0]}-{i}" for i, h in enumerate(HAPPY)],
)
async def test_type_happy_path(
    api: Api,
    ctx: AppContext,
    make_user: MakeUser,
    make_service: MakeService,
    type_name: str,
    fields: dict[str, str],
    units: int,
    params: dict[str, Any],
) -> None:
    user = await make_user(balance="100")
    sid = await make_service(
        type=type_name, rate=Decimal("1.00"), min_quantity=1, max_quantity=10000, dripfeed=True
    )
    order_id = order_id_of(await api(user.key, "add", service=sid, **fields))
    assert await order_params(ctx, order_id) == (units, params)
    status = await api(user.key, "status", order=order_id)
    assert status["charge"] == f"{Decimal(units) / 1000:.5f}"
    if type_name == "Subscriptions":
        assert (status["posts"], status["expiry"]) == ("0", FUTURE)


@pytest.mark.parametrize(("type_name", "fields", "params"), PACKAGES)
async def test_package_types_charge_the_rate(
    api: Api,
    ctx: AppContext,
    make_user: MakeUser,
    make_service: MakeService,
    type_name: str,
    fields: dict[str, str],
    params: dict[str, Any],
) -> None:
    user = await make_user(balance="100")
    sid = await make_service(type=type_name, rate=Decimal("7.5"), min_quantity=1, max_quantity=1)
    order_id = order_id_of(await api(user.key, "add", service=sid, **fields))
    assert await order_params(ctx, order_id) == (1, params)
    assert await api(user.key, "balance") == {"balance": "92.50000", "currency": "USD"}


@pytest.mark.parametrize(
    ("type_name", "fields", "error"), ERRORS, ids=[f"{e[0]}-{e[2]}" for e in ERRORS]
)
async def test_type_validation_errors(
    api: Api,
    make_user: MakeUser,
    make_service: MakeService,
    type_name: str,
    fields: dict[str, str],
    error: str,
) -> None:
    user = await make_user(balance="100")
    sid = await make_service(
        type=type_name, rate=Decimal("1.00"), min_quantity=10, max_quantity=10000, dripfeed=True
    )
    assert await api(user.key, "add", service=sid, **fields) == {"error": error}
    assert await api(user.key, "balance") == {"balance": "100.00000", "currency": "USD"}


async def test_subscription_duplicate_rule_is_per_username(
    api: Api, ctx: AppContext, make_user: MakeUser, make_service: MakeService
) -> None:
    user = await make_user(balance="100")
    sid = await make_service(type="Subscriptions", rate=Decimal("1"), min_quantity=1)
    fields = {"min": "10", "max": "20", "posts": "2"}
    first = order_id_of(await api(user.key, "add", service=sid, username="@Star", **fields))
    assert "error" in await api(user.key, "add", service=sid, username="star", **fields)
    other = order_id_of(await api(user.key, "add", service=sid, username="other", **fields))
    assert other > first
    async with ctx.db.session() as session:
        placed = list(
            await session.scalars(
                select(Order.id).where(Order.user_id == user.user_id).order_by(Order.id)
            )
        )
    assert placed == [first, other]


async def test_openapi_has_an_add_example_for_every_type(client: Any) -> None:
    from app.catalog.models import SERVICE_TYPES
    from app.orders.types import SERVICE_TYPES as HANDLERS

    assert set(HANDLERS) == set(SERVICE_TYPES)
    spec = (await client.get("/openapi.json")).json()
    examples = spec["paths"]["/api/v2"]["post"]["requestBody"]["content"][
        "application/x-www-form-urlencoded"
    ]["examples"]
    for type_name in SERVICE_TYPES:
        assert f"add {type_name}" in examples


@pytest.mark.parametrize("type_name", list(TYPE_EXAMPLES))
async def test_documented_examples_are_accepted(
    api: Api, make_user: MakeUser, make_service: MakeService, type_name: str
) -> None:
    user = await make_user(balance="1000")
    sid = await make_service(type=type_name, rate=Decimal("1"), min_quantity=1, max_quantity=10000)
    # The example is sent as documented, with the service id replaced by the one created here.
    example = {**TYPE_EXAMPLES[type_name], "service": str(sid)}
    order_id_of(await api(user.key, "add", **example))
