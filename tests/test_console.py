"""The operator's console (/web/admin) through its forms: a staff member's first sign-in
enrols the second factor (QR code and key on the page, a code to confirm), later sign-ins
need a fresh code; the guessing limits of the customers apply; a page outside one's role
answers 403 with a page naming the permission; sessions are listed and ended; the mailed
invitation sets the password; every page renders in English and Russian from the panel
alone, and every form is refused without its CSRF token."""

from __future__ import annotations

import re

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from app.console.render import CONSOLE, LANGUAGE_COOKIE, STAFF_COOKIE, words
from app.context import AppContext
from app.staff import service as staff
from app.staff.models import StaffSession
from tests.support.api import MakeUser
from tests.support.console import PASSWORD, Member, enrolled, sign_in, signed_in
from tests.support.env import AUTH
from tests.support.mail import Mailbox
from tests.support.staff import make_staff
from tests.support.web import csrf_of

CONSOLE_DIR = "app/console"


async def post_form(
    client: httpx.AsyncClient, page: str, action: str, **fields: str
) -> httpx.Response:
    form = await client.get(page)
    return await client.post(action, data={"csrf": csrf_of(form), **fields})


def alert_of(response: httpx.Response) -> str:
    found = re.search(r'role="alert">([^<]*)<', response.text)
    assert found is not None, response.text
    return found.group(1)


async def sessions_of(ctx: AppContext, staff_id: int) -> list[StaffSession]:
    async with ctx.db.session() as session:
        rows = await session.scalars(
            select(StaffSession).where(StaffSession.staff_id == staff_id).order_by(StaffSession.id)
        )
        return list(rows)


async def test_the_first_sign_in_enrols_the_second_factor_and_the_next_needs_a_fresh_code(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    ann = await make_staff(ctx, "manager", "ann@staff.example", password=PASSWORD)
    anonymous = await client.get("/web/admin/")
    assert anonymous.status_code == 303
    assert anonymous.headers["location"] == "/web/admin/login?next=%2Fweb%2Fadmin%2F"

    fields = {"email": "ANN@staff.example", "password": PASSWORD, "code": ""}
    first = await post_form(client, "/web/admin/login", "/web/admin/login", **fields)
    assert (first.status_code, first.headers["location"]) == (303, "/web/admin/login/enrol")
    cookie = first.headers["set-cookie"]
    assert cookie.startswith(f"{STAFF_COOKIE}=")
    for attribute in ("HttpOnly", "Max-Age=900", "Path=/web/admin", "SameSite=strict"):
        assert attribute in cookie, cookie
    # Enrolling opens nothing but the enrolment page.
    assert (await client.get("/web/admin/")).status_code == 303

    enrol = await client.get("/web/admin/login/enrol")
    assert enrol.status_code == 200
    assert '<div id="totp-qr" class="qr"><svg' in enrol.text
    secret = re.search(r'<code id="totp-secret">([A-Z2-7]+)</code>', enrol.text)
    assert secret is not None
    again = await client.get("/web/admin/login/enrol")
    assert f'<code id="totp-secret">{secret.group(1)}</code>' in again.text
    member = Member(ann, secret.group(1))

    wrong = await post_form(client, "/web/admin/login/enrol", "/web/admin/login/enrol", code="0")
    assert (wrong.status_code, alert_of(wrong)) == (401, "Invalid two-factor code")
    used = member.code()
    done = await post_form(client, "/web/admin/login/enrol", "/web/admin/login/enrol", code=used)
    assert (done.status_code, done.headers["location"]) == (303, "/web/admin/")
    dashboard = await client.get("/web/admin/")
    assert dashboard.status_code == 200
    assert '<span id="signed-in-as">ann@staff.example <span class="badge">manager' in (
        dashboard.text
    )
    async with ctx.db.session() as session:
        row = await staff.get_member(session, ann.id)
    assert row.totp_enabled_at is not None
    assert row.totp_secret is not None and member.secret not in row.totp_secret
    opened = await sessions_of(ctx, ann.id)
    assert [(s.enrolling, s.revoked_at is not None) for s in opened] == [
        (True, True),
        (False, False),
    ]

    out = await post_form(client, "/web/admin/", "/web/admin/logout")
    assert (out.status_code, out.headers["location"]) == (303, "/web/admin/login")
    assert (await client.get("/web/admin/")).status_code == 303
    assert all(s.revoked_at is not None for s in await sessions_of(ctx, ann.id))

    no_code = await sign_in(client, member, code="")
    assert (no_code.status_code, alert_of(no_code)) == (401, "Two-factor code required")
    replayed = await sign_in(client, member, code=used)
    assert (replayed.status_code, alert_of(replayed)) == (401, "Invalid two-factor code")
    fresh = await sign_in(client, member, code=member.code(steps_ahead=1))
    assert (fresh.status_code, fresh.headers["location"]) == (303, "/web/admin/")
    assert (await client.get("/web/admin/")).status_code == 200


async def test_without_required_two_factor_the_first_sign_in_is_a_full_one(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    member = await make_staff(ctx, "support", password=PASSWORD)
    ctx.settings.staff_require_2fa = False
    try:
        fields = {"email": member.email, "password": PASSWORD, "code": ""}
        done = await post_form(client, "/web/admin/login", "/web/admin/login", **fields)
    finally:
        ctx.settings.staff_require_2fa = True
    assert (done.status_code, done.headers["location"]) == (303, "/web/admin/")
    assert (await client.get("/web/admin/")).status_code == 200


async def test_sign_in_guessing_is_limited_as_for_customers(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    member = await enrolled(ctx, "finance")
    fields = {"email": member.staff.email, "password": "wrong password", "code": member.code()}
    for _ in range(ctx.settings.client_attempts_per_account):
        refused = await post_form(client, "/web/admin/login", "/web/admin/login", **fields)
        assert (refused.status_code, alert_of(refused)) == (401, "Invalid email or password")
    locked = await sign_in(client, member)
    assert (locked.status_code, alert_of(locked)) == (429, "Too many attempts, try again later")
    assert int(locked.headers["retry-after"]) >= 1
    assert await sessions_of(ctx, member.staff.id) == []


async def test_a_page_outside_ones_role_answers_403_with_a_page(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    await signed_in(client, ctx, "support")
    refused = await client.get("/web/admin/audit")
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("text/html")
    assert alert_of(refused) == "Your role (support) does not have the permission audit:read."
    assert 'href="/web/admin/audit"' not in refused.text  # not offered in the menu either
    client.cookies.set(LANGUAGE_COOKIE, "ru", path=CONSOLE)
    russian = await client.get("/web/admin/audit")
    assert alert_of(russian) == "У вашей роли (support) нет разрешения audit:read."


async def test_the_audit_page_filters_by_staff_member(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    owner = await signed_in(client, ctx, "owner")
    finance = await make_staff(ctx, "finance", "fay@staff.example")
    body = {"name": "Boost", "terms": None, "privacy_policy": None, "terms_of_use": None}
    assert (await client.put("/admin/v1/storefront", headers=AUTH, json=body)).status_code == 200
    await client.put("/admin/v1/currencies/EUR", headers=finance.auth, json={"rate": "1.1"})
    everyone = await client.get("/web/admin/audit")
    assert everyone.status_code == 200
    actors = re.findall(r'<tr id="audit-\d+"><td>[^<]+</td><td>([^<]+)</td>', everyone.text)
    assert actors == ["fay@staff.example", "admin token"]
    only = await client.get(f"/web/admin/audit?staff_id={finance.id}")
    assert re.findall(r"<code>([a-z._]+)</code>", only.text) == ["currency.set"]
    assert owner.staff.email in everyone.text  # offered in the filter


async def test_the_dashboard_shows_each_role_what_it_may_read(
    client: httpx.AsyncClient, ctx: AppContext, make_user: MakeUser
) -> None:
    await make_user("12.5")
    await signed_in(client, ctx, "finance")
    board = (await client.get("/web/admin/")).text
    money = re.search(r'<tr id="money-1">.*?</tr>', board, re.S)
    assert money is not None and "$12.50" in money.group(0)
    assert 'id="tile-orders"' in board and 'id="tile-tickets"' not in board
    client.cookies.clear()
    await signed_in(client, ctx, "support")
    board = (await client.get("/web/admin/")).text
    assert 'id="tile-tickets"' in board and 'id="open-tickets">0<' in board
    assert 'id="tile-money"' not in board and 'id="tile-providers"' not in board


async def test_sessions_are_listed_and_each_can_be_ended(
    app: FastAPI, client: httpx.AsyncClient, ctx: AppContext
) -> None:
    member = await signed_in(client, ctx, "manager")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://panel.test") as other:
        assert (await sign_in(other, member, code=member.code(1))).status_code == 303
        listed = await client.get("/web/admin/sessions")
        ids = [int(i) for i in re.findall(r'<tr id="session-(\d+)">', listed.text)]
        assert len(ids) == 2
        ended = await post_form(
            client, "/web/admin/sessions", f"/web/admin/sessions/{ids[0]}/revoke"
        )
        assert ended.headers["location"] == "/web/admin/sessions?done=revoked"
        assert (await other.get("/web/admin/")).status_code == 303
    assert (await client.get("/web/admin/")).status_code == 200
    shown = await client.get(f"/admin/v1/staff/{member.staff.id}/sessions", headers=AUTH)
    assert [s["id"] for s in shown.json()] == ids[1:]


async def test_a_disabled_member_is_out_at_once(client: httpx.AsyncClient, ctx: AppContext) -> None:
    member = await signed_in(client, ctx, "support")
    disabled = await client.post(f"/admin/v1/staff/{member.staff.id}/disable", headers=AUTH)
    assert disabled.status_code == 200
    assert (await client.get("/web/admin/")).status_code == 303
    refused = await sign_in(client, member, code=member.code(1))
    assert (refused.status_code, alert_of(refused)) == (403, "This staff account is disabled")


async def test_the_mailed_invitation_sets_the_password_once(
    client: httpx.AsyncClient, ctx: AppContext, mailbox: Mailbox
) -> None:
    created = await client.post(
        "/admin/v1/staff", headers=AUTH, json={"email": "neo@staff.example", "role": "support"}
    )
    assert created.status_code == 201
    (mail,) = await mailbox.wait_for("neo@staff.example")
    link = f"/web/admin/invite?token={mail.token()}"
    form = await client.get(link)
    assert '<strong id="invite-email">neo@staff.example</strong>' in form.text
    short = await client.post(
        "/web/admin/invite",
        data={"csrf": csrf_of(form), "token": mail.token(), "password": "short"},
    )
    assert (short.status_code, alert_of(short)) == (422, "Password must be 8 to 200 characters")
    done = await client.post(
        "/web/admin/invite",
        data={"csrf": csrf_of(form), "token": mail.token(), "password": PASSWORD},
    )
    assert (done.status_code, done.headers["location"]) == (303, "/web/admin/login?done=password")
    spent = await client.get(link)
    assert (spent.status_code, alert_of(spent)) == (400, "Invalid or expired token")
    fields = {"email": "neo@staff.example", "password": PASSWORD, "code": ""}
    first = await post_form(client, "/web/admin/login?done=password", "/web/admin/login", **fields)
    assert first.headers["location"] == "/web/admin/login/enrol"


def test_every_text_of_the_console_has_its_russian_translation() -> None:
    from pathlib import Path

    texts: set[str] = set()
    for path in Path(CONSOLE_DIR).rglob("*"):
        if path.suffix in (".html", ".py"):
            texts |= set(re.findall(r'_\(\s*"((?:[^"\\]|\\.)*)"', path.read_text()))
            texts |= set(re.findall(r"_\(\s*'((?:[^'\\]|\\.)*)'", path.read_text()))
    assert len(texts) > 50
    russian = words("ru")
    assert sorted(texts - russian.keys()) == []
    for role in ("owner", "manager", "support", "finance"):
        assert role in russian
