"""Announcements: the operator publishes, changes and removes them; a customer reads them
in their language (the English text where no Russian one is written), and those published
after the newest one they have seen are unread."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import utcnow
from app.errors import NotFound
from app.news.models import News, NewsRead
from app.news.schemas import NewsIn


class NewsNotFound(NotFound):
    http_status = 404
    message = "News not found"


@dataclass(frozen=True)
class Shown:
    """An announcement in a reader's language, and whether they have seen it."""

    id: int
    title: str
    body: str
    published_at: object
    unread: bool


def in_language(item: News, language: str, seen_id: int) -> Shown:
    russian = language == "ru" and item.title_ru.strip()
    return Shown(
        id=item.id,
        title=item.title_ru if russian else item.title_en,
        body=(item.body_ru or item.body_en) if russian else item.body_en,
        published_at=item.published_at,
        unread=item.id > seen_id,
    )


async def publish(session: AsyncSession, body: NewsIn, author: str) -> News:
    item = News(**body.model_dump(), author=author)
    session.add(item)
    await session.flush()
    return item


async def get(session: AsyncSession, news_id: int) -> News:
    item = await session.get(News, news_id)
    if item is None:
        raise NewsNotFound()
    return item


async def change(session: AsyncSession, news_id: int, body: NewsIn) -> News:
    item = await get(session, news_id)
    for name, value in body.model_dump().items():
        setattr(item, name, value)
    item.updated_at = utcnow()
    await session.flush()
    return item


async def remove(session: AsyncSession, news_id: int) -> News:
    item = await get(session, news_id)
    await session.delete(item)
    await session.flush()
    return item


async def list_news(session: AsyncSession, *, limit: int, offset: int = 0) -> list[News]:
    """Newest first."""
    return list(
        await session.scalars(select(News).order_by(News.id.desc()).limit(limit).offset(offset))
    )


async def seen_by(session: AsyncSession, user_id: int) -> int:
    seen = await session.scalar(select(NewsRead.seen_id).where(NewsRead.user_id == user_id))
    return int(seen or 0)


async def for_reader(
    session: AsyncSession, user_id: int, language: str, *, limit: int, offset: int = 0
) -> list[Shown]:
    seen = await seen_by(session, user_id)
    items = await list_news(session, limit=limit, offset=offset)
    return [in_language(item, language, seen) for item in items]


async def unread_count(session: AsyncSession, user_id: int) -> int:
    seen = await seen_by(session, user_id)
    return int(await session.scalar(select(func.count()).where(News.id > seen)) or 0)


async def mark_read(session: AsyncSession, user_id: int) -> None:
    """Everything published so far is seen (never moves back)."""
    newest = await session.scalar(select(func.max(News.id)))
    if newest is None:
        return
    statement = pg_insert(NewsRead).values(user_id=user_id, seen_id=newest, seen_at=utcnow())
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[NewsRead.user_id],
            set_={"seen_id": func.greatest(NewsRead.seen_id, newest), "seen_at": utcnow()},
        )
    )
