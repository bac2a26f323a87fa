"""Announcements: the operator publishes them through /admin/v1 (audited, by permission),
customers read them on the storefront in their language, unread ones marked on the
dashboard and in the menu until the news page is opened."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from app.audit.models import AuditEntry
from app.context import AppContext
from tests.support.client import MakeCustomer
from tests.support.env import AUTH
from tests.support.staff import make_staff
from tests.support.web import refs, signed_in

ANNOUNCEMENT = {
    "title_en": "Telegram views are back",
    "body_en": "Views for channels are on sale again.",
    "title_ru": "Просмотры Telegram снова в продаже",
    "body_ru": "Просмотры для каналов снова в продаже.",
}


async def test_operator_publishes_changes_and_removes_news_audited(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    made = await client.post("/admin/v1/news", headers=AUTH, json=ANNOUNCEMENT)
    assert made.status_code == 201, made.text
    item = made.json()
    assert {k: item[k] for k in ANNOUNCEMENT} == ANNOUNCEMENT
    changed = {**ANNOUNCEMENT, "title_en": "Telegram views are back for good"}
    put = await client.put(f"/admin/v1/news/{item['id']}", headers=AUTH, json=changed)
    assert put.json()["title_en"] == "Telegram views are back for good"
    listed = await client.get("/admin/v1/news", headers=AUTH)
    assert [n["id"] for n in listed.json()] == [item["id"]]
    gone = await client.delete(f"/admin/v1/news/{item['id']}", headers=AUTH)
    assert gone.status_code == 200
    missing = await client.get(f"/admin/v1/news/{item['id']}", headers=AUTH)
    assert (missing.status_code, missing.json()["type"]) == (404, "/errors/news-not-found")
    async with ctx.db.session() as session:
        actions = list(
            await session.scalars(
                select(AuditEntry.action).where(AuditEntry.entity == "news").order_by(AuditEntry.id)
            )
        )
    assert actions == ["news.publish", "news.change", "news.remove"]


async def test_support_reads_news_but_may_not_publish(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    member = await make_staff(ctx, "support")
    headers = {"Authorization": f"Bearer {member.token}"}
    assert (await client.get("/admin/v1/news", headers=headers)).status_code == 200
    refused = await client.post("/admin/v1/news", headers=headers, json=ANNOUNCEMENT)
    assert (refused.status_code, refused.json()["permission"]) == (403, "news:write")
    empty = await client.post("/admin/v1/news", headers=AUTH, json={**ANNOUNCEMENT, "title_en": ""})
    assert empty.status_code == 422


async def test_customers_see_unread_news_until_they_open_the_news_page(
    client: httpx.AsyncClient, make_customer: MakeCustomer
) -> None:
    await signed_in(client, make_customer, "0")
    quiet = await client.get("/web/orders/new")
    assert 'id="latest-news"' not in quiet.text and 'id="nav-news"' in quiet.text
    first = (await client.post("/admin/v1/news", headers=AUTH, json=ANNOUNCEMENT)).json()
    english_only = {"title_en": "Maintenance tonight", "body_en": "From 02:00 to 03:00 UTC."}
    second = (await client.post("/admin/v1/news", headers=AUTH, json=english_only)).json()

    dashboard = await client.get("/web/orders/new")
    assert 'id="unread-news">2 unread</span>' in dashboard.text
    assert f'<li id="latest-{second["id"]}" class="unread">' in dashboard.text
    assert f'<li id="latest-{first["id"]}" class="unread">' in dashboard.text
    csrf = refs(dashboard.text).csrf or ""
    await client.post("/web/language", data={"csrf": csrf, "language": "ru"})

    russian = await client.get("/web/news")
    assert "Просмотры Telegram снова в продаже" in russian.text
    assert "Maintenance tonight" in russian.text  # no Russian text: the English one
    assert russian.text.count('<span class="badge new">Новое</span>') == 2
    again = await client.get("/web/news")
    assert 'class="badge new"' not in again.text
    dashboard = await client.get("/web/orders/new")
    assert 'id="unread-news"' not in dashboard.text
    assert f'<li id="latest-{first["id"]}">' in dashboard.text

    third = (await client.post("/admin/v1/news", headers=AUTH, json=english_only)).json()
    dashboard = await client.get("/web/orders/new")
    assert 'id="unread-news">непрочитанных: 1</span>' in dashboard.text
    assert f'<li id="latest-{third["id"]}" class="unread">' in dashboard.text
