"""Operator endpoints for providers and the review queue (under /admin/v1)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Request, status
from pydantic import BaseModel, ConfigDict, Field, HttpUrl
from sqlalchemy import select

from app.admin.auth import require_admin
from app.admin.problems import get_or_404
from app.audit.service import record
from app.context import get_context
from app.db import utcnow
from app.orders import relay
from app.orders.models import UP_REVIEW, Order
from app.providers import service as providers
from app.providers.client import ProviderError
from app.providers.crypto import encrypt_key
from app.providers.models import Provider

router = APIRouter(prefix="/admin/v1", dependencies=[Depends(require_admin)])
Operator = Annotated[str, Depends(require_admin)]
ProviderId = Annotated[int, Path(description="provider id", ge=1, le=2**63 - 1)]
OrderId = Annotated[int, Path(description="order id", ge=1, le=2**63 - 1)]


class ProviderIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "Upstream panel",
                    "url": "https://provider.example/api/v2",
                    "api_key": "their-api-key",
                    "currency": "USD",
                }
            ]
        }
    )
    name: str = Field(min_length=1, max_length=200)
    url: HttpUrl = Field(description="the provider's API v2 endpoint")
    api_key: str = Field(min_length=1, max_length=500, description="stored encrypted, never shown")
    currency: str = Field(default="USD", min_length=3, max_length=3)
    enabled: bool = True


class ProviderPatch(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"enabled": False}]})
    name: str | None = Field(default=None, min_length=1, max_length=200)
    url: HttpUrl | None = None
    api_key: str | None = Field(default=None, min_length=1, max_length=500)
    currency: str | None = Field(default=None, min_length=3, max_length=3)
    enabled: bool | None = None


class ProviderOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 1,
                    "name": "Upstream panel",
                    "url": "https://provider.example/api/v2",
                    "currency": "USD",
                    "enabled": True,
                    "last_balance": "120.50000",
                    "last_balance_at": "2026-01-01T00:00:00Z",
                }
            ]
        }
    )
    id: int
    name: str
    url: str
    currency: str
    enabled: bool
    last_balance: Decimal | None
    last_balance_at: datetime | None


def _out(provider: Provider) -> ProviderOut:
    return ProviderOut(
        id=provider.id,
        name=provider.name,
        url=provider.url,
        currency=provider.currency,
        enabled=provider.enabled,
        last_balance=provider.last_balance,
        last_balance_at=provider.last_balance_at,
    )


def _public(provider: Provider) -> dict[str, Any]:
    return _out(provider).model_dump(mode="json")


@router.get("/providers", tags=["providers"], summary="List providers")
async def list_providers(request: Request) -> list[ProviderOut]:
    async with get_context(request).db.session() as session:
        return [_out(p) for p in await session.scalars(select(Provider).order_by(Provider.id))]


@router.post(
    "/providers",
    tags=["providers"],
    summary="Register a provider",
    description=(
        "Another panel speaking API v2. Its API key is encrypted at rest and never returned."
    ),
    status_code=status.HTTP_201_CREATED,
)
async def create_provider(request: Request, body: ProviderIn, operator: Operator) -> ProviderOut:
    ctx = get_context(request)
    async with ctx.db.transaction() as session:
        provider = await providers.create_provider(
            session,
            secret=ctx.settings.secret_key,
            name=body.name,
            url=str(body.url),
            api_key=body.api_key,
            currency=body.currency.upper(),
            enabled=body.enabled,
        )
        await record(
            session,
            actor=operator,
            action="provider.create",
            entity="provider",
            entity_id=provider.id,
            after=_public(provider),
        )
        return _out(provider)


@router.get("/providers/{provider_id}", tags=["providers"], summary="Show a provider")
async def get_provider(request: Request, provider_id: ProviderId) -> ProviderOut:
    async with get_context(request).db.session() as session:
        return _out(await get_or_404(session, Provider, provider_id, "Provider"))


@router.patch("/providers/{provider_id}", tags=["providers"], summary="Change a provider")
async def patch_provider(
    request: Request, provider_id: ProviderId, body: ProviderPatch, operator: Operator
) -> ProviderOut:
    ctx = get_context(request)
    async with ctx.db.transaction() as session:
        provider = await get_or_404(session, Provider, provider_id, "Provider")
        before = _public(provider)
        changes = body.model_dump(exclude_unset=True, exclude_none=True)
        if "api_key" in changes:
            provider.api_key_encrypted = encrypt_key(
                ctx.settings.secret_key, changes.pop("api_key")
            )
        for name, value in changes.items():
            setattr(provider, name, str(value) if name == "url" else value)
        await session.flush()
        await record(
            session,
            actor=operator,
            action="provider.update",
            entity="provider",
            entity_id=provider.id,
            before=before,
            after=_public(provider),
        )
        return _out(provider)


@router.delete(
    "/providers/{provider_id}",
    tags=["providers"],
    summary="Disable a provider",
    description="Providers are never deleted (orders refer to them); this disables it.",
)
async def delete_provider(
    request: Request, provider_id: ProviderId, operator: Operator
) -> ProviderOut:
    async with get_context(request).db.transaction() as session:
        provider = await get_or_404(session, Provider, provider_id, "Provider")
        before = _public(provider)
        provider.enabled = False
        await session.flush()
        await record(
            session,
            actor=operator,
            action="provider.disable",
            entity="provider",
            entity_id=provider.id,
            before=before,
            after=_public(provider),
        )
        return _out(provider)


class BalanceOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"provider_id": 1, "balance": "120.5", "currency": "USD"}]}
    )
    provider_id: int
    balance: Decimal
    currency: str


@router.get(
    "/providers/{provider_id}/balance",
    tags=["providers"],
    summary="Read the provider's balance (live)",
)
async def provider_balance(request: Request, provider_id: ProviderId) -> BalanceOut:
    ctx = get_context(request)
    async with ctx.db.session() as session:
        provider = await get_or_404(session, Provider, provider_id, "Provider")
    client = providers.client_for(provider, ctx.settings.secret_key, ctx.http)
    try:
        balance = await client.balance()
    except ProviderError as exc:
        raise HTTPException(status.HTTP_502_BAD_GATEWAY, f"provider error: {exc.message}") from exc
    async with ctx.db.transaction() as session:
        row = await get_or_404(session, Provider, provider_id, "Provider")
        row.last_balance = balance.balance
        row.last_balance_at = utcnow()
    return BalanceOut(provider_id=provider_id, balance=balance.balance, currency=balance.currency)


class ImportIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"multiplier": "1.5", "fixed": "0.10", "update_rates": True}]
        }
    )
    multiplier: Decimal = Field(
        default=Decimal("1.5"), gt=0, description="our rate = theirs × this"
    )
    fixed: Decimal = Field(default=Decimal(0), ge=0, description="… + this, per 1000")
    update_rates: bool = Field(default=True, description="also reprice already imported services")


class ImportOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"created": 12, "updated": 3, "disabled": 1}]}
    )
    created: int
    updated: int
    disabled: int


@router.post(
    "/providers/{provider_id}/import",
    tags=["providers"],
    summary="Import or refresh the provider's services with a markup",
    description=(
        "Creates our services for new provider services, refreshes mapped ones and disables "
        "services whose upstream vanished (existing orders continue)."
    ),
)
async def import_provider_services(
    request: Request, provider_id: ProviderId, body: ImportIn, operator: Operator
) -> ImportOut:
    ctx = get_context(request)
    async with ctx.db.transaction() as session:
        provider = await get_or_404(session, Provider, provider_id, "Provider")
        client = providers.client_for(provider, ctx.settings.secret_key, ctx.http)
        try:
            result = await providers.import_services(
                session,
                provider,
                client,
                providers.Markup(body.multiplier, body.fixed),
                update_rates=body.update_rates,
            )
        except ProviderError as exc:
            raise HTTPException(
                status.HTTP_502_BAD_GATEWAY, f"provider error: {exc.message}"
            ) from exc
        out = ImportOut(created=result.created, updated=result.updated, disabled=result.disabled)
        await record(
            session,
            actor=operator,
            action="provider.import",
            entity="provider",
            entity_id=provider.id,
            after={**out.model_dump(), **body.model_dump(mode="json")},
        )
        return out


# Review queue.


class ReviewOrder(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 42,
                    "user_id": 7,
                    "service_id": 3,
                    "provider_id": 1,
                    "link": "https://instagram.com/x",
                    "quantity": 1000,
                    "charge": "0.90000",
                    "attempts": 1,
                    "last_error": "read timeout",
                    "created_at": "2026-01-01T00:00:00Z",
                }
            ]
        }
    )
    id: int
    user_id: int
    service_id: int
    provider_id: int | None
    link: str
    quantity: int
    charge: Decimal
    attempts: int
    last_error: str | None
    created_at: datetime


@router.get(
    "/review",
    tags=["review queue"],
    summary="Orders whose upstream outcome is unknown",
    description="They are never resent automatically: decide with resend, mark-sent or cancel.",
)
async def review_queue(request: Request, limit: int = 100, offset: int = 0) -> list[ReviewOrder]:
    async with get_context(request).db.session() as session:
        rows = await session.scalars(
            select(Order)
            .where(Order.upstream_state == UP_REVIEW)
            .order_by(Order.id)
            .limit(min(max(limit, 1), 1000))
            .offset(max(offset, 0))
        )
        return [
            ReviewOrder(
                id=o.id,
                user_id=o.user_id,
                service_id=o.service_id,
                provider_id=o.provider_id,
                link=o.link,
                quantity=o.quantity,
                charge=o.charge,
                attempts=o.attempts,
                last_error=o.last_error,
                created_at=o.created_at,
            )
            for o in rows
        ]


class MarkSentIn(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"provider_order_id": "998877"}]})
    provider_order_id: str = Field(min_length=1, max_length=64)


class ReviewResult(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"order_id": 42, "action": "resend"}]}
    )
    order_id: int
    action: str


async def _review_action(
    request: Request, order_id: int, operator: str, action: str, provider_order_id: str = ""
) -> ReviewResult:
    ctx = get_context(request)
    async with ctx.db.transaction() as session:
        if action == "resend":
            done = await relay.review_resend(session, order_id)
        elif action == "mark_sent":
            done = await relay.review_mark_sent(
                session, order_id, provider_order_id, get_context(request).settings
            )
        else:
            done = await relay.review_cancel(session, order_id)
        if not done:
            raise HTTPException(status.HTTP_409_CONFLICT, "order is not in the review queue")
        await record(
            session,
            actor=operator,
            action=f"review.{action}",
            entity="order",
            entity_id=order_id,
            after={"provider_order_id": provider_order_id} if provider_order_id else None,
        )
    if action == "resend":
        await ctx.jobs.relay_order(order_id)
    return ReviewResult(order_id=order_id, action=action)


@router.post(
    "/review/{order_id}/resend",
    tags=["review queue"],
    summary="Send the order upstream again",
    description="Only when you know the provider did not create it: a resend can double it.",
)
async def review_resend(request: Request, order_id: OrderId, operator: Operator) -> ReviewResult:
    return await _review_action(request, order_id, operator, "resend")


@router.post(
    "/review/{order_id}/mark-sent",
    tags=["review queue"],
    summary="Attach the provider's order id (it was created upstream)",
)
async def review_mark_sent(
    request: Request, order_id: OrderId, body: MarkSentIn, operator: Operator
) -> ReviewResult:
    return await _review_action(request, order_id, operator, "mark_sent", body.provider_order_id)


@router.post(
    "/review/{order_id}/cancel",
    tags=["review queue"],
    summary="Cancel the order with a full refund",
)
async def review_cancel(request: Request, order_id: OrderId, operator: Operator) -> ReviewResult:
    return await _review_action(request, order_id, operator, "cancel")
