"""Legal texts with versions and the record of their acceptance: the operator publishes a
version (audited); the storefront shows the one in force with its date and keeps the
earlier ones at stable addresses; sign-up needs the box ticked and records the versions in
force with the client's address; an order records the versions once per user and version,
a deposit invoice once per deposit; a version published later is shown once before the
next order on the storefront (409 until ticked) and on /client/v1."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from app.audit.models import AuditEntry
from app.context import AppContext
from app.legal.models import LegalAcceptance
from tests.support.api import Api, MakeService
from tests.support.client import MakeCustomer
from tests.support.env import AUTH
from tests.support.mail import Mailbox
from tests.support.web import refs, signed_in


async def publish(client: httpx.AsyncClient, document: str, language: str, text: str) -> int:
    made = await client.post(
        f"/admin/v1/legal/{document}/versions",
        json={"language": language, "text": text},
        headers=AUTH,
    )
    assert made.status_code == 201, made.text
    return int(made.json()["id"])


async def acceptances(client: httpx.AsyncClient, user_id: int) -> list[dict[str, Any]]:
    found = await client.get(f"/admin/v1/users/{user_id}/acceptances", headers=AUTH)
    assert found.status_code == 200, found.text
    rows: list[dict[str, Any]] = found.json()
    return rows


async def test_publishing_is_audited_listed_and_shown_with_old_versions_kept(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    first = await publish(client, "terms", "en", "1. Orders\n\nFirst words.")
    second = await publish(client, "terms", "en", "1. Orders\n\nSecond words.")
    russian = await publish(client, "terms", "ru", "1. Заказы\n\nПравила.")
    listed = (await client.get("/admin/v1/legal/terms/versions", headers=AUTH)).json()
    assert [v["id"] for v in listed] == [russian, second, first]
    assert all(v["published_at"] and v["published_by"] for v in listed), listed
    async with ctx.db.session() as session:
        audited = list(
            await session.scalars(select(AuditEntry).where(AuditEntry.action == "legal.publish"))
        )
    assert [a.entity_id for a in audited] == [str(first), str(second), str(russian)]

    page = await client.get("/web/terms")
    assert "Second words." in page.text and "First words." not in page.text
    assert f"Version {second}, published" in page.text
    assert f"/web/terms/versions/{first}" in page.text
    ru = await client.get("/web/terms", headers={"Accept-Language": "ru"})
    assert "Правила." in ru.text
    old = await client.get(f"/web/terms/versions/{first}")
    assert old.status_code == 200 and "First words." in old.text
    assert "no longer in force" in old.text
    # A version of another document, or none, is not found at this address.
    assert (await client.get(f"/web/privacy-policy/versions/{first}")).status_code == 404
    assert (await client.get("/web/terms/versions/99999")).status_code == 404


async def test_bad_publications_are_refused_as_problems(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    for path, body, status in (
        ("/admin/v1/legal/cookies/versions", {"language": "en", "text": "x"}, 404),
        ("/admin/v1/legal/terms/versions", {"language": "de", "text": "x"}, 422),
        ("/admin/v1/legal/terms/versions", {"language": "en", "text": ""}, 422),
        ("/admin/v1/legal/terms/versions", {"language": "en", "text": "   "}, 422),
        ("/admin/v1/legal/terms/versions", {"language": "en", "text": "a\x00b"}, 422),
    ):
        response = await client.post(path, json=body, headers=AUTH)
        assert response.status_code == status, (path, body, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    assert (await client.get("/admin/v1/legal/terms/versions", headers=AUTH)).json() == []
    assert (await client.post("/admin/v1/legal/terms/versions", json={})).status_code == 401


async def test_sign_up_needs_the_box_and_records_the_versions_with_the_address(
    client: httpx.AsyncClient, ctx: AppContext, mailbox: Mailbox
) -> None:
    terms = await publish(client, "terms", "en", "Terms one.")
    privacy = await publish(client, "privacy", "en", "Privacy one.")
    body = {"email": "new@example.com", "password": "long enough pw"}
    refused = await client.post("/client/v1/register", json=body)
    assert refused.status_code == 422
    assert refused.json()["type"] == "/errors/terms-required"
    made = await client.post("/client/v1/register", json={**body, "accept_terms": True})
    assert made.status_code == 201, made.text
    rows = await acceptances(client, made.json()["user_id"])
    assert sorted((r["document"], r["version_id"], r["action"], r["ip"]) for r in rows) == [
        ("privacy", privacy, "registration", "127.0.0.1"),
        ("terms", terms, "registration", "127.0.0.1"),
    ]

    # The storefront's form: refused without the box, shown again with the message.
    home = await client.get("/web/")
    form = {"csrf": refs(home.text).csrf or "", "email": "web@example.com", "password": "pw-long-1"}
    unticked = await client.post("/web/signup", data=form)
    assert unticked.status_code == 422 and 'id="signup-error"' in unticked.text
    ticked = await client.post("/web/signup", data={**form, "accept_terms": "1"})
    assert ticked.status_code == 200 and 'id="signed-up"' in ticked.text


async def test_orders_record_once_per_version_and_a_new_version_is_shown_once(
    client: httpx.AsyncClient,
    ctx: AppContext,
    api: Api,
    make_customer: MakeCustomer,
    make_service: MakeService,
) -> None:
    service = await make_service()
    customer = await signed_in(client, make_customer, "100")
    first = await publish(client, "terms", "en", "Terms one.")
    order = {"service": str(service), "link": "https://x.com/a", "quantity": "100"}
    # API v2: ordering is the acceptance; two orders keep one row per version.
    for n in range(2):
        placed = await api(customer.key, "add", **{**order, "link": f"https://x.com/v2-{n}"})
        assert "order" in placed, placed
    rows = await acceptances(client, customer.user_id)
    assert [(r["version_id"], r["action"]) for r in rows] == [(first, "order")]

    # A new version: the storefront's next order shows it and waits for the box.
    second = await publish(client, "terms", "en", "Terms two.")
    form = await client.get("/web/orders/new")
    assert 'id="terms-changed"' in form.text and f"/web/terms/versions/{second}" in form.text
    csrf = refs(form.text).csrf or ""
    link = {**order, "link": "https://x.com/b"}
    unticked = await client.post("/web/orders/new", data={**link, "csrf": csrf})
    assert unticked.status_code == 409
    assert 'id="error-accept_terms"' in unticked.text
    ticked = await client.post("/web/orders/new", data={**link, "csrf": csrf, "accept_terms": "1"})
    assert ticked.status_code == 303, ticked.text
    again = await client.get("/web/orders/new")
    assert 'id="terms-changed"' not in again.text  # seen once
    rows = await acceptances(client, customer.user_id)
    assert [(r["version_id"], r["action"], r["ip"]) for r in rows] == [
        (first, "order", None),
        (second, "order", "127.0.0.1"),
    ]

    # /client/v1 answers 409 until `accept_terms` is sent with the order.
    third = await publish(client, "terms", "en", "Terms three.")
    link = {**order, "link": "https://x.com/c"}
    waiting = await client.post("/client/v1/orders", json=link, headers=customer.auth)
    assert waiting.status_code == 409, waiting.text
    assert waiting.json()["type"] == "/errors/terms-not-accepted"
    placed = await client.post(
        "/client/v1/orders", json={**link, "accept_terms": True}, headers=customer.auth
    )
    assert placed.status_code == 201, placed.text
    async with ctx.db.session() as session:
        count = await session.scalar(
            select(func.count()).where(
                LegalAcceptance.user_id == customer.user_id, LegalAcceptance.version_id == third
            )
        )
    assert count == 1


async def test_a_deposit_invoice_records_the_versions_per_deposit(
    client: httpx.AsyncClient,
    ctx: AppContext,
    make_customer: MakeCustomer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ctx.settings, "robokassa_login", "shop")
    monkeypatch.setattr(ctx.settings, "robokassa_password1", "one-password")
    monkeypatch.setattr(ctx.settings, "robokassa_password2", "two-password")
    monkeypatch.setattr(ctx.settings, "robokassa_currency", ctx.settings.currency)
    customer = await make_customer()
    version = await publish(client, "terms-of-use", "en", "Use.")
    ids = []
    for _ in range(2):
        made = await client.post(
            "/client/v1/deposits",
            json={"gateway": "robokassa", "amount": "10"},
            headers=customer.auth,
        )
        assert made.status_code == 201, made.text
        ids.append(made.json()["payment"])
    rows = await acceptances(client, customer.user_id)
    assert [(r["version_id"], r["action"], r["reference"]) for r in rows] == [
        (version, "deposit", f"invoice:{ids[0]}"),
        (version, "deposit", f"invoice:{ids[1]}"),
    ]
