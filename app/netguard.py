"""Where the panel's outgoing HTTP may go: customers' webhook URLs and providers' URLs
(with the provider's API key in every request) reach only globally routable addresses, and
the connection goes to the very address that was checked.

The invariant: no outgoing connection opens to an address that `refusal` refuses, unless
the policy allows private targets. Enforced where the socket is opened (`GuardedBackend`,
the network backend of every guarded client and transport): the host is resolved once
there, every address it resolves to is checked, and the connection is made to one of
those addresses by number, so a DNS answer that changes between a check and the connect
(rebinding) cannot lead anywhere else. TLS still verifies the certificate of the URL's
host name (SNI) and the Host header is the URL's. `check_url` runs the same resolution and
check ahead, when a URL is set, so the operator or the customer hears of a bad URL at
once; it is advice, the connection is the guard.

Refused (`refusal`): every address that is not globally routable (`ipaddress` is_global),
and explicitly loopback, private, link-local (169.254.169.254, the cloud metadata
address), shared address space (100.64.0.0/10), multicast, reserved, unspecified and
broadcast addresses; IPv4-mapped (`::ffff:127.0.0.1`), 6to4 (`2002:7f00:1::`) and NAT64
(`64:ff9b::7f00:1`) forms are judged by the IPv4 address they carry; Teredo is refused.
A name is refused when any one of its addresses is.

A refusal at connect time is `AddressRefused`, an httpcore ConnectError: httpx raises it
as `httpx.ConnectError` (the request surely never left), with the refusal as its cause.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from functools import cache
from urllib.parse import urlsplit

import anyio
import httpcore
import httpx

Resolve = Callable[[str, int], Awaitable[list[str]]]
MAX_URL = 2000

SHARED_SPACE = ipaddress.IPv4Network("100.64.0.0/10")
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
BROADCAST = ipaddress.IPv4Address("255.255.255.255")


async def system_resolve(host: str, port: int) -> list[str]:
    """The addresses the system resolver gives for a host name, in its order."""
    infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


@dataclass(frozen=True)
class AddressPolicy:
    """Whether private targets are allowed (local providers, tests) and how names resolve."""

    allow_private: bool = False
    resolve: Resolve = system_resolve


class UrlRefused(ValueError):
    """Not a URL outgoing calls can take: http(s), a host, at most MAX_URL characters."""


class AddressRefused(httpcore.ConnectError):
    """A host that resolves to an address the policy refuses (or to none)."""

    def __init__(self, host: str, address: str, why: str) -> None:
        super().__init__(f"{host} resolves to {address or 'no address'}: {why}")
        self.host = host
        self.address = address
        self.why = why


def _v4_refusal(ip: ipaddress.IPv4Address) -> str | None:
    checks = (
        (ip.is_loopback, "loopback"),
        (ip.is_link_local, "link-local"),
        (ip in SHARED_SPACE, "shared address space"),
        (ip.is_unspecified, "unspecified"),
        (ip == BROADCAST, "broadcast"),
        (ip.is_multicast, "multicast"),
        (ip.is_reserved, "reserved"),
        (ip.is_private, "private"),
        (not ip.is_global, "not globally routable"),
    )
    return next((why for refused, why in checks if refused), None)


def _embedded_v4(ip: ipaddress.IPv6Address) -> tuple[str, ipaddress.IPv4Address] | None:
    """The IPv4 address an IPv6 address carries and leads to, with the form's name."""
    if ip.ipv4_mapped is not None:
        return "IPv4-mapped", ip.ipv4_mapped
    if ip.sixtofour is not None:
        return "6to4", ip.sixtofour
    if ip in NAT64:
        return "NAT64", ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _v6_refusal(ip: ipaddress.IPv6Address) -> str | None:
    embedded = _embedded_v4(ip)
    if embedded is not None:
        form, v4 = embedded
        why = _v4_refusal(v4)
        return f"{form} form of {v4} ({why})" if why else None
    checks = (
        (ip.teredo is not None, "Teredo"),
        (ip.is_loopback, "loopback"),
        (ip.is_link_local, "link-local"),
        (ip.is_site_local, "site-local"),
        (ip.is_unspecified, "unspecified"),
        (ip.is_multicast, "multicast"),
        (ip.is_reserved, "reserved"),
        (ip.is_private, "private"),
        (not ip.is_global, "not globally routable"),
    )
    return next((why for refused, why in checks if refused), None)


def refusal(address: str) -> str | None:
    """Why a connection to this address is refused, or None when it is globally routable."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return "not an IP address"
    if isinstance(ip, ipaddress.IPv6Address):
        return _v6_refusal(ip)
    return _v4_refusal(ip)


def _literal(host: str) -> str | None:
    text = host.strip("[]")
    try:
        ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    return text


async def addresses_for(host: str, port: int, policy: AddressPolicy) -> list[str]:
    """The addresses to connect to for `host`: resolved once, each one checked."""
    literal = _literal(host)
    try:
        found = [literal] if literal is not None else await policy.resolve(host, port)
        found = list(dict.fromkeys(found))  # once each, in the resolver's order
    except OSError as exc:
        raise httpcore.ConnectError(f"{host}: {exc}") from exc
    if not found:
        raise AddressRefused(host, "", "no address")
    if not policy.allow_private:
        for address in found:
            why = refusal(address)
            if why is not None:
                raise AddressRefused(host, address, why)
    return found


async def check_url(url: str, policy: AddressPolicy) -> str:
    """The URL (stripped) when outgoing calls may target it now: UrlRefused when it is no
    http(s) URL with a host; unless the policy allows private targets, AddressRefused when
    its host resolves to no address or to one that is not public."""
    text = url.strip()
    if len(text) > MAX_URL:
        raise UrlRefused("URL too long")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise UrlRefused(str(exc)) from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UrlRefused("not an http(s) URL with a host")
    if policy.allow_private:
        return text
    default = 443 if parts.scheme == "https" else 80
    try:
        await addresses_for(parts.hostname, port or default, policy)
    except AddressRefused:
        raise
    except httpcore.ConnectError as exc:
        raise AddressRefused(parts.hostname, "", str(exc)) from exc
    return text


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend that resolves, checks and connects by address."""

    def __init__(self, policy: AddressPolicy) -> None:
        self.policy = policy
        self._sockets = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's backend interface
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            with anyio.fail_after(timeout):
                addresses = await addresses_for(host, port, self.policy)
                return await self._first(addresses, port, local_address, socket_options)
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"{host}: connect timed out") from exc

    async def _first(
        self,
        addresses: list[str],
        port: int,
        local_address: str | None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None,
    ) -> httpcore.AsyncNetworkStream:
        """A connection to the first of the checked addresses that takes one."""
        failure: httpcore.ConnectError | None = None
        for address in addresses:
            try:
                return await self._sockets.connect_tcp(
                    address, port, local_address=local_address, socket_options=socket_options
                )
            except httpcore.ConnectError as exc:
                failure = exc
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's backend interface
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not an outgoing target")

    async def sleep(self, seconds: float) -> None:
        await self._sockets.sleep(seconds)


@cache
def default_ssl_context() -> ssl.SSLContext:
    """One verifying TLS context for every guarded client (building one loads the CA
    bundle: tens of milliseconds)."""
    return httpx.create_ssl_context()


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport whose connection pool opens its sockets through GuardedBackend.
    No proxy is ever used (a proxy would make the connection on its own terms)."""

    def __init__(
        self,
        policy: AddressPolicy,
        *,
        verify: ssl.SSLContext | None = None,
        limits: httpx.Limits = httpx.Limits(max_connections=100, max_keepalive_connections=20),
    ) -> None:
        context = verify if verify is not None else default_ssl_context()
        super().__init__(verify=context, limits=limits, trust_env=False)
        self.policy = policy
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=GuardedBackend(policy),
        )


class GuardedClient(httpx.AsyncClient):
    """An httpx client over a GuardedTransport; redirects are never followed (a redirect
    is a new target the caller did not choose)."""

    def __init__(
        self,
        policy: AddressPolicy,
        *,
        timeout: httpx.Timeout,
        limits: httpx.Limits = httpx.Limits(max_connections=100, max_keepalive_connections=20),
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(
            transport=GuardedTransport(policy, limits=limits),
            timeout=timeout,
            headers=headers,
            follow_redirects=False,
            trust_env=False,
        )
        self.policy = policy
        # The whole-call deadline of the provider calls made through it (set by
        # app.providers.client.build_http_client; None: that module's default).
        self.total_timeout: float | None = None


def policy_of(client: httpx.AsyncClient) -> AddressPolicy:
    """The policy of a guarded client; any other client gets the strict one."""
    return client.policy if isinstance(client, GuardedClient) else AddressPolicy()


def refused(exc: BaseException) -> AddressRefused | None:
    """The guard's refusal behind an httpx error, if that is what it was."""
    seen: BaseException | None = exc
    for _ in range(8):  # a short chain: httpx's error, httpcore's, the refusal
        if seen is None or isinstance(seen, AddressRefused):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None
