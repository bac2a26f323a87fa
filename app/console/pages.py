"""The console's pages of every member: the dashboard (/web/admin/), each part shown to
the roles that may read it, with its charts per day; and the member's own sessions with a
way to end each."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from markupsafe import Markup

from app.console import dashboard
from app.console.charts import Point, bar_chart
from app.console.render import CONSOLE, Who, page, posted, redirect, signed_in
from app.errors import NotFound
from app.staff import service as staff

router = APIRouter()
Member = Annotated[Who, Depends(signed_in)]


@dataclass(frozen=True)
class Chart:
    id: str
    title: str
    svg: Markup


def charts_of(who: Who, board: dashboard.Dashboard) -> list[Chart]:
    if board.per_day is None:
        return []
    days = board.per_day

    def chart(chart_id: str, title: str, values: list[Decimal], money: bool) -> Chart:
        points = [Point(row.day, value) for row, value in zip(days, values, strict=True)]
        label = who.money if money else (lambda v: who.number(int(v)))
        return Chart(chart_id, title, bar_chart(chart_id, title, points, label))

    shown = [
        chart("chart-orders", who._("Orders per day"), [Decimal(r.orders) for r in days], False)
    ]
    if board.money_per_day:
        shown.append(
            chart("chart-revenue", who._("Revenue per day"), [r.revenue for r in days], True)
        )
        shown.append(chart("chart-margin", who._("Margin per day"), [r.margin for r in days], True))
    return shown


@router.get("/")
async def home(who: Member) -> Response:
    async with who.services.db.session() as session:
        shown = await dashboard.read(
            session, who.principal, who.services.settings.stuck_after_seconds
        )
    return page(
        who,
        "dashboard.html",
        board=shown,
        charts=charts_of(who, shown),
        chart_days=dashboard.CHART_DAYS,
    )


@router.get("/sessions")
async def sessions(who: Member, done: str = "") -> Response:
    async with who.services.db.session() as session:
        mine = await staff.list_sessions(session, who.member.member.id)
    return page(who, "sessions.html", sessions=mine, done=done == "revoked")


@router.post("/sessions/{session_id}/revoke")
async def revoke(who: Member, session_id: int) -> Response:
    await posted(who)
    try:
        async with who.services.db.transaction() as tx:
            await staff.revoke_session(tx, who.member.member.id, session_id)
    except NotFound:
        return page(who, "message.html", 404, message=who._("This session has ended already."))
    if session_id == who.member.session_id:
        return redirect(who, CONSOLE + "/login")
    return redirect(who, CONSOLE + "/sessions?done=revoked")
