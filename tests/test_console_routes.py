"""Every page of the console, walked from its route table (a new page is walked without
being listed here): each declares the permission it needs (or is one of the few pages of
any member or of the sign-in); a member whose role lacks it gets a 403 page naming it, in
English and Russian; the owner sees every page in both languages, under the pages' CSP,
from the panel alone (no other host, no script, no inline style), every field labelled;
and every form is refused without its console CSRF token, changing nothing."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from app.console.render import CONSOLE, LANGUAGE_COOKIE, Permit
from app.console.router import PARTS
from app.context import AppContext
from app.pages.render import CSP
from app.staff.roles import MATRIX, ROLES
from tests.support.api import Api, MakeService, MakeUser
from tests.support.console import signed_in
from tests.support.web import csrf_of, local, refs, unlabelled
from tests.support.world import World, counts, make_world

# Pages any signed-in member sees (the dashboard shows each what their role reads), and
# the sign-in's own pages, open to a visitor.
MEMBER_PAGES = {("GET", "/"), ("GET", "/sessions"), ("POST", "/sessions/{session_id}/revoke")}
SIGN_IN_PAGES = {
    ("GET", "/login"),
    ("POST", "/login"),
    ("GET", "/login/enrol"),
    ("POST", "/login/enrol"),
    ("POST", "/logout"),
    ("GET", "/invite"),
    ("POST", "/invite"),
    ("POST", "/language"),
}


def permits(dependant: Dependant) -> list[str]:
    found = [d.call.permission for d in dependant.dependencies if isinstance(d.call, Permit)]
    for sub in dependant.dependencies:
        found += permits(sub)
    return found


def routes() -> list[tuple[str, str, str | None]]:
    """(method, path, permission) of every console route."""
    found = []
    for route in (r for part in PARTS for r in part.routes):
        assert isinstance(route, APIRoute)
        for method in sorted(route.methods or ()):
            declared = permits(route.dependant)
            assert len(declared) <= 1, (route.path, declared)
            found.append((method, route.path, declared[0] if declared else None))
    return found


def filled(path: str, world: World) -> str:
    def value(match: re.Match[str]) -> str:
        return str(world.ids[match.group(1)])  # a KeyError names a page the world lacks

    return CONSOLE + re.sub(r"\{(\w+)\}", value, path)


def test_every_page_declares_its_permission() -> None:
    walked = routes()
    assert len(walked) >= 85
    for method, path, permission in walked:
        if (method, path) in MEMBER_PAGES | SIGN_IN_PAGES:
            assert permission is None, (method, path)
        else:
            assert permission is not None, f"{method} {path} declares no permission"
            assert any(permission in granted for granted in MATRIX.values())


def role_without(permission: str | None) -> str | None:
    """A role that lacks the permission (None: every role holds it, or no permission)."""
    if permission is None:
        return None
    return next((r for r in ROLES if permission not in MATRIX[r]), None)


@pytest.fixture
async def world(ctx: AppContext, api: Api, make_user: MakeUser, make_service: MakeService) -> World:
    return await make_world(ctx, api, make_user, make_service)


async def test_a_page_outside_ones_role_is_a_403_page_naming_the_permission(
    app: FastAPI, ctx: AppContext, world: World
) -> None:
    members: dict[str, httpx.AsyncClient] = {}
    transport = httpx.ASGITransport(app=app)  # the same app, one cookie jar per role
    for each in ROLES:
        members[each] = httpx.AsyncClient(transport=transport, base_url="http://panel.test")
        await signed_in(members[each], ctx, each)
    try:
        for method, path, permission in routes():
            role = role_without(permission)
            if method != "GET" or role is None:
                continue
            assert permission is not None
            for language, words in (
                ("en", f"Your role ({role}) does not have the permission {permission}."),
                ("ru", f"У вашей роли ({role}) нет разрешения {permission}."),
            ):
                members[role].cookies.set(LANGUAGE_COOKIE, language, path=CONSOLE)
                refused = await members[role].get(filled(path, world))
                assert refused.status_code == 403, (path, role)
                assert f'role="alert">{words}<' in refused.text, (path, role, language)
        # A form is refused the same way, before anything is read from it.
        for method, path, permission in routes():
            role = role_without(permission)
            if method != "POST" or role is None:
                continue
            members[role].cookies.set(LANGUAGE_COOKIE, "en", path=CONSOLE)
            token = csrf_of(await members[role].get("/web/admin/"))
            refused = await members[role].post(filled(path, world), data={"csrf": token})
            assert refused.status_code == 403, (path, role)
            assert f"the permission {permission}" in refused.text, (path, role)
    finally:
        for member in members.values():
            await member.aclose()
    assert await counts(ctx) == world.changes


@pytest.mark.parametrize("language", ["en", "ru"])
async def test_the_owner_sees_every_page_from_the_panel_alone(
    client: httpx.AsyncClient, ctx: AppContext, world: World, language: str
) -> None:
    client.cookies.set(LANGUAGE_COOKIE, language, path=CONSOLE)
    pages = [await client.get("/web/admin/login"), await client.get("/web/admin/invite?token=x")]
    assert [p.status_code for p in pages] == [200, 400]
    await signed_in(client, ctx, "owner")
    for method, path, _permission in routes():
        if method == "GET" and (method, path) not in SIGN_IN_PAGES:
            pages.append(await client.get(filled(path, world)))
    shown = 0
    for response in pages:
        path = response.url.path
        assert response.status_code in (200, 400), (path, response.status_code, response.text[:500])
        assert response.headers["content-security-policy"] == CSP
        assert f'<html lang="{language}">' in response.text
        assert all(local(url) for url in refs(response.text).urls), path
        assert unlabelled(response.text) == [], path
        assert "<script" not in response.text and "style=" not in response.text, path
        shown += 1
    assert shown >= 28


async def test_every_form_is_refused_without_its_console_csrf_token(
    client: httpx.AsyncClient, ctx: AppContext, world: World
) -> None:
    await signed_in(client, ctx, "owner")
    storefront_token = csrf_of(await client.get("/web/"))
    before = await counts(ctx)
    posts = [(path, p) for m, path, p in routes() if m == "POST"]
    assert len(posts) >= 55
    for path, _permission in posts:
        for token in (None, "0" * 64, storefront_token):
            data: dict[str, Any] = {"amount": "5", "reason": "x", "confirm": "1"}
            if token is not None:
                data["csrf"] = token
            refused = await client.post(filled(path, world), data=data)
            assert refused.status_code == 403, (path, refused.status_code)
            assert 'role="alert">The form has expired; please try again.<' in refused.text
    assert await counts(ctx) == before
    assert (await client.get("/web/admin/")).status_code == 200  # still signed in
