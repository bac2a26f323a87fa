"""The operator's announcements on the storefront: the news page (opening it marks every
announcement seen) and the latest few on the dashboard, unread ones marked."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from app.http.tx import Tx
from app.news import service as news
from app.web.render import Visitor, page, signed_in

router = APIRouter()
Me = Annotated[Visitor, Depends(signed_in)]
PAGE_SIZE = 20
ON_DASHBOARD = 3


async def latest(db: AsyncSession, who: Visitor) -> list[news.Shown]:
    """What the dashboard shows: the newest announcements, unread ones marked."""
    return await news.for_reader(db, who.me.user_id, who.language, limit=ON_DASHBOARD)


@router.get("/news")
async def news_page(who: Me, tx: Tx, page_number: int = 0) -> Response:
    at = max(0, min(page_number, 10_000))
    shown = await news.for_reader(
        tx, who.me.user_id, who.language, limit=PAGE_SIZE + 1, offset=at * PAGE_SIZE
    )
    await news.mark_read(tx, who.me.user_id)
    return page(
        who,
        "news.html",
        items=shown[:PAGE_SIZE],
        page_number=at,
        more=len(shown) > PAGE_SIZE,
    )
