"""The operator's switch of the storefront over the admin API (/admin/v1/storefront): the
panel's name, logo and legal texts set at run time take precedence over the settings from
the next page load on, every change is audited, and bad input is refused as problem JSON
(never a 500), changing nothing."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text

from app.audit.models import AuditEntry
from app.context import AppContext
from app.storefront.models import LOGO_MAX_BYTES, TEXT_MAX
from tests.support.env import AUTH
from tests.support.images import HTML, JPEG, SVG, SVG_WITH_SCRIPT, WEBP, png

TEXTS = {"terms": None, "privacy_policy": None, "terms_of_use": None}


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


async def audit_entries(ctx: AppContext) -> list[AuditEntry]:
    async with ctx.db.session() as session:
        return list(await session.scalars(select(AuditEntry).order_by(AuditEntry.id)))


async def test_the_storefront_needs_the_admin_token(
    ctx: AppContext, client: httpx.AsyncClient
) -> None:
    for method, path, body in (
        ("GET", "/admin/v1/storefront", None),
        ("PUT", "/admin/v1/storefront", {"name": "X", **TEXTS}),
        ("PUT", "/admin/v1/storefront/logo", png()),
        ("DELETE", "/admin/v1/storefront/logo", None),
    ):
        for headers in ({}, {"Authorization": "Bearer wrong-token-wrong-token-wrong-token"}):
            kwargs: dict[str, Any] = {"headers": headers}
            if isinstance(body, bytes):
                kwargs["content"], headers["content-type"] = body, "image/png"
            elif body is not None:
                kwargs["json"] = body
            response = await client.request(method, path, **kwargs)
            assert response.status_code == 401, (method, path)
    assert "SMM Panel" in (await client.get("/web/")).text
    assert (await client.get("/web/logo")).status_code == 404
    assert await audit_entries(ctx) == []


async def test_name_and_texts_set_here_win_over_the_settings_and_are_audited(
    ctx: AppContext, client: httpx.AsyncClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    terms_file = tmp_path / "terms.txt"
    terms_file.write_text("The file's terms.", encoding="utf-8")
    monkeypatch.setattr(ctx.settings, "terms_file", str(terms_file))
    empty = (await client.get("/admin/v1/storefront", headers=AUTH)).json()
    assert empty == {
        "name": None,
        "shown_name": "SMM Panel",
        "logo": None,
        **TEXTS,
        "metrica_id": None,
        "ga_id": None,
        "chaport_id": None,
        "updated_at": None,
    }

    body = {
        "name": "Boost & Co",
        "terms": "1. Orders\r\n\r\nEvery order <b>starts</b> within a day.\r\n",
        "privacy_policy": "We keep <script>alert(1)</script> nothing.",
        "terms_of_use": "",
    }
    answer = await client.put("/admin/v1/storefront", headers=AUTH, json=body)
    assert answer.status_code == 200, answer.text
    shown = answer.json()
    assert shown["name"] == shown["shown_name"] == "Boost & Co"
    assert shown["terms"] == "1. Orders\n\nEvery order <b>starts</b> within a day."
    assert shown["terms_of_use"] is None  # empty: the file (or the placeholder) again
    assert (await client.get("/admin/v1/storefront", headers=AUTH)).json() == shown

    # The next page load shows it: header, title, legal pages (escaped, in paragraphs).
    home = (await client.get("/web/")).text
    assert "<title>Welcome · Boost &amp; Co</title>" in home
    assert "<span>Boost &amp; Co</span>" in home
    terms = (await client.get("/web/terms")).text
    assert "<p>1. Orders</p><p>Every order &lt;b&gt;starts&lt;/b&gt; within a day.</p>" in terms
    privacy = (await client.get("/web/privacy-policy")).text
    assert "<p>We keep &lt;script&gt;alert(1)&lt;/script&gt; nothing.</p>" in privacy
    assert "<script>alert(1)" not in privacy
    assert 'id="legal-placeholder"' in (await client.get("/web/terms-of-use")).text

    (entry,) = await audit_entries(ctx)
    assert (entry.actor, entry.action, entry.entity) == (
        "admin token",
        "storefront.update",
        "storefront",
    )
    assert entry.before is not None and entry.before["name"] is None
    assert entry.after is not None and entry.after["name"] == "Boost & Co"
    assert entry.after["privacy_policy"] == body["privacy_policy"]

    # null brings the settings back: PANEL_NAME, and the terms of TERMS_FILE.
    back = await client.put("/admin/v1/storefront", headers=AUTH, json={"name": None, **TEXTS})
    assert back.json()["shown_name"] == "SMM Panel"
    assert "<p>The file&#39;s terms.</p>" in (await client.get("/web/terms")).text
    assert "<span>SMM Panel</span>" in (await client.get("/web/")).text
    assert len(await audit_entries(ctx)) == 2


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"name": "", **TEXTS}, "name"),
        ({"name": "   ", **TEXTS}, "name"),
        ({"name": "x" * 101, **TEXTS}, "name"),
        ({"name": "Bad\nname", **TEXTS}, "name"),
        ({"name": "Ok", **TEXTS, "terms": "t" * (TEXT_MAX + 1)}, "terms"),
        ({"name": "Ok", **TEXTS, "privacy_policy": "nul \x00 inside"}, "privacy_policy"),
        ({"name": "Ok", "terms": None, "privacy_policy": None}, "terms_of_use"),
        ({"name": "Ok", **TEXTS, "title": "misspelt"}, "title"),
        ({"name": 5, **TEXTS}, "name"),
    ],
    ids=[
        "empty-name",
        "blank-name",
        "long-name",
        "newline-name",
        "huge-text",
        "nul-text",
        "missing-text",
        "unknown-field",
        "number-name",
    ],
)
async def test_bad_storefront_input_is_a_problem_and_changes_nothing(
    ctx: AppContext, client: httpx.AsyncClient, body: dict[str, Any], where: str
) -> None:
    before = (await client.get("/admin/v1/storefront", headers=AUTH)).json()
    refused = problem(await client.put("/admin/v1/storefront", headers=AUTH, json=body), 422)
    assert where in [e["loc"][-1] for e in refused["errors"]], refused
    assert (await client.get("/admin/v1/storefront", headers=AUTH)).json() == before
    assert await audit_entries(ctx) == []


async def test_a_body_that_is_not_json_is_a_problem(client: httpx.AsyncClient) -> None:
    for content, kind in ((b"{not json", "application/json"), (b"name=x", "text/plain")):
        response = await client.put(
            "/admin/v1/storefront", headers={**AUTH, "content-type": kind}, content=content
        )
        problem(response, 422)


async def test_a_logo_set_here_is_served_by_the_panel_with_its_type(
    ctx: AppContext, client: httpx.AsyncClient
) -> None:
    image = png(20, 10)
    answer = await client.put(
        "/admin/v1/storefront/logo", headers={**AUTH, "content-type": "image/png"}, content=image
    )
    assert answer.status_code == 200, answer.text
    digest = hashlib.sha256(image).hexdigest()
    assert answer.json()["logo"] == {
        "content_type": "image/png",
        "size": len(image),
        "sha256": digest,
    }
    served = await client.get("/web/logo")
    assert (served.status_code, served.content) == (200, image)
    assert served.headers["content-type"] == "image/png"
    assert served.headers["x-content-type-options"] == "nosniff"
    assert '<img src="/web/logo" alt="" height="28">' in (await client.get("/web/")).text
    (entry,) = await audit_entries(ctx)
    assert (entry.action, entry.before, entry.after) == (
        "storefront.logo",
        {"logo": None},
        {"logo": {"content_type": "image/png", "size": len(image), "sha256": digest}},
    )

    for kind, content in (
        ("image/jpeg", JPEG),
        ("image/webp", WEBP),
        ("image/svg+xml; charset=utf-8", SVG),
    ):
        changed = await client.put(
            "/admin/v1/storefront/logo", headers={**AUTH, "content-type": kind}, content=content
        )
        assert changed.status_code == 200, (kind, changed.text)
        served = await client.get("/web/logo")
        assert (served.content, served.headers["content-type"]) == (content, kind.split(";")[0])

    # No script runs in an SVG opened on its own.
    await client.put(
        "/admin/v1/storefront/logo",
        headers={**AUTH, "content-type": "image/svg+xml"},
        content=SVG_WITH_SCRIPT,
    )
    svg = await client.get("/web/logo")
    assert svg.headers["content-type"] == "image/svg+xml"
    policy = svg.headers["content-security-policy"]
    assert "script-src 'none'" in policy and "sandbox" in policy and "default-src 'none'" in policy

    removed = await client.delete("/admin/v1/storefront/logo", headers=AUTH)
    assert removed.status_code == 200 and removed.json()["logo"] is None
    assert (await client.get("/web/logo")).status_code == 404
    assert 'src="/web/logo"' not in (await client.get("/web/")).text
    assert [e.action for e in await audit_entries(ctx)][-1] == "storefront.logo_remove"


async def test_removing_the_logo_brings_the_panel_logo_file_back(
    ctx: AppContext, client: httpx.AsyncClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    logo = tmp_path / "logo.svg"
    logo.write_bytes(SVG)
    monkeypatch.setattr(ctx.settings, "panel_logo", str(logo))
    assert (await client.get("/web/logo")).content == SVG
    await client.put(
        "/admin/v1/storefront/logo", headers={**AUTH, "content-type": "image/png"}, content=png()
    )
    assert (await client.get("/web/logo")).content == png()
    await client.delete("/admin/v1/storefront/logo", headers=AUTH)
    from_file = await client.get("/web/logo")
    assert (from_file.content, from_file.headers["content-type"]) == (SVG, "image/svg+xml")
    assert "script-src 'none'" in from_file.headers["content-security-policy"]
    assert from_file.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    ("content", "kind", "status"),
    [
        (png(), "", 415),
        (png(), "text/html", 415),
        (png(), "image/gif", 415),
        (png(), "application/octet-stream", 415),
        (HTML, "image/png", 422),
        (HTML, "image/svg+xml", 422),
        (png(), "image/jpeg", 422),
        (b"", "image/png", 422),
        (b"\xff\xfe<svg>", "image/svg+xml", 422),
        (b'<!DOCTYPE svg [<!ENTITY a "aaaa">]><svg/>', "image/svg+xml", 422),
        (png() + b"\x00" * LOGO_MAX_BYTES, "image/png", 413),
    ],
    ids=[
        "no-type",
        "html-type",
        "gif",
        "octet-stream",
        "html-as-png",
        "html-as-svg",
        "png-as-jpeg",
        "empty",
        "utf16-svg",
        "svg-entities",
        "too-large",
    ],
)
async def test_a_bad_logo_is_a_problem_and_changes_nothing(
    ctx: AppContext, client: httpx.AsyncClient, content: bytes, kind: str, status: int
) -> None:
    headers = {**AUTH, "content-type": kind} if kind else AUTH
    response = await client.put("/admin/v1/storefront/logo", headers=headers, content=content)
    body = problem(response, status)
    assert body["type"].startswith("/errors/logo-")
    assert (await client.get("/admin/v1/storefront", headers=AUTH)).json()["logo"] is None
    assert (await client.get("/web/logo")).status_code == 404
    assert await audit_entries(ctx) == []


async def test_the_storefront_table_keeps_its_limits(ctx: AppContext) -> None:
    """The database refuses what the service would (a second row, an untyped logo)."""
    async with ctx.db.session() as session:
        for statement in (
            "INSERT INTO storefront (id) VALUES (2)",
            "INSERT INTO storefront (id, logo) VALUES (1, '\\x89'::bytea)",
            "INSERT INTO storefront (id, name) VALUES (1, '  ')",
        ):
            with pytest.raises(Exception, match="violates check constraint"):
                async with session.begin_nested():
                    await session.execute(text(statement))
        assert await session.scalar(select(func.count()).select_from(text("storefront"))) == 0
