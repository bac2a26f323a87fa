"""The operator's switch in the storefront (/web/operator): signing in with the admin token
gives a cookie of its own (HttpOnly, SameSite=Strict, only for /web/operator, never the
token itself); the operator then sets the panel's name, logo and legal texts, which every
page shows from the next load on, escaped; each change is audited; signing out, a forged
or expired cookie, or a changed admin token ends it."""

from __future__ import annotations

import re
import time

import httpx
import pytest
from sqlalchemy import select

from app.audit.models import AuditEntry
from app.context import AppContext
from app.web.session import OPERATOR_COOKIE, operator_cookie
from tests.support.env import ADMIN_TOKEN, AUTH
from tests.support.images import HTML, png
from tests.support.web import csrf_of, refs, unlabelled

OPERATOR = "/web/operator"


async def sign_in(client: httpx.AsyncClient) -> str:
    page = await client.get(OPERATOR)
    assert 'id="operator-signin"' in page.text
    csrf = csrf_of(page)
    signed = await client.post(f"{OPERATOR}/signin", data={"csrf": csrf, "token": ADMIN_TOKEN})
    assert (signed.status_code, signed.headers["location"]) == (303, OPERATOR)
    return csrf


async def test_the_operator_signs_in_with_the_admin_token_into_a_strict_cookie(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get(OPERATOR)
    assert page.status_code == 200 and 'id="operator-token"' in page.text
    assert unlabelled(page.text) == []
    csrf = csrf_of(page)
    for wrong in ("", "nope", ADMIN_TOKEN[:-1], ADMIN_TOKEN + "x"):
        refused = await client.post(f"{OPERATOR}/signin", data={"csrf": csrf, "token": wrong})
        assert refused.status_code == 401
        assert 'id="operator-signin-error">This is not the admin token.</p>' in refused.text
        assert OPERATOR_COOKIE not in refused.headers.get("set-cookie", "")
    signed = await client.post(f"{OPERATOR}/signin", data={"csrf": csrf, "token": ADMIN_TOKEN})
    cookie = next(c for c in signed.headers.get_list("set-cookie") if c.startswith(OPERATOR_COOKIE))
    attributes = [a.strip().lower() for a in cookie.split(";")]
    assert {"httponly", "samesite=strict", "path=/web/operator"} <= set(attributes), cookie
    assert ADMIN_TOKEN not in cookie
    editing = await client.get(OPERATOR)
    assert 'id="name-form"' in editing.text and 'id="logo-form"' in editing.text
    assert unlabelled(editing.text) == []
    # The cookie is sent to the operator's page only, not to the customer's pages.
    assert client.cookies.get(OPERATOR_COOKIE, path="/web/operator")

    out = await client.post(f"{OPERATOR}/signout", data={"csrf": csrf})
    assert (out.status_code, out.headers["location"]) == (303, OPERATOR)
    assert 'id="operator-signin"' in (await client.get(OPERATOR)).text


async def test_name_and_legal_texts_show_on_the_next_page_load_escaped_and_audited(
    ctx: AppContext, client: httpx.AsyncClient
) -> None:
    csrf = await sign_in(client)
    saved = await client.post(
        f"{OPERATOR}/storefront/name", data={"csrf": csrf, "value": "Rocket <Likes>"}
    )
    assert saved.headers["location"] == f"{OPERATOR}?done=name#name-h"
    home = await client.get("/web/")
    assert "<title>Welcome · Rocket &lt;Likes&gt;</title>" in home.text
    assert "<span>Rocket &lt;Likes&gt;</span>" in home.text

    # A multipart form, as the page sends it; line ends of a textarea normalised.
    text = "Rule one.\r\n\r\nRule <script>alert('x')</script> two.\r\nSame paragraph."
    saved = await client.post(
        f"{OPERATOR}/storefront/terms", files={"csrf": (None, csrf), "value": (None, text)}
    )
    assert saved.status_code == 303
    terms = await client.get("/web/terms")
    assert (
        "<p>Rule one.</p><p>Rule &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; two.\n"
        "Same paragraph.</p>"
    ) in terms.text
    assert "<script>alert" not in terms.text
    assert "<title>Terms of Service · Rocket &lt;Likes&gt;</title>" in terms.text
    page = await client.get(OPERATOR)
    assert "Rule &lt;script&gt;" in page.text and 'id="done"' not in page.text

    async with ctx.db.session() as session:
        entries = list(await session.scalars(select(AuditEntry).order_by(AuditEntry.id)))
    assert [(e.actor, e.action) for e in entries] == [
        ("admin (web)", "storefront.update"),
        ("admin (web)", "storefront.update"),
    ]
    assert entries[1].after is not None
    assert entries[1].after["terms"] == text.replace("\r\n", "\n")
    # The admin API sees the same values.
    api = (await client.get("/admin/v1/storefront", headers=AUTH)).json()
    assert (api["name"], api["terms"]) == ("Rocket <Likes>", text.replace("\r\n", "\n"))

    # An empty text, and the reset button of the name, bring the settings back.
    await client.post(f"{OPERATOR}/storefront/terms", data={"csrf": csrf, "value": ""})
    assert 'id="legal-placeholder"' in (await client.get("/web/terms")).text
    await client.post(f"{OPERATOR}/storefront/name", data={"csrf": csrf, "reset": "1"})
    assert "<span>SMM Panel</span>" in (await client.get("/web/")).text


async def test_refusals_are_shown_next_to_their_field_in_both_languages(
    ctx: AppContext, client: httpx.AsyncClient
) -> None:
    csrf = await sign_in(client)
    blank = await client.post(f"{OPERATOR}/storefront/name", data={"csrf": csrf, "value": "  "})
    assert blank.status_code == 422
    assert (
        'role="alert" id="error-name">'
        "The panel&#39;s name must be 1 to 100 characters, without control characters</p>"
    ) in blank.text
    assert 'aria-describedby="op-name-hint error-name" aria-invalid="true"' in blank.text
    await client.post("/web/language", data={"csrf": csrf, "language": "ru"})
    huge = await client.post(
        f"{OPERATOR}/storefront/privacy_policy", data={"csrf": csrf, "value": "x" * 50_001}
    )
    assert huge.status_code == 422
    assert (
        'id="error-privacy_policy">'
        "Юридический текст должен быть простым текстом не длиннее 50000 символов</p>"
    ) in huge.text
    assert "<h1>Оператор</h1>" in huge.text
    unknown = await client.post(f"{OPERATOR}/storefront/title", data={"csrf": csrf, "value": "x"})
    assert unknown.status_code == 404
    async with ctx.db.session() as session:
        assert list(await session.scalars(select(AuditEntry))) == []
    assert (await client.get("/admin/v1/storefront", headers=AUTH)).json()["updated_at"] is None


async def test_the_logo_is_uploaded_served_and_removed(
    ctx: AppContext, client: httpx.AsyncClient
) -> None:
    csrf = await sign_in(client)
    image = png(30, 10)
    uploaded = await client.post(
        f"{OPERATOR}/logo",
        data={"csrf": csrf},
        files={"logo": ("logo.png", image, "image/png")},
    )
    assert uploaded.headers["location"] == f"{OPERATOR}?done=logo#logo-h"
    served = await client.get("/web/logo")
    assert (served.content, served.headers["content-type"]) == (image, "image/png")
    assert served.headers["x-content-type-options"] == "nosniff"
    assert '<img src="/web/logo" alt="" height="28">' in (await client.get("/web/")).text
    page = await client.get(OPERATOR)
    assert f"Set here: image/png, {len(image)} bytes." in page.text

    for name, content, kind, message in (
        ("page.html", HTML, "text/html", "The logo must be a PNG, SVG, JPEG or WebP image"),
        ("fake.png", HTML, "image/png", "The file is not the image its type says"),
        ("empty.png", b"", "image/png", "Choose an image file."),
    ):
        refused = await client.post(
            f"{OPERATOR}/logo", data={"csrf": csrf}, files={"logo": (name, content, kind)}
        )
        assert refused.status_code == 422, name
        assert f'role="alert" id="error-logo">{message}</p>' in refused.text
    assert (await client.get("/web/logo")).content == image

    removed = await client.post(f"{OPERATOR}/logo/remove", data={"csrf": csrf})
    assert removed.status_code == 303
    assert (await client.get("/web/logo")).status_code == 404
    async with ctx.db.session() as session:
        actions = list(await session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))
    assert actions == ["storefront.logo", "storefront.logo_remove"]


async def test_changes_need_a_valid_operator_cookie(
    ctx: AppContext, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    csrf = csrf_of(await client.get(OPERATOR))
    attempts = {
        "none": None,
        "forged": f"{int(time.time()) + 3600}.nonce.{'0' * 64}",
        "expired": "1.nonce." + "0" * 64,
        "garbage": "not-a-cookie",
    }
    for value in attempts.values():
        client.cookies.clear()
        if value is not None:
            client.cookies.set(OPERATOR_COOKIE, value, path="/web/operator")
        home = await client.get(OPERATOR)
        token = refs(home.text).csrf or csrf
        assert 'id="operator-signin"' in home.text
        for path, data in (
            ("/storefront/name", {"value": "Hijacked"}),
            ("/logo/remove", {}),
        ):
            response = await client.post(OPERATOR + path, data={"csrf": token, **data})
            assert (response.status_code, response.headers["location"]) == (303, OPERATOR)
    assert "Hijacked" not in (await client.get("/web/")).text

    # A real cookie stops working when the admin token changes (or is removed).
    client.cookies.clear()
    await sign_in(client)
    assert 'id="name-form"' in (await client.get(OPERATOR)).text
    monkeypatch.setattr(ctx.settings, "admin_token", "another-admin-token-0123456789-abcdef")
    assert 'id="operator-signin"' in (await client.get(OPERATOR)).text
    monkeypatch.setattr(ctx.settings, "admin_token", None)
    assert 'id="operator-signin"' in (await client.get(OPERATOR)).text
    refused = await client.post(
        f"{OPERATOR}/signin", data={"csrf": csrf_of(await client.get(OPERATOR)), "token": ""}
    )
    assert refused.status_code == 401


def test_the_operator_cookie_carries_no_token_and_expires(ctx: AppContext) -> None:
    value = operator_cookie(ctx.settings)
    expires, nonce, mac = value.split(".")
    assert ADMIN_TOKEN not in value and re.fullmatch(r"[0-9a-f]{64}", mac)
    assert 0 < int(expires) - time.time() <= 8 * 3600
    assert nonce != operator_cookie(ctx.settings).split(".")[1]
