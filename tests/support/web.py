"""Reading the storefront's pages in tests: every address a page makes the browser load
or go to, its CSRF token, a signed-in browser (the session cookie of a customer), and
every route of the storefront with real ids in its path."""

from __future__ import annotations

from html.parser import HTMLParser

import httpx
from fastapi.routing import APIRoute

from app.web.router import PARTS
from app.web.session import SESSION_COOKIE
from tests.support.client import Customer, MakeCustomer


class References(HTMLParser):
    """Every address a page makes the browser load or go to, and its first CSRF token."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.csrf: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for name in ("href", "src", "action", "formaction", "srcset", "poster", "data"):
            if values.get(name):
                self.urls.append(values[name] or "")
        if tag == "input" and values.get("name") == "csrf" and self.csrf is None:
            self.csrf = values.get("value")


def refs(html: str) -> References:
    parser = References()
    parser.feed(html)
    return parser


def csrf_of(response: httpx.Response) -> str:
    return refs(response.text).csrf or ""


def local(url: str) -> bool:
    return url.startswith(("/", "#")) and not url.startswith("//")


async def signed_in(
    client: httpx.AsyncClient, make_customer: MakeCustomer, balance: str
) -> Customer:
    customer = await make_customer(balance)
    client.cookies.set(SESSION_COOKIE, customer.token)
    return customer


def storefront_routes(method: str, **ids: int | str) -> list[str]:
    """Every route of the storefront answering `method`, with the given ids in its path
    (order_id=…, ticket_id=…, session_id=…, field=…)."""
    paths = []
    for route in (r for part in PARTS for r in part.routes):
        if isinstance(route, APIRoute) and method in (route.methods or ()):
            path = "/web" + route.path
            for name, value in ids.items():
                path = path.replace("{" + name + "}", str(value))
            paths.append(path)
    return paths


class Fields(HTMLParser):
    """The form fields a person fills in, and the labels of the page."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: list[dict[str, str | None]] = []
        self.labels: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "label" and values.get("for"):
            self.labels.add(values["for"] or "")
        filled = tag in ("select", "textarea") or (
            tag == "input" and values.get("type") not in ("hidden", "submit", "button")
        )
        if filled:
            self.fields.append(values)


def unlabelled(html: str) -> list[str]:
    """The fields of a page that have neither a <label for> nor an aria-label."""
    parser = Fields()
    parser.feed(html)
    return [
        str(f.get("name") or f.get("id"))
        for f in parser.fields
        if f.get("id") not in parser.labels and not f.get("aria-label")
    ]
