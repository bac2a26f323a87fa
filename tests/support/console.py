"""Staff members signed in to the console in tests: a member with a password and an
enrolled second factor, signed in through the sign-in form itself (its CSRF token, the
code of the member's authenticator computed here), and every route of the console."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from html.parser import HTMLParser

import httpx
import pyotp
from fastapi.routing import APIRoute

from app import keyring
from app.console.router import PARTS
from app.context import AppContext
from app.db import utcnow
from app.staff import service as staff
from tests.support.staff import Staff, make_staff
from tests.support.web import csrf_of

PASSWORD = "correct horse battery"


@dataclass(frozen=True)
class Member:
    staff: Staff
    secret: str  # the TOTP seed of their authenticator

    def code(self, steps_ahead: int = 0) -> str:
        """The code their app shows now (or `steps_ahead` 30-second steps later, which the
        panel still accepts one step ahead)."""
        return pyotp.TOTP(self.secret).at(time.time() + 30 * steps_ahead)


async def enrolled(ctx: AppContext, role: str, email: str | None = None) -> Member:
    """A member with a password and a second factor already on (no code used yet)."""
    address = email or f"{role}-{uuid.uuid4().hex[:6]}@staff.example"
    member = await make_staff(ctx, role, address, password=PASSWORD)
    secret = pyotp.random_base32()
    async with ctx.db.transaction() as session:
        row = await staff.get_member(session, member.id)
        row.totp_secret = keyring.encrypt(ctx.settings.secret_key, staff.TOTP_PURPOSE, secret)
        row.totp_enabled_at = utcnow()
    return Member(member, secret)


async def sign_in(
    client: httpx.AsyncClient, member: Member, *, code: str | None = None
) -> httpx.Response:
    form = await client.get("/web/admin/login")
    return await client.post(
        "/web/admin/login",
        data={
            "csrf": csrf_of(form),
            "email": member.staff.email,
            "password": PASSWORD,
            "code": member.code() if code is None else code,
            "next": "/web/admin/",
        },
    )


async def signed_in(client: httpx.AsyncClient, ctx: AppContext, role: str) -> Member:
    member = await enrolled(ctx, role)
    done = await sign_in(client, member)
    assert (done.status_code, done.headers["location"]) == (303, "/web/admin/"), done.text
    return member


def console_routes(method: str, **ids: int | str) -> list[str]:
    """Every route of the console answering `method`, with the given ids in its path."""
    paths = []
    for route in (r for part in PARTS for r in part.routes):
        if isinstance(route, APIRoute) and method in (route.methods or ()):
            path = "/web/admin" + route.path
            for name, value in ids.items():
                path = path.replace("{" + name + "}", str(value))
            paths.append(path)
    return paths


async def submit(client: httpx.AsyncClient, page: str, to: str, /, **fields: str) -> httpx.Response:
    """Post a console form the way a browser does: the page first (for its CSRF token),
    then the form's fields to `to`."""
    form = await client.get(page)
    assert form.status_code == 200, (page, form.status_code)
    return await client.post(to, data={"csrf": csrf_of(form), **fields})


class _Text(HTMLParser):
    """The text inside the element with one id, nested elements included."""

    VOID = {"br", "img", "input", "hr", "meta", "link", "source", "wbr"}

    def __init__(self, element_id: str) -> None:
        super().__init__()
        self.element_id = element_id
        self.depth = 0  # > 0 while inside the element
        self.parts: list[str] = []
        self.found = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.VOID:
            return
        if self.depth:
            self.depth += 1
        elif dict(attrs).get("id") == self.element_id and not self.found:
            self.depth, self.found = 1, True

    def handle_endtag(self, tag: str) -> None:
        if self.depth and tag not in self.VOID:
            self.depth -= 1

    def handle_data(self, data: str) -> None:
        if self.depth:
            self.parts.append(data)


def shown_text(response: httpx.Response, element_id: str) -> str:
    """The text of the element with this id (tags inside dropped, spaces collapsed)."""
    parser = _Text(element_id)
    parser.feed(response.text)
    assert parser.found, (element_id, response.text[:2000])
    return " ".join(" ".join(parser.parts).split())
