"""Operator endpoints for conversion rates (under /admin/v1)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, status
from pydantic import BaseModel, ConfigDict, Field

from app.admin.auth import require_admin
from app.admin.problems import Problem
from app.audit.service import record
from app.context import get_context
from app.currencies import service as currencies

router = APIRouter(prefix="/admin/v1", dependencies=[Depends(require_admin)])
Operator = Annotated[str, Depends(require_admin)]
Code = Annotated[str, Path(pattern=r"^[A-Za-z]{3}$", description="ISO 4217 code, e.g. RUB")]


class RateIn(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"rate": "0.0108"}]})
    rate: Decimal = Field(
        gt=0, max_digits=20, decimal_places=8, description="panel currency per unit"
    )


class RateOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"code": "RUB", "rate": "0.0108", "source": "admin"}]}
    )
    code: str
    rate: Decimal
    source: str = Field(description="panel (the panel's own currency), admin or settings")


@router.get(
    "/currencies", tags=["currencies"], summary="Conversion rates into the panel's currency"
)
async def list_currencies(request: Request) -> list[RateOut]:
    ctx = get_context(request)
    async with ctx.db.session() as session:
        rates = await currencies.list_rates(session, ctx.settings)
    return [RateOut(code=r.code, rate=r.rate, source=r.source) for r in rates]


@router.put(
    "/currencies/{code}",
    tags=["currencies"],
    summary="Set a conversion rate",
    description="Applies to orders sent from now on; sent orders keep the rate of their day.",
)
async def set_currency(request: Request, code: Code, body: RateIn, operator: Operator) -> RateOut:
    ctx = get_context(request)
    code = currencies.normalize_code(code)
    if code == currencies.normalize_code(ctx.settings.currency):
        raise Problem(409, "The panel's own currency always converts at 1")
    async with ctx.db.transaction() as session:
        try:
            before = await currencies.conversion_rate(session, ctx.settings, code)
        except currencies.NoConversionRate:
            before = None
        await currencies.set_rate(session, code, body.rate)
        await record(
            session,
            actor=operator,
            action="currency.set",
            entity="currency",
            entity_id=code,
            before=None if before is None else {"rate": str(before)},
            after={"rate": str(body.rate)},
        )
    return RateOut(code=code, rate=body.rate, source="admin")


@router.delete(
    "/currencies/{code}",
    tags=["currencies"],
    summary="Remove an operator-set rate (the settings' default, if any, applies again)",
    status_code=status.HTTP_204_NO_CONTENT,
)
async def delete_currency(request: Request, code: Code, operator: Operator) -> None:
    ctx = get_context(request)
    code = currencies.normalize_code(code)
    async with ctx.db.transaction() as session:
        if not await currencies.delete_rate(session, code):
            raise Problem(404, "No operator-set rate for this currency")
        await record(
            session, actor=operator, action="currency.delete", entity="currency", entity_id=code
        )
