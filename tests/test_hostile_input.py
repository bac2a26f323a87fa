"""What a hostile client sends to the public routes: broken multipart, deeply nested JSON,
links with control or bidirectional characters, non-ASCII digits, a pattern built to make
a backtracking engine explode. Each is answered in its protocol's shape, never with a 500,
both in process and against the API running as a real server."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from sqlalchemy import select, update

from app.catalog.models import Service
from app.catalog.patterns import compile_pattern, link_matches
from app.context import AppContext
from app.payments.models import PaymentNotification
from tests.support.api import Api, MakeService, MakeUser
from tests.support.client import MakeCustomer
from tests.support.env import AUTH
from tests.support.server import panel_server

INCORRECT = {"error": "Incorrect request"}
NESTED = b"[" * 50_000 + b"]" * 50_000
NESTED_IN_OBJECT = b'{"key": "k", "action": "balance", "x": ' + NESTED + b"}"
BOUNDARY = "hostileboundary"
NOTIFY_LIMIT = 12


def multipart(parts: list[str]) -> bytes:
    body = "".join(f"--{BOUNDARY}\r\n{part}\r\n" for part in parts) + f"--{BOUNDARY}--\r\n"
    return body.encode()


def field(name: str, value: str) -> str:
    return f'Content-Disposition: form-data; name="{name}"\r\n\r\n{value}'


FILE_PART = multipart(
    [
        field("key", "k"),
        'Content-Disposition: form-data; name="file"; filename="a.txt"\r\n'
        "Content-Type: text/plain\r\n\r\nhello",
    ]
)
TOO_MANY_FIELDS = multipart([field(f"f{i}", "v") for i in range(201)])
# Cut before its closing delimiter (`--boundary--`): the last part never ends.
UNCLOSED = multipart([field("key", "k"), field("action", "balance")])[: -len(BOUNDARY) - 6]
# (content type, body) pairs Starlette's multipart parser refuses with its own 400.
BROKEN_MULTIPART = [
    (f"multipart/form-data; boundary={BOUNDARY}", FILE_PART),
    ("multipart/form-data", multipart([field("key", "k")])),  # no boundary
    ("multipart/form-data; boundary=other", multipart([field("key", "k")])),
    (f"multipart/form-data; boundary={BOUNDARY}", TOO_MANY_FIELDS),
    (
        f"multipart/form-data; boundary={BOUNDARY}",
        multipart(["Content-Disposition: form-data\r\n\r\nno name"]),
    ),
    (f"multipart/form-data; boundary={BOUNDARY}", UNCLOSED),
    (f"multipart/form-data; boundary={BOUNDARY}", UNCLOSED[: UNCLOSED.rindex(b"--")]),
]


@pytest.fixture(scope="module")
def served(database_url: str) -> Iterator[str]:
    with panel_server(
        database_url,
        ROBOKASSA_LOGIN="shop",
        ROBOKASSA_PASSWORD1="one",
        ROBOKASSA_PASSWORD2="two",
        CURRENCY_RATES='{"RUB": "0.011"}',
        RATE_LIMIT_NOTIFY_PER_IP=str(NOTIFY_LIMIT),
    ) as url:
        yield url


async def post(base: str | httpx.AsyncClient, path: str, body: bytes, ctype: str) -> httpx.Response:
    headers = {"content-type": ctype}
    if isinstance(base, httpx.AsyncClient):
        return await base.post(path, content=body, headers=headers)
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        return await client.post(path, content=body, headers=headers)


# Multipart errors --------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v2", "/payments/invoice"])
async def test_multipart_errors_answer_incorrect_request_in_process(
    client: httpx.AsyncClient, path: str
) -> None:
    for ctype, body in BROKEN_MULTIPART:
        response = await post(client, path, body, ctype)
        assert (response.status_code, response.json()) == (200, INCORRECT), (ctype, body[:80])


@pytest.mark.parametrize("path", ["/api/v2", "/payments/invoice"])
async def test_multipart_errors_answer_incorrect_request_over_http(served: str, path: str) -> None:
    for ctype, body in BROKEN_MULTIPART:
        response = await post(served, path, body, ctype)
        assert (response.status_code, response.json()) == (200, INCORRECT), (ctype, body[:80])
        assert response.headers["content-type"] == "application/json"


async def test_multipart_errors_on_gateway_notifications_answer_400(
    served: str, ctx: AppContext
) -> None:
    for ctype, body in BROKEN_MULTIPART:
        response = await post(served, "/payments/robokassa/result", body, ctype)
        assert (response.status_code, response.text) == (400, "bad request")


async def test_a_well_formed_multipart_call_still_works(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    user = await make_user(balance="3")
    body = multipart([field("key", user.key), field("action", "balance")])
    response = await post(client, "/api/v2", body, f"multipart/form-data; boundary={BOUNDARY}")
    assert response.json() == {"balance": "3.00000", "currency": "USD"}


async def test_a_multipart_call_without_its_closing_boundary_is_an_incorrect_request(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    """Even with a valid key and action: a body cut short is not read as a call."""
    user = await make_user(balance="3")
    whole = multipart([field("action", "balance"), field("key", user.key)])
    cut = whole[: whole.rindex(f"--{BOUNDARY}--".encode())]
    ctype = f"multipart/form-data; boundary={BOUNDARY}"
    for body in (cut, cut.rstrip(b"\r\n")):
        response = await post(client, "/api/v2", body, ctype)
        assert (response.status_code, response.json()) == (200, INCORRECT)
    assert (await post(client, "/api/v2", whole, ctype)).json()["balance"] == "3.00000"


# Bodies over the limit -------------------------------------------------------------------

TOO_LARGE = {"error": "Request too large"}


async def chunks(total: int, size: int = 16 * 1024) -> AsyncIterator[bytes]:
    """A form body of `total` bytes sent in chunks (no Content-Length)."""
    yield b"key=k&action=balance&pad="
    sent = 25
    while sent < total:
        piece = b"x" * min(size, total - sent)
        sent += len(piece)
        yield piece


CHUNKED_PATHS = [
    ("/api/v2", "application/x-www-form-urlencoded"),
    ("/payments/invoice", "application/x-www-form-urlencoded"),
    ("/payments/robokassa/result", "application/x-www-form-urlencoded"),
    ("/client/v1/login", "application/json"),
    ("/client/v1/orders", "application/json"),
    ("/web/signin", "application/x-www-form-urlencoded"),
]


@pytest.mark.parametrize(("path", "ctype"), CHUNKED_PATHS)
async def test_a_chunked_body_over_the_limit_is_413_in_process(
    client: httpx.AsyncClient, ctx: AppContext, make_customer: MakeCustomer, path: str, ctype: str
) -> None:
    """Signed in (a route that needs a session reads the body only then)."""
    limit = ctx.settings.api_max_body_bytes
    headers = {"content-type": ctype, **(await make_customer()).auth}
    response = await client.post(path, content=chunks(limit + 1), headers=headers)
    assert (response.status_code, response.json()) == (413, TOO_LARGE)
    assert response.headers["content-type"] == "application/json"


@pytest.mark.parametrize(("path", "ctype"), CHUNKED_PATHS)
async def test_a_chunked_body_over_the_limit_is_413_over_http(
    served: str, ctx: AppContext, make_customer: MakeCustomer, path: str, ctype: str
) -> None:
    headers = {"content-type": ctype, **(await make_customer()).auth}
    async with httpx.AsyncClient(base_url=served, timeout=60) as client:
        response = await client.post(
            path, content=chunks(ctx.settings.api_max_body_bytes + 1), headers=headers
        )
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert (response.status_code, response.json()) == (413, TOO_LARGE)


async def test_a_chunked_multipart_body_over_the_limit_is_413(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    pad = "x" * ctx.settings.api_max_body_bytes

    async def body() -> AsyncIterator[bytes]:
        yield multipart([field("key", "k"), field("pad", pad)])

    response = await client.post(
        "/api/v2",
        content=body(),
        headers={"content-type": f"multipart/form-data; boundary={BOUNDARY}"},
    )
    assert (response.status_code, response.json()) == (413, TOO_LARGE)


async def test_a_chunked_body_at_the_limit_is_read(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    response = await client.post(
        "/api/v2",
        content=chunks(ctx.settings.api_max_body_bytes),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert (response.status_code, response.json()) == (200, {"error": "Invalid API key"})


# Deeply nested JSON ----------------------------------------------------------------------


NESTED_ANSWERS = [
    ("/api/v2", NESTED, 200, INCORRECT),
    ("/api/v2", NESTED_IN_OBJECT, 200, INCORRECT),
    ("/payments/invoice", NESTED, 200, INCORRECT),
    ("/payments/invoice", NESTED_IN_OBJECT, 200, INCORRECT),
    ("/payments/yookassa/notify", NESTED, 400, {"error": "malformed"}),
    ("/payments/yookassa/notify", NESTED_IN_OBJECT, 400, {"error": "malformed"}),
    # NaN is valid to Python's parser but not to PostgreSQL's JSON: never stored.
    (
        "/payments/yookassa/notify",
        b'{"type": "notification", "x": NaN}',
        400,
        {"error": "malformed"},
    ),
]


async def test_deeply_nested_json_is_an_incorrect_request_in_process(
    client: httpx.AsyncClient,
) -> None:
    for path, body, status, answer in NESTED_ANSWERS:
        response = await post(client, path, body, "application/json")
        assert (response.status_code, response.json()) == (status, answer), path
    rk = await post(client, "/payments/robokassa/result", NESTED, "application/json")
    assert (rk.status_code, rk.text) == (400, "bad request")


async def test_deeply_nested_json_is_an_incorrect_request_over_http(
    served: str, ctx: AppContext
) -> None:
    for path, body, status, answer in NESTED_ANSWERS:
        response = await post(served, path, body, "application/json")
        assert (response.status_code, response.json()) == (status, answer), path
    rk = await post(served, "/payments/robokassa/result", NESTED, "application/json")
    assert (rk.status_code, rk.text) == (400, "bad request")
    # Moderately nested values inside an object are no field values, and no 500 either.
    shallow = b'{"action": "balance", "key": ' + b"[" * 500 + b"]" * 500 + b"}"
    response = await post(served, "/api/v2", shallow, "application/json")
    assert response.json() == {"error": "Invalid API key"}


# Links and amounts -----------------------------------------------------------------------


HOSTILE_LINKS = [
    "https://instagram.com/\x01you",
    "https://instagram.com/\u202egnp.exe",  # right-to-left override
    "https://instagram.com/you\u200b",  # zero-width space (Cf)
    "https://instagram.com/\u2066you\u2069",  # isolates
    "https://instagram.com/you\x7f",
    "https://instagram.com/y\u0085ou",  # a C1 control
    "https://instagram.com/\ufeffyou",  # byte-order mark
]


async def test_links_with_control_or_bidi_characters_are_refused(
    api: Api, make_user: MakeUser, make_service: MakeService
) -> None:
    user = await make_user(balance="10")
    service = await make_service()
    for link in HOSTILE_LINKS:
        answer = await api(user.key, "add", service=service, link=link, quantity=100)
        assert answer == {"error": "Incorrect link"}, repr(link)
    # Letters of any script are still fine.
    fine = await api(user.key, "add", service=service, link="https://vk.com/дом", quantity=100)
    assert set(fine) == {"order"}
    assert await api(user.key, "balance") == {"balance": "9.91000", "currency": "USD"}


async def test_hostile_links_refused_over_http(
    served: str, make_user: MakeUser, make_service: MakeService
) -> None:
    user = await make_user(balance="10")
    service = await make_service()
    async with httpx.AsyncClient(base_url=served, timeout=60) as client:
        for link in HOSTILE_LINKS:
            data = {"key": user.key, "action": "add", "service": str(service)}
            response = await client.post("/api/v2", data={**data, "link": link, "quantity": "100"})
            assert response.json() == {"error": "Incorrect link"}, repr(link)
        balance = await client.post("/api/v2", data={"key": user.key, "action": "balance"})
    assert balance.json() == {"balance": "10.00000", "currency": "USD"}


NON_ASCII_AMOUNTS = ["５", "1０", "٥", "१०", "5\u200b", "1_000", "1e3", "Infinity", "+5", " .5"]


async def test_invoice_refuses_non_ascii_digits(
    served: str, client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    user = await make_user()
    async with httpx.AsyncClient(base_url=served, timeout=60) as real:
        for amount in NON_ASCII_AMOUNTS:
            data = {"key": user.key, "gateway": "robokassa", "amount": amount}
            for caller in (client, real):
                response = await caller.post("/payments/invoice", data=data)
                assert response.json() == {"error": "Incorrect amount"}, repr(amount)
        ok = await real.post(
            "/payments/invoice", data={"key": user.key, "gateway": "robokassa", "amount": "5"}
        )
    assert ok.json()["amount"] == "454.55"


# Link patterns: RE2, linear time ---------------------------------------------------------


EVIL = r"^https://(a+)+$"
EVIL_LINK = "https://" + "a" * 40 + "!"  # 2**40 steps for a backtracking engine


def test_link_patterns_are_compiled_by_re2() -> None:
    assert type(compile_pattern(EVIL)).__module__ == "re2"
    assert not link_matches(EVIL, EVIL_LINK)
    assert link_matches(EVIL, "https://aaaa")
    # Python's re accepts these; RE2 cannot match them in linear time and refuses them.
    for pattern in (r"^https://(a)\1", r"^https://(?=x)", r"^https://(?<!y)x"):
        with pytest.raises(ValueError, match="not a valid RE2 expression"):
            compile_pattern(pattern)


async def test_operator_cannot_set_a_pattern_re2_refuses(
    client: httpx.AsyncClient, make_service: MakeService
) -> None:
    category = await client.post("/admin/v1/categories", json={"name": "C"}, headers=AUTH)
    base = {"category_id": category.json()["id"], "name": "S", "rate": "1"}
    base |= {"min_quantity": 10, "max_quantity": 100}
    refused = await client.post(
        "/admin/v1/services", json={**base, "link_pattern": r"^https://(a)\1"}, headers=AUTH
    )
    assert refused.status_code == 422
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["errors"] == [
        {
            "loc": ["body", "link_pattern"],
            "msg": "Value error, link_pattern is not a valid RE2 expression: "
            "invalid escape sequence: \\1",
        }
    ]
    created = await client.post(
        "/admin/v1/services", json={**base, "link_pattern": EVIL}, headers=AUTH
    )
    assert created.status_code == 201
    patched = await client.patch(
        f"/admin/v1/services/{created.json()['id']}",
        json={"link_pattern": "(?P<a>x)(?P=a)"},
        headers=AUTH,
    )
    assert patched.status_code == 422
    assert "not a valid RE2 expression" in patched.text


async def test_an_unusable_stored_pattern_matches_nothing_and_is_logged(
    api: Api,
    ctx: AppContext,
    make_user: MakeUser,
    make_service: MakeService,
    caplog: pytest.LogCaptureFixture,
) -> None:
    user = await make_user(balance="10")
    service = await make_service()
    # Stored before patterns were checked with RE2 (Python's re took it).
    pattern = r"^https://(insta)gram\.com/\1"
    async with ctx.db.transaction() as session:
        await session.execute(
            update(Service).where(Service.id == service).values(link_pattern=pattern)
        )
    with caplog.at_level(logging.ERROR, logger="app.catalog.patterns"):
        answer = await api(
            user.key, "add", service=service, link="https://instagram.com/insta", quantity=100
        )
    assert answer == {"error": "Incorrect link"}
    assert "service link pattern unusable; no link matches it" in caplog.messages
    assert await api(user.key, "balance") == {"balance": "10.00000", "currency": "USD"}


async def test_exponential_pattern_answers_and_keeps_the_server_responsive(
    served: str, make_user: MakeUser
) -> None:
    user = await make_user(balance="10")
    async with httpx.AsyncClient(base_url=served, timeout=120, headers=AUTH) as client:
        category = await client.post("/admin/v1/categories", json={"name": "C"})
        service = await client.post(
            "/admin/v1/services",
            json={
                "category_id": category.json()["id"],
                "name": "Evil",
                "rate": "1",
                "min_quantity": 10,
                "max_quantity": 100,
                "link_pattern": EVIL,
            },
        )
        assert service.status_code == 201, service.text
        data = {"key": user.key, "action": "add", "service": str(service.json()["id"])}

        async def add(link: str) -> httpx.Response:
            return await client.post("/api/v2", data={**data, "link": link, "quantity": "10"})

        evil, health = await asyncio.gather(add(EVIL_LINK), client.get("/healthz"))
        assert evil.json() == {"error": "Incorrect link"}
        assert health.status_code == 200
        # RE2 semantics: the pattern still means what it says.
        assert set((await add("https://" + "a" * 40)).json()) == {"order"}
        balance = await client.post("/api/v2", data={"key": user.key, "action": "balance"})
    assert balance.json() == {"balance": "9.99000", "currency": "USD"}


# Gateway notifications: bounded storage, rate limit -------------------------------------


def random_form(total_bytes: int, width: int = 1500) -> dict[str, str]:
    return {
        f"f{i}_{secrets.token_hex(4)}": secrets.token_urlsafe(width)[:width]
        for i in range(total_bytes // width)
    }


async def test_random_notifications_are_stored_bounded_then_rate_limited(
    served: str, ctx: AppContext
) -> None:
    async with httpx.AsyncClient(base_url=served, timeout=60) as client:
        answers = []
        for n in range(NOTIFY_LIMIT):
            if n % 3 == 2:  # random bytes: unreadable, nothing to store
                response = await client.post(
                    "/payments/robokassa/result",
                    content=os.urandom(240_000),
                    headers={"content-type": "application/x-www-form-urlencoded"},
                )
            else:
                fields = {"InvId": str(n + 1), "OutSum": "1", "SignatureValue": "0" * 32}
                response = await client.post(
                    "/payments/robokassa/result", data={**fields, **random_form(240_000)}
                )
            answers.append((response.status_code, response.text))
        limited = await client.post("/payments/robokassa/result", data={"InvId": "1"})
        yk = await client.post("/payments/yookassa/notify", json={"type": "notification"})
        health = await client.get("/healthz")
    assert answers == [
        (400, "bad request") if n % 3 == 2 else (400, "rejected: bad_signature")
        for n in range(NOTIFY_LIMIT)
    ]
    assert (limited.status_code, limited.text) == (429, "Too many requests, try again later")
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert (yk.status_code, yk.json()) == (429, {"error": "Too many requests, try again later"})
    assert health.status_code == 200
    async with ctx.db.session() as session:
        rows = (
            await session.execute(
                select(PaymentNotification.outcome, PaymentNotification.payload).order_by(
                    PaymentNotification.id
                )
            )
        ).all()
    assert [outcome for outcome, _ in rows] == ["bad_signature"] * 8
    for _, payload in rows:
        assert len(json.dumps(payload).encode()) <= 4096
        marker = payload["_truncated"]
        assert marker["bytes"] > 240_000 and marker["fields"] == 3 + 160
        assert 0 < marker["kept"] < 20
