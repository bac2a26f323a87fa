"""The client's address and scheme behind a reverse proxy.

`X-Forwarded-For` / `X-Forwarded-Proto` and RFC 7239 `Forwarded` are believed only when the
direct peer is a trusted proxy (FORWARDED_ALLOW_IPS: comma-separated addresses or networks,
or `*`, as uvicorn's `--forwarded-allow-ips`). The client is then the right-most address of
the chain that is not itself a trusted proxy, so a client cannot choose its own address by
sending the header: only what the trusted proxies appended counts. Everything downstream
(the per-IP rate limit, the payment notification log) reads `scope["client"]`.
"""

from __future__ import annotations

import ipaddress
import re

from starlette.types import ASGIApp, Receive, Scope, Send

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
# Peer addresses whose trust is remembered at most (a proxy or two, and direct clients).
MAX_SEEN_PEERS = 4096


class TrustedProxies:
    def __init__(self, spec: str) -> None:
        self.everyone = False
        self.networks: list[Network] = []
        self.names: set[str] = set()  # a literal such as a unix socket path
        self._seen: dict[str, bool] = {}  # peer address -> trusted (parsed once)
        for item in (part.strip() for part in spec.split(",")):
            if not item:
                continue
            if item == "*":
                self.everyone = True
                continue
            try:
                self.networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                self.names.add(item)

    def __contains__(self, host: str) -> bool:
        if self.everyone or host in self.names:
            return True
        known = self._seen.get(host)
        if known is None:
            known = self._trusted(host)
            if len(self._seen) >= MAX_SEEN_PEERS:
                self._seen.clear()
            self._seen[host] = known
        return known

    def _trusted(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self.networks)

    def client_of(self, chain: list[str]) -> str | None:
        """The right-most address that no trusted proxy added for itself."""
        for host in reversed(chain):
            if host not in self:
                return host
        return chain[0] if chain else None


_FOR = re.compile(r'(?:^|;)\s*for="?([^";,]+)"?', re.IGNORECASE)
_PROTO = re.compile(r'(?:^|;)\s*proto="?([A-Za-z]+)"?', re.IGNORECASE)


def _forwarded_host(value: str) -> str:
    """`192.0.2.1:4711`, `"[2001:db8::1]:4711"` → the bare address."""
    value = value.strip()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value[1:]
    if value.count(":") == 1:
        return value.split(":", 1)[0]
    return value


def forwarded_chain(headers: dict[bytes, str]) -> tuple[list[str], str | None]:
    """(client chain, scheme) from X-Forwarded-* or, failing that, from Forwarded."""
    xff = headers.get(b"x-forwarded-for")
    if xff is not None:
        hosts = [host.strip() for host in xff.split(",") if host.strip()]
        proto = headers.get(b"x-forwarded-proto")
        return hosts, proto.split(",")[-1].strip().lower() if proto else None
    forwarded = headers.get(b"forwarded")
    if forwarded is None:
        return [], None
    chain: list[str] = []
    scheme: str | None = None
    for element in forwarded.split(","):
        found = _FOR.search(element)
        if found:
            chain.append(_forwarded_host(found.group(1)))
        named = _PROTO.search(element)
        if named:
            scheme = named.group(1).lower()
    return chain, scheme


class ProxyHeaders:
    """Pure ASGI: rewrites `client` and `scheme` for requests from a trusted proxy."""

    def __init__(self, app: ASGIApp, trusted: str) -> None:
        self.app = app
        self.trusted = TrustedProxies(trusted)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            peer = scope.get("client")
            if peer is not None and peer[0] in self.trusted:
                headers = {
                    name: value.decode("latin-1")
                    for name, value in scope.get("headers", [])
                    if name in (b"x-forwarded-for", b"x-forwarded-proto", b"forwarded")
                }
                chain, scheme = forwarded_chain(headers)
                client = self.trusted.client_of(chain)
                if client is not None or scheme is not None:
                    scope = dict(scope)
                    if client is not None:
                        scope["client"] = (client, 0)
                    if scheme in ("http", "https"):
                        ws = scope["type"] == "websocket"
                        scope["scheme"] = {"http": "ws", "https": "wss"}[scheme] if ws else scheme
        await self.app(scope, receive, send)
