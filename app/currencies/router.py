"""Operator endpoints for conversion rates (under /admin/v1)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, status
from pydantic import BaseModel, ConfigDict, Field

from app.currencies import service as currencies
from app.http.audit import Audit
from app.http.auth import require
from app.http.context import ServicesDep
from app.http.schemas import AdminInput, PlainDecimal
from app.http.tx import Reader, Tx

admin_router = APIRouter(tags=["currencies"])
Code = Annotated[str, Path(pattern=r"^[A-Za-z]{3}$", description="ISO 4217 code, e.g. RUB")]


class RateIn(AdminInput):
    model_config = ConfigDict(json_schema_extra={"examples": [{"rate": "0.0108"}]})
    rate: PlainDecimal = Field(
        gt=0, max_digits=20, decimal_places=8, description="panel currency per unit"
    )


class RateOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"code": "RUB", "rate": "0.0108", "source": "admin"}]}
    )
    code: str
    rate: PlainDecimal
    source: str = Field(description="panel (the panel's own currency), admin or settings")


@admin_router.get(
    "/currencies",
    dependencies=[require("currencies:read")],
    summary="Conversion rates into the panel's currency",
)
async def list_currencies(session: Reader, services: ServicesDep) -> list[RateOut]:
    rates = await currencies.list_rates(session, services.settings)
    return [RateOut(code=r.code, rate=r.rate, source=r.source) for r in rates]


@admin_router.put(
    "/currencies/{code}",
    dependencies=[require("currencies:write")],
    summary="Set a conversion rate",
    description="Applies to orders sent from now on; sent orders keep the rate of their day.",
)
async def set_currency(
    tx: Tx, audit: Audit, services: ServicesDep, code: Code, body: RateIn
) -> RateOut:
    code = currencies.normalize_code(code)
    before = await currencies.set_operator_rate(tx, services.settings, code, body.rate)
    await audit(
        "currency.set",
        "currency",
        code,
        before=None if before is None else {"rate": str(before)},
        after={"rate": str(body.rate)},
    )
    return RateOut(code=code, rate=body.rate, source="admin")


@admin_router.delete(
    "/currencies/{code}",
    dependencies=[require("currencies:write")],
    summary="Remove an operator-set rate (the settings' default, if any, applies again)",
    status_code=status.HTTP_204_NO_CONTENT,
)
async def delete_currency(tx: Tx, audit: Audit, code: Code) -> None:
    code = currencies.normalize_code(code)
    await currencies.remove_operator_rate(tx, code)
    await audit("currency.delete", "currency", code)
