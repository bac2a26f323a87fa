"""The console's announcements: the list, the form that publishes one in English and
Russian, and removal. The same functions and audit entries as /admin/v1/news."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from app.console.listing import shown, window
from app.console.render import CONSOLE, N_, Failure, Permit, Who, page, posted, redirect
from app.errors import DomainError
from app.http.paths import PathId
from app.http.problems import Problem
from app.news import service as news
from app.news.schemas import NewsIn, NewsOut

router = APIRouter()
Reading = Annotated[Who, Depends(Permit("news:read"))]
Writing = Annotated[Who, Depends(Permit("news:write"))]
Refusals = (DomainError, Problem, ValueError)
DONE = {"published": N_("Published."), "removed": N_("Removed.")}
FIELDS = ("title_en", "body_en", "title_ru", "body_ru")


async def news_page(
    who: Who, failure: Failure | None = None, done: str = "", form: dict[str, str] | None = None
) -> Response:
    at = window(who.request.query_params.get("page"), None)
    async with who.services.db.session() as session:
        found = await news.list_news(session, limit=at.limit, offset=at.offset)
    return page(
        who,
        "news.html",
        failure.status if failure else 200,
        listed=shown(found, at),
        form=form or {},
        error=failure.message if failure else "",
        done=who._(DONE[done]) if done in DONE else "",
    )


@router.get("/news")
async def news_list(who: Reading, done: str = "") -> Response:
    return await news_page(who, done=done)


@router.post("/news")
async def publish(who: Writing) -> Response:
    fields = await posted(who)
    given = {name: fields.get(name, "").strip() for name in FIELDS}
    try:
        body = NewsIn.model_validate(given)
        async with who.acting() as (tx, audit):
            out = NewsOut.model_validate(await news.publish(tx, body, audit.actor))
            await audit("news.publish", "news", out.id, after=out)
    except Refusals as exc:
        return await news_page(who, who.error(exc), form=given)
    return redirect(who, f"{CONSOLE}/news?done=published")


@router.post("/news/{news_id}/remove")
async def remove(who: Writing, news_id: PathId) -> Response:
    await posted(who)
    try:
        async with who.acting() as (tx, audit):
            out = NewsOut.model_validate(await news.remove(tx, news_id))
            await audit("news.remove", "news", news_id, before=out)
    except Refusals as exc:
        return await news_page(who, who.error(exc))
    return redirect(who, f"{CONSOLE}/news?done=removed")
