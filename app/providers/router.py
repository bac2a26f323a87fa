"""Operator endpoints for providers: registration, live balance, catalog import."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from sqlalchemy import select

from app.catalog.models import MARKUP
from app.catalog.pricing import PricingRule
from app.http.audit import Audit
from app.http.auth import require
from app.http.context import ServicesDep
from app.http.paths import Limit, Offset, PathId
from app.http.problems import get_or_404
from app.http.tx import Reader, Tx
from app.providers import catalog
from app.providers import service as providers
from app.providers.client import ProviderClient, ProviderError
from app.providers.crypto import encrypt_key
from app.providers.models import CatalogChange, Provider
from app.providers.schemas import (
    BalanceOut,
    ChangeOut,
    ImportIn,
    ImportOut,
    ProviderIn,
    ProviderOut,
    ProviderPatch,
    SyncOut,
)

admin_router = APIRouter(tags=["providers"])


def _out(provider: Provider) -> ProviderOut:
    return ProviderOut(
        id=provider.id,
        name=provider.name,
        url=provider.url,
        currency=provider.currency,
        enabled=provider.enabled,
        last_balance=provider.last_balance,
        last_balance_at=provider.last_balance_at,
        balance_threshold=provider.balance_threshold,
        sync_minutes=provider.sync_minutes,
        last_sync_at=provider.last_sync_at,
        last_sync_error=provider.last_sync_error,
        request_id=provider.cap_request_id,
        status_by_request_id=provider.cap_status_by_request_id,
        webhooks=provider.cap_webhooks,
        capabilities_pinned=provider.capabilities_pinned,
        capabilities_checked_at=provider.capabilities_checked_at,
        webhook_registered=provider.webhook_secret_encrypted is not None,
    )


CAPABILITY_FIELDS = {
    "request_id": "cap_request_id",
    "status_by_request_id": "cap_status_by_request_id",
    "webhooks": "cap_webhooks",
}


@admin_router.get("/providers", dependencies=[require("providers:read")], summary="List providers")
async def list_providers(session: Reader) -> list[ProviderOut]:
    return [_out(p) for p in await session.scalars(select(Provider).order_by(Provider.id))]


@admin_router.post(
    "/providers",
    dependencies=[require("providers:write")],
    summary="Register a provider",
    description=(
        "Another panel speaking API v2. Its API key is encrypted at rest and never returned. "
        "The optional extensions it speaks are probed (`action=capabilities`; a standard "
        "panel's error means none) and shown; PATCH overrides them."
    ),
    status_code=status.HTTP_201_CREATED,
)
async def create_provider(
    tx: Tx, audit: Audit, services: ServicesDep, body: ProviderIn
) -> ProviderOut:
    url = await providers.check_url(services.settings, str(body.url))
    found = await providers.probe(ProviderClient(url, body.api_key, services.http))
    provider = await providers.create_provider(
        tx,
        secret=services.settings.secret_key,
        name=body.name,
        url=url,
        api_key=body.api_key,
        currency=body.currency.upper(),
        enabled=body.enabled,
    )
    provider.balance_threshold = body.balance_threshold
    provider.sync_minutes = body.sync_minutes
    providers.set_capabilities(provider, found)
    await providers.register_webhook(
        provider,
        providers.client_for(provider, services.settings.secret_key, services.http),
        services.settings.secret_key,
        services.settings.public_url,
    )
    await tx.flush()
    out = _out(provider)
    await audit("provider.create", "provider", provider.id, after=out)
    return out


@admin_router.get(
    "/providers/{provider_id}", dependencies=[require("providers:read")], summary="Show a provider"
)
async def get_provider(session: Reader, provider_id: PathId) -> ProviderOut:
    return _out(await get_or_404(session, Provider, provider_id, "Provider"))


@admin_router.patch(
    "/providers/{provider_id}",
    dependencies=[require("providers:write")],
    summary="Change a provider",
)
async def patch_provider(
    tx: Tx, audit: Audit, services: ServicesDep, provider_id: PathId, body: ProviderPatch
) -> ProviderOut:
    provider = await get_or_404(tx, Provider, provider_id, "Provider")
    before = _out(provider)
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    if "balance_threshold" in body.model_fields_set and body.balance_threshold is None:
        changes["balance_threshold"] = None  # null: no balance alert
    if "api_key" in changes:
        provider.api_key_encrypted = encrypt_key(
            services.settings.secret_key, changes.pop("api_key")
        )
    for name, column in CAPABILITY_FIELDS.items():
        if name in changes:
            setattr(provider, column, changes.pop(name))
            provider.capabilities_pinned = True
    if "url" in changes:
        changes["url"] = await providers.check_url(services.settings, str(changes["url"]))
    for name, value in changes.items():
        setattr(provider, name, value)
    await tx.flush()
    out = _out(provider)
    await audit("provider.update", "provider", provider.id, before=before, after=out)
    return out


@admin_router.delete(
    "/providers/{provider_id}",
    dependencies=[require("providers:write")],
    summary="Disable a provider",
    description="Providers are never deleted (orders refer to them); this disables it.",
)
async def delete_provider(tx: Tx, audit: Audit, provider_id: PathId) -> ProviderOut:
    provider = await get_or_404(tx, Provider, provider_id, "Provider")
    before = _out(provider)
    provider.enabled = False
    await tx.flush()
    out = _out(provider)
    await audit("provider.disable", "provider", provider.id, before=before, after=out)
    return out


@admin_router.get(
    "/providers/{provider_id}/balance",
    dependencies=[require("providers:read")],
    summary="Read the provider's balance (live)",
)
async def provider_balance(services: ServicesDep, provider_id: PathId) -> BalanceOut:
    # No transaction is held open across the upstream call.
    async with services.db.session() as session:
        provider = await get_or_404(session, Provider, provider_id, "Provider")
    client = providers.client_for(provider, services.settings.secret_key, services.http)
    try:
        balance = await client.balance()
    except ProviderError as exc:
        raise HTTPException(status.HTTP_502_BAD_GATEWAY, f"provider error: {exc.message}") from exc
    async with services.db.transaction() as session:
        row = await get_or_404(session, Provider, provider_id, "Provider")
        await providers.record_balance(session, row, balance.balance)
    return BalanceOut(provider_id=provider_id, balance=balance.balance, currency=balance.currency)


@admin_router.post(
    "/providers/{provider_id}/import",
    dependencies=[require("providers:write")],
    summary="Import or refresh the provider's services with a markup",
    description=(
        "Creates our services for new provider services, refreshes mapped ones and disables "
        "services whose upstream vanished (existing orders continue). The markup becomes "
        "the pricing rule of the services it creates (and of those it reprices). An empty "
        "answer, or one that would remove more than CATALOG_MAX_REMOVED_SHARE of the "
        "services, is refused (502) and changes nothing."
    ),
)
async def import_provider_services(
    tx: Tx, audit: Audit, services: ServicesDep, provider_id: PathId, body: ImportIn
) -> ImportOut:
    # The provider is read and called before the transaction does any work.
    async with services.db.session() as session:
        provider = await get_or_404(session, Provider, provider_id, "Provider")
    client = providers.client_for(provider, services.settings.secret_key, services.http)
    providers.set_capabilities(provider, await providers.probe(client))
    if provider.webhook_secret_encrypted is None:
        await providers.register_webhook(
            provider, client, services.settings.secret_key, services.settings.public_url
        )
    try:
        remote = await client.services()
    except ProviderError as exc:
        raise HTTPException(status.HTTP_502_BAD_GATEWAY, f"provider error: {exc.message}") from exc
    provider = await get_or_404(tx, Provider, provider_id, "Provider")
    rule = PricingRule(MARKUP, body.multiplier, body.fixed, body.step)
    try:
        result = await catalog.import_services(
            tx, services.settings, provider, remote, rule, update_rates=body.update_rates
        )
    except catalog.CatalogRefused as exc:
        raise HTTPException(status.HTTP_502_BAD_GATEWAY, exc.message) from exc
    out = ImportOut(created=result.created, updated=result.updated, disabled=result.disabled)
    await audit(
        "provider.import",
        "provider",
        provider.id,
        after={**out.model_dump(), **body.model_dump(mode="json")},
    )
    return out


@admin_router.post(
    "/providers/{provider_id}/sync",
    dependencies=[require("providers:write")],
    summary="Sync the provider's catalog and balance now",
    description=(
        "What the scheduled sync does (every `sync_minutes`): records every difference as a "
        "catalog change, reprices services by their rule, disables removed, below-cost and "
        "retyped services, narrows min/max, and checks the balance threshold. A failed sync "
        "(an error, an empty answer, too many removals) changes nothing, is kept on the "
        "provider and alerted: `ok` is false and `error` says why."
    ),
)
async def sync_provider(
    tx: Tx, audit: Audit, services: ServicesDep, provider_id: PathId
) -> SyncOut:
    outcome = await catalog.sync_provider(
        services.db, services.http, services.settings, provider_id
    )
    out = SyncOut.model_validate(outcome)
    await audit("provider.sync", "provider", provider_id, after=out)
    return out


@admin_router.get(
    "/providers/{provider_id}/changes",
    dependencies=[require("providers:read")],
    summary="Catalog changes found by imports and syncs, newest first",
)
async def list_changes(
    session: Reader,
    provider_id: PathId,
    limit: Limit = 100,
    offset: Offset = 0,
    kind: Annotated[str | None, Query(description="new, removed, rate, min, max, …")] = None,
) -> list[ChangeOut]:
    await get_or_404(session, Provider, provider_id, "Provider")
    stmt = (
        select(CatalogChange)
        .where(CatalogChange.provider_id == provider_id)
        .order_by(CatalogChange.id.desc())
        .limit(limit)
        .offset(offset)
    )
    if kind is not None:
        stmt = stmt.where(CatalogChange.kind == kind)
    return [ChangeOut.model_validate(c) for c in await session.scalars(stmt)]
