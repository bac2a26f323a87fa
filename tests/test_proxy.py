"""Behind a reverse proxy: the client's address comes from X-Forwarded-For / Forwarded only
when the direct peer is a trusted proxy; over https, HSTS and Secure cookies."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from app.context import AppContext
from app.http.proxy import TrustedProxies, forwarded_chain
from app.http.security import SecurityHeaders
from app.main import create_app
from app.payments.models import PaymentNotification
from app.settings import Settings
from tests.support.api import MakeUser

PROXY = "10.0.0.1"
STRANGER = "198.51.100.9"

Client = Callable[[str], httpx.AsyncClient]


@pytest.fixture
async def proxied(settings: Settings, ctx: AppContext) -> AsyncIterator[Client]:
    """The panel behind a proxy at 10.0.0.1, over https, 2 API v2 calls per IP a minute;
    `proxied(peer)` is a client connecting from `peer`."""
    app: FastAPI = create_app(
        settings.model_copy(
            update={
                "forwarded_allow_ips": f"{PROXY},192.168.0.0/16",
                "rate_limit_per_ip": 2,
                "public_url": "https://panel.example",
            }
        )
    )
    clients: list[httpx.AsyncClient] = []

    def connect(peer: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=(peer, 40000))
        client = httpx.AsyncClient(transport=transport, base_url="http://panel.test")
        clients.append(client)
        return client

    async with app.router.lifespan_context(app):
        yield connect
        for client in clients:
            await client.aclose()


async def _balance(client: httpx.AsyncClient, key: str, **headers: str) -> int:
    response = await client.post("/api/v2", data={"key": key, "action": "balance"}, headers=headers)
    return response.status_code


async def test_rate_limit_counts_the_forwarded_client_of_a_trusted_proxy(
    proxied: Client, make_user: MakeUser
) -> None:
    user = await make_user(balance="1")
    proxy = proxied(PROXY)
    alice = {"X-Forwarded-For": "203.0.113.7"}
    bob = {"X-Forwarded-For": "203.0.113.8"}
    assert [await _balance(proxy, user.key, **alice) for _ in range(2)] == [200, 200]
    # Bob shares the proxy's address, not Alice's budget.
    assert [await _balance(proxy, user.key, **bob) for _ in range(2)] == [200, 200]
    assert await _balance(proxy, user.key, **alice) == 429
    # A client's own X-Forwarded-For entry is ignored: the proxy appended the real address.
    spoofed = {"X-Forwarded-For": "1.1.1.1, 203.0.113.8"}
    assert await _balance(proxy, user.key, **spoofed) == 429
    # RFC 7239 Forwarded works the same way.
    carol = {"Forwarded": 'for="[2001:db8::7]:4711";proto=https'}
    assert [await _balance(proxy, user.key, **carol) for _ in range(3)] == [200, 200, 429]


async def test_rate_limit_ignores_forwarded_headers_from_an_untrusted_peer(
    proxied: Client, make_user: MakeUser
) -> None:
    user = await make_user(balance="1")
    stranger = proxied(STRANGER)
    statuses = [
        await _balance(stranger, user.key, **{"X-Forwarded-For": f"203.0.113.{n}"})
        for n in range(3)
    ]
    assert statuses == [200, 200, 429]
    forwarded = {"Forwarded": "for=203.0.113.50"}
    assert await _balance(stranger, user.key, **forwarded) == 429


async def _notification_addr(ctx: AppContext, client: httpx.AsyncClient, **headers: str) -> str:
    body = {"type": "notification", "event": "payment.canceled", "object": {"id": "p-1"}}
    response = await client.post("/payments/yookassa/notify", json=body, headers=headers)
    assert response.status_code == 200
    async with ctx.db.session() as session:
        row = (
            await session.scalars(
                select(PaymentNotification).order_by(PaymentNotification.id.desc()).limit(1)
            )
        ).one()
    assert row.outcome == "ignored" and row.remote_addr is not None
    return row.remote_addr


async def test_payment_notification_log_records_the_client_behind_a_trusted_proxy(
    proxied: Client, ctx: AppContext
) -> None:
    proxy = proxied(PROXY)
    assert await _notification_addr(ctx, proxy, **{"X-Forwarded-For": "203.0.113.7"}) == (
        "203.0.113.7"
    )
    # Two trusted hops (the load balancer on 192.168.0.0/16 behind the edge proxy).
    chain = {"X-Forwarded-For": "6.6.6.6, 203.0.113.9, 192.168.4.4"}
    assert await _notification_addr(ctx, proxy, **chain) == "203.0.113.9"
    forwarded = {"Forwarded": 'for=203.0.113.10;proto=https, for="192.168.4.4"'}
    assert await _notification_addr(ctx, proxy, **forwarded) == "203.0.113.10"
    # No header: the proxy itself.
    assert await _notification_addr(ctx, proxy) == PROXY


async def test_payment_notification_log_keeps_the_peer_of_an_untrusted_request(
    proxied: Client, ctx: AppContext
) -> None:
    stranger = proxied(STRANGER)
    for headers in ({"X-Forwarded-For": "203.0.113.7"}, {"Forwarded": "for=203.0.113.7"}):
        assert await _notification_addr(ctx, stranger, **headers) == STRANGER


async def test_https_public_url_sends_hsts(proxied: Client, client: httpx.AsyncClient) -> None:
    secure = await proxied(PROXY).get("/healthz")
    assert secure.headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"
    plain = await client.get("/healthz")
    assert "strict-transport-security" not in plain.headers


async def _sets_cookies(scope: Scope, receive: Receive, send: Send) -> None:
    response = Response("ok")
    response.set_cookie("session", "abc", httponly=True)
    response.raw_headers.append((b"set-cookie", b"already=1; Path=/; Secure"))
    await response(scope, receive, send)


@pytest.mark.parametrize("https", [True, False])
async def test_cookies_are_secure_over_https(https: bool) -> None:
    app = SecurityHeaders(_sets_cookies, https=https)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as client:
        cookies = (await client.get("/")).headers.get_list("set-cookie")
    if https:
        assert cookies == [
            "session=abc; HttpOnly; Path=/; SameSite=lax; Secure",
            "already=1; Path=/; Secure",
        ]
    else:
        assert cookies == [
            "session=abc; HttpOnly; Path=/; SameSite=lax",
            "already=1; Path=/; Secure",
        ]


def test_trusted_proxies_as_uvicorn_reads_them() -> None:
    trusted = TrustedProxies("127.0.0.1, 10.0.0.0/8, ::1, unix:/run/nginx.sock")
    assert "10.2.3.4" in trusted and "::1" in trusted and "unix:/run/nginx.sock" in trusted
    assert "11.0.0.1" not in trusted and "not-an-ip" not in trusted
    assert "203.0.113.1" in TrustedProxies("*")
    assert trusted.client_of(["203.0.113.1", "10.0.0.2"]) == "203.0.113.1"
    assert trusted.client_of(["10.0.0.3", "10.0.0.2"]) == "10.0.0.3"
    assert forwarded_chain({b"forwarded": 'for=_hidden, for="[::1]:80";proto=HTTPS'}) == (
        ["_hidden", "::1"],
        "https",
    )
