"""Where outgoing HTTP may go (app/netguard.py): webhook and provider URLs reach only
globally routable addresses, and the connection goes to the address that was checked.
Nothing here connects anywhere but 127.0.0.1: refusals are asserted, and names resolve
through resolvers the test controls."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from sqlalchemy import func, select

from app import netguard
from app.context import AppContext
from app.orders.models import Order
from app.orders.service import StatusReport, apply_status
from app.providers.models import Provider
from app.sandbox import SandboxConfig, SandboxService
from app.settings import Settings
from app.webhooks.models import WebhookEvent
from tests.support.api import Api, MakeService, MakeUser, order_id_of
from tests.support.env import AUTH
from tests.support.upstream import (
    call_job,
    register_provider,
    run_jobs,
    sandbox,
    sandbox_stats,
    serve_app,
)

PUBLIC = "93.184.215.14"  # a globally routable address, never connected to here


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("127.0.0.1", "loopback"),
        ("10.1.2.3", "private"),
        ("169.254.169.254", "link-local"),
        ("100.64.0.1", "shared address space"),
        ("100.100.100.200", "shared address space"),
        ("0.0.0.0", "unspecified"),  # noqa: S104 - an address refused, never bound
        ("224.0.0.1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "broadcast"),
        ("198.18.0.1", "private"),
        ("::1", "loopback"),
        ("fe80::1", "link-local"),
        ("fc00::1", "private"),
        ("ff02::1", "multicast"),
        ("::", "unspecified"),
        ("::ffff:127.0.0.1", "IPv4-mapped form of 127.0.0.1 (loopback)"),
        ("::ffff:169.254.169.254", "IPv4-mapped form of 169.254.169.254 (link-local)"),
        ("2002:7f00:1::", "6to4 form of 127.0.0.1 (loopback)"),
        ("2002:a9fe:a9fe::1", "6to4 form of 169.254.169.254 (link-local)"),
        ("64:ff9b::7f00:1", "NAT64 form of 127.0.0.1 (loopback)"),
        ("64:ff9b::6440:1", "NAT64 form of 100.64.0.1 (shared address space)"),
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo"),
        ("::7f00:1", "reserved"),
        ("2001:db8::1", "private"),
    ],
)
def test_addresses_that_are_not_globally_routable_are_refused(address: str, why: str) -> None:
    assert netguard.refusal(address) == why


@pytest.mark.parametrize(
    "address", ["8.8.8.8", PUBLIC, "2606:4700::1111", "::ffff:8.8.8.8", "2002:808:808::1"]
)
def test_globally_routable_addresses_pass(address: str) -> None:
    assert netguard.refusal(address) is None


@dataclass
class Listener:
    """A server on 127.0.0.1 that records every request it gets."""

    url: str = ""
    port: int = 0
    seen: list[tuple[str, str]] = field(default_factory=list)  # (Host header, path)


@pytest.fixture
async def listener() -> AsyncIterator[Listener]:
    app = FastAPI()
    box = Listener()

    async def anything(request: Request, path: str) -> Response:
        box.seen.append((request.headers.get("host", ""), request.url.path))
        return Response(status_code=204)

    app.add_api_route("/{path:path}", anything, methods=["GET", "POST"])
    async with serve_app(app) as url:
        box.url, box.port = url, int(urlsplit(url).port or 0)
        yield box


@dataclass
class Answers:
    """A resolver the test controls: each call takes the next answer (the last repeats)."""

    answers: list[list[str]]
    asked: list[str] = field(default_factory=list)

    async def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        return self.answers[min(len(self.asked), len(self.answers)) - 1]


async def test_the_connection_goes_to_the_address_the_guard_resolved_and_checked(
    listener: Listener,
) -> None:
    """The URL's name is resolved once, by the guard, and the socket is opened to that
    address: no other resolver is asked (`hook.invalid` resolves nowhere else), and the
    request still names its own host."""
    answers = Answers([["127.0.0.1"]])
    policy = netguard.AddressPolicy(allow_private=True, resolve=answers)
    async with netguard.GuardedClient(policy, timeout=httpx.Timeout(5)) as http:
        response = await http.post(f"http://hook.invalid:{listener.port}/pinned")
        again = await http.post(f"http://hook.invalid:{listener.port}/kept-alive")
    assert (response.status_code, again.status_code) == (204, 204)
    assert listener.seen == [
        (f"hook.invalid:{listener.port}", "/pinned"),
        (f"hook.invalid:{listener.port}", "/kept-alive"),
    ]
    assert answers.asked == ["hook.invalid"]  # one connection, one resolution


async def test_an_answer_that_changes_after_the_check_is_checked_where_it_is_used(
    listener: Listener,
) -> None:
    """DNS rebinding: public when the URL is checked, loopback when connecting. The
    connection is refused; the listener on 127.0.0.1 hears nothing."""
    answers = Answers([[PUBLIC], ["127.0.0.1"]])
    policy = netguard.AddressPolicy(resolve=answers)
    url = f"http://rebind.invalid:{listener.port}/hook"
    assert await netguard.check_url(url, policy) == url
    async with netguard.GuardedClient(policy, timeout=httpx.Timeout(5)) as http:
        with pytest.raises(httpx.ConnectError) as refused:
            await http.post(url)
    cause = netguard.refused(refused.value)
    assert cause is not None and (cause.address, cause.why) == ("127.0.0.1", "loopback")
    assert listener.seen == []


async def test_a_name_with_one_private_address_among_public_ones_is_refused(
    listener: Listener,
) -> None:
    policy = netguard.AddressPolicy(resolve=Answers([[PUBLIC, "127.0.0.1"]]))
    with pytest.raises(netguard.AddressRefused):
        await netguard.check_url(f"http://mixed.invalid:{listener.port}/", policy)
    async with netguard.GuardedClient(policy, timeout=httpx.Timeout(5)) as http:
        with pytest.raises(httpx.ConnectError):
            await http.get(f"http://mixed.invalid:{listener.port}/")
    assert listener.seen == []


async def test_literal_loopback_forms_are_refused_without_connecting(listener: Listener) -> None:
    policy = netguard.AddressPolicy()
    async with netguard.GuardedClient(policy, timeout=httpx.Timeout(5)) as http:
        for host in ("127.0.0.1", "[::ffff:127.0.0.1]", "0.0.0.0", "localhost"):  # noqa: S104
            with pytest.raises(httpx.ConnectError):
                await http.get(f"http://{host}:{listener.port}/")
    assert listener.seen == []


# --- status webhooks ------------------------------------------------------------------


class RebindingDns:
    """The event loop's resolver for one name: a public address to the panel's first
    `public_for` questions, 127.0.0.1 afterwards (other names resolve as usual)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, name: str, public_for: int) -> None:
        self.name, self.public_for, self.asked = name, public_for, 0
        self.real = loop.getaddrinfo

    async def getaddrinfo(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name != self.name:
            return await self.real(host, port, *args, **kwargs)
        self.asked += 1
        address = PUBLIC if self.asked <= self.public_for else "127.0.0.1"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, int(port or 80)))]


async def test_a_webhook_name_rebound_to_loopback_after_its_checks_is_never_posted_to(
    ctx: AppContext,
    api: Api,
    make_user: MakeUser,
    make_service: MakeService,
    listener: Listener,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The name is public when the webhook is set and when it is checked again before the
    delivery, and 127.0.0.1 by the time of the connection: nothing reaches 127.0.0.1."""
    loop = asyncio.get_running_loop()
    dns = RebindingDns(loop, "hook.rebind.test", public_for=2)
    monkeypatch.setattr(loop, "getaddrinfo", dns.getaddrinfo)
    user = await make_user(balance="10")
    url = f"http://hook.rebind.test:{listener.port}/hook"
    assert (await api(user.key, "webhook", url=url))["webhook"] == url
    order_id = order_id_of(
        await api(user.key, "add", service=await make_service(), link="https://x.y/a", quantity=100)
    )
    async with ctx.db.transaction() as session:
        await apply_status(session, order_id, StatusReport("Completed", 1, 0), source="test")
    await call_job(ctx.settings, ctx, "deliver_webhooks")
    assert listener.seen == []
    async with ctx.db.session() as session:
        event = await session.scalar(
            select(WebhookEvent).where(WebhookEvent.user_id == user.user_id)
        )
    assert event is not None and event.delivered_at is None
    assert event.last_error == "Webhook URL must not point to a private or loopback address"
    assert dns.asked == 3  # set, checked before the delivery, and at the connection


# --- providers ------------------------------------------------------------------------


@pytest.fixture
def providers_public_only(ctx: AppContext, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setattr(ctx.settings, "provider_allow_private", False)
    return ctx.settings


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/api/v2",
        "http://100.64.0.1/api/v2",
        "http://[2002:a9fe:a9fe::]/api/v2",
        "http://[::ffff:169.254.169.254]/api/v2",
        "http://10.0.0.5/api/v2",
        "http://127.0.0.1:9/api/v2",
        "http://localhost:9/api/v2",
    ],
)
async def test_a_provider_url_that_is_not_public_is_refused_by_the_admin_api(
    ctx: AppContext, client: httpx.AsyncClient, providers_public_only: Settings, url: str
) -> None:
    created = await client.post(
        "/admin/v1/providers", headers=AUTH, json={"name": "P", "url": url, "api_key": "k"}
    )
    assert created.status_code == 422, created.text
    assert created.json()["detail"] == (
        "Provider URL must not point to a private or loopback address "
        "(set PROVIDER_ALLOW_PRIVATE=true for a provider on your own network)"
    )
    async with ctx.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(Provider)) == 0


async def test_a_provider_url_changed_to_a_private_address_is_refused(
    ctx: AppContext,
    client: httpx.AsyncClient,
    settings: Settings,
    providers_public_only: Settings,
) -> None:
    provider_id = await register_provider(ctx, settings, "http://provider.example")
    changed = await client.patch(
        f"/admin/v1/providers/{provider_id}",
        headers=AUTH,
        json={"url": "http://[64:ff9b::a9fe:a9fe]/api/v2"},
    )
    assert changed.status_code == 422, changed.text
    async with ctx.db.session() as session:
        provider = await session.get(Provider, provider_id)
        assert provider is not None and provider.url == "http://provider.example/api/v2"


async def test_the_worker_never_calls_a_provider_that_resolves_to_a_private_address(
    ctx: AppContext,
    api: Api,
    settings: Settings,
    make_user: MakeUser,
    make_service: MakeService,
) -> None:
    """A provider stored while private addresses were allowed (or whose name now points
    inward): with PROVIDER_ALLOW_PRIVATE off, no call leaves, the key included; the order
    waits, not sent, for the operator to fix the URL."""
    config = SandboxConfig(
        services=[SandboxService(1, "Followers", rate=Decimal("0.40"), min=10, max=1000)]
    )
    async with sandbox(config) as (url, _):
        provider_id = await register_provider(ctx, settings, url)
        sid = await make_service(min_quantity=10, provider_id=provider_id, provider_service_id="1")
        user = await make_user(balance="10")
        order_id = order_id_of(
            await api(user.key, "add", service=sid, link="https://x.y/a", quantity=100)
        )
        strict = settings.model_copy(update={"provider_allow_private": False})
        await run_jobs(strict, ctx)
        stats = await sandbox_stats(url)
    assert (stats["orders"], stats["add_calls"]) == (0, {})
    async with ctx.db.session() as session:
        order = await session.get(Order, order_id)
    assert order is not None and order.upstream_state == "queued"
    assert order.status == "Pending"
