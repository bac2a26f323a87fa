"""Operator reports (under /admin/v1)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict

from app.http.auth import require
from app.http.context import ServicesDep
from app.http.problems import Problem
from app.http.schemas import PlainDecimal
from app.http.tx import Reader
from app.reports.service import GroupBy, MarginRow, margin_report

admin_router = APIRouter(tags=["reports"])


class MarginRowOut(BaseModel):
    key: int | None
    name: str
    orders: int
    revenue: PlainDecimal
    cost: PlainDecimal
    margin: PlainDecimal
    margin_percent: PlainDecimal | None
    unpriced_orders: int
    unpriced_revenue: PlainDecimal

    @classmethod
    def of(cls, row: MarginRow) -> MarginRowOut:
        return cls(
            key=row.key,
            name=row.name,
            orders=row.orders,
            revenue=row.revenue,
            cost=row.cost,
            margin=row.margin,
            margin_percent=row.margin_percent,
            unpriced_orders=row.unpriced_orders,
            unpriced_revenue=row.unpriced_revenue,
        )


class MarginReportOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "start": "2026-01-01T00:00:00Z",
                    "end": "2026-02-01T00:00:00Z",
                    "group_by": "service",
                    "currency": "USD",
                    "rows": [
                        {
                            "key": 1,
                            "name": "Followers",
                            "orders": 12,
                            "revenue": "10.80000",
                            "cost": "5.40000000",
                            "margin": "5.40000",
                            "margin_percent": "50.00",
                            "unpriced_orders": 0,
                            "unpriced_revenue": "0",
                        }
                    ],
                }
            ]
        }
    )
    start: datetime
    end: datetime
    group_by: GroupBy
    currency: str
    rows: list[MarginRowOut]
    total: MarginRowOut


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


@admin_router.get(
    "/reports/margin",
    dependencies=[require("reports:read")],
    summary="Margin per service or provider over a date range",
    description="Orders placed from `from` to `to` (inclusive, UTC days). Revenue = charges "
    "minus refunds; cost = what providers bill for the sent orders (Partial: the delivered "
    "share, Canceled: nothing), converted into the panel's currency at the rate of the day "
    "each order was sent. Orders whose cost is unknown (not yet accepted upstream, or "
    "without a provider charge or a conversion rate) are counted in `unpriced_orders`, their "
    "revenue in `unpriced_revenue`; `margin` and `margin_percent` are those of the priced "
    "orders.",
)
async def margin(
    session: Reader,
    services: ServicesDep,
    start: Annotated[date, Query(alias="from", description="first day, YYYY-MM-DD")],
    end: Annotated[date, Query(alias="to", description="last day, YYYY-MM-DD")],
    group_by: GroupBy = "service",
) -> MarginReportOut:
    if end < start:
        raise Problem(422, "`to` must not be before `from`")
    if (end - start).days > 3660 or end >= date.max:
        raise Problem(422, "The range is limited to ten years")
    report = await margin_report(
        session,
        start=_midnight(start),
        end=_midnight(end) + timedelta(days=1),
        group_by=group_by,
        currency=services.settings.currency,
    )
    return MarginReportOut(
        start=report.start,
        end=report.end,
        group_by=report.group_by,
        currency=report.currency,
        rows=[MarginRowOut.of(row) for row in report.rows],
        total=MarginRowOut.of(report.total),
    )
