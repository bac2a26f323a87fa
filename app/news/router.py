"""The operator's announcements under /admin/v1/news: published at once, shown on the
storefront's news page and dashboard in the reader's language; every change audited."""

from __future__ import annotations

from fastapi import APIRouter

from app.http.audit import Audit
from app.http.auth import require
from app.http.paths import Limit, Offset, PathId
from app.http.tx import Reader, Tx
from app.news import service as news
from app.news.schemas import NewsIn, NewsOut

admin_router = APIRouter(tags=["news"])


@admin_router.get(
    "/news", dependencies=[require("news:read")], summary="Announcements, newest first"
)
async def list_news(session: Reader, limit: Limit = 100, offset: Offset = 0) -> list[NewsOut]:
    return [
        NewsOut.model_validate(n) for n in await news.list_news(session, limit=limit, offset=offset)
    ]


@admin_router.post(
    "/news",
    status_code=201,
    dependencies=[require("news:write")],
    summary="Publish an announcement",
    description="Published at once; unread for every customer until they open the news "
    "page. The Russian title and text are optional (Russian readers see the English ones "
    "without them).",
)
async def publish(tx: Tx, audit: Audit, body: NewsIn) -> NewsOut:
    out = NewsOut.model_validate(await news.publish(tx, body, audit.actor))
    await audit("news.publish", "news", out.id, after=out)
    return out


@admin_router.get("/news/{news_id}", dependencies=[require("news:read")], summary="An announcement")
async def get_news(session: Reader, news_id: PathId) -> NewsOut:
    return NewsOut.model_validate(await news.get(session, news_id))


@admin_router.put(
    "/news/{news_id}",
    dependencies=[require("news:write")],
    summary="Change an announcement",
    description="Its unread marks stay as they were.",
)
async def change(tx: Tx, audit: Audit, news_id: PathId, body: NewsIn) -> NewsOut:
    before = NewsOut.model_validate(await news.get(tx, news_id))
    out = NewsOut.model_validate(await news.change(tx, news_id, body))
    await audit("news.change", "news", news_id, before=before, after=out)
    return out


@admin_router.delete(
    "/news/{news_id}", dependencies=[require("news:write")], summary="Remove an announcement"
)
async def remove(tx: Tx, audit: Audit, news_id: PathId) -> NewsOut:
    out = NewsOut.model_validate(await news.remove(tx, news_id))
    await audit("news.remove", "news", news_id, before=out)
    return out
