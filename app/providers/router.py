"""Operator endpoints for providers: registration, live balance, catalog import."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status

from app.catalog import service as catalog_service
from app.catalog.models import MARKUP
from app.catalog.pricing import PricingRule
from app.catalog.schemas import ServiceOut
from app.http.audit import Audit
from app.http.auth import require
from app.http.context import ServicesDep
from app.http.paths import Limit, Offset, PathId
from app.http.tx import Reader, Tx
from app.providers import catalog
from app.providers import service as providers
from app.providers.client import ProviderClient, ProviderError
from app.providers.models import Provider
from app.providers.schemas import (
    BalanceOut,
    ChangeOut,
    ImportIn,
    ImportOut,
    PricingIn,
    ProviderIn,
    ProviderOut,
    ProviderPatch,
    SyncOut,
)

admin_router = APIRouter(tags=["providers"])


def provider_out(provider: Provider) -> ProviderOut:
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


@admin_router.get("/providers", dependencies=[require("providers:read")], summary="List providers")
async def list_providers(session: Reader) -> list[ProviderOut]:
    return [provider_out(p) for p in await providers.list_providers(session)]


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
    out = provider_out(provider)
    await audit("provider.create", "provider", provider.id, after=out)
    return out


@admin_router.get(
    "/providers/{provider_id}", dependencies=[require("providers:read")], summary="Show a provider"
)
async def get_provider(session: Reader, provider_id: PathId) -> ProviderOut:
    return provider_out(await providers.get_provider(session, provider_id))


@admin_router.patch(
    "/providers/{provider_id}",
    dependencies=[require("providers:write")],
    summary="Change a provider",
)
async def patch_provider(
    tx: Tx, audit: Audit, services: ServicesDep, provider_id: PathId, body: ProviderPatch
) -> ProviderOut:
    provider = await providers.get_provider(tx, provider_id)
    before = provider_out(provider)
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    if "balance_threshold" in body.model_fields_set and body.balance_threshold is None:
        changes["balance_threshold"] = None  # null: no balance alert
    await providers.change_provider(tx, services.settings, provider, changes)
    out = provider_out(provider)
    await audit("provider.update", "provider", provider.id, before=before, after=out)
    return out


@admin_router.delete(
    "/providers/{provider_id}",
    dependencies=[require("providers:write")],
    summary="Disable a provider",
    description="Providers are never deleted (orders refer to them); this disables it.",
)
async def delete_provider(tx: Tx, audit: Audit, provider_id: PathId) -> ProviderOut:
    provider = await providers.get_provider(tx, provider_id)
    before = provider_out(provider)
    out = provider_out(await providers.disable_provider(tx, provider))
    await audit("provider.disable", "provider", provider.id, before=before, after=out)
    return out


@admin_router.get(
    "/providers/{provider_id}/balance",
    dependencies=[require("providers:read")],
    summary="Read the provider's balance (live)",
)
async def provider_balance(services: ServicesDep, provider_id: PathId) -> BalanceOut:
    try:
        balance = await providers.read_balance(
            services.db, services.http, services.settings.secret_key, provider_id
        )
    except ProviderError as exc:
        raise HTTPException(status.HTTP_502_BAD_GATEWAY, f"provider error: {exc.message}") from exc
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
        provider = await providers.get_provider(session, provider_id)
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
    provider = await providers.get_provider(tx, provider_id)
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
    await providers.get_provider(session, provider_id)
    found = await providers.catalog_changes(
        session, provider_id, kind=kind, limit=limit, offset=offset
    )
    return [ChangeOut.model_validate(c) for c in found]


@admin_router.post(
    "/services/pricing",
    dependencies=[require("catalog:write")],
    tags=["catalog"],
    summary="Give several services a markup pricing rule and reprice them now",
    description="Each service gets the rule (provider rate converted × multiplier + fixed, "
    "rounded up to step) and is priced by it at once, as the catalog sync does: one left "
    "below its cost is held off sale and alerted. Every service needs a provider rate "
    "(422 otherwise, nothing changed). Each service is audited on its own.",
)
async def reprice_services(
    tx: Tx, audit: Audit, services: ServicesDep, body: PricingIn
) -> list[ServiceOut]:
    rows = [await catalog_service.get_service(tx, i) for i in dict.fromkeys(body.service_ids)]
    before = [ServiceOut.model_validate(s) for s in rows]
    rule = PricingRule(MARKUP, body.multiplier, body.fixed, body.step)
    await catalog.apply_rule(tx, services.settings, rows, rule)
    out = []
    for old, row in zip(before, rows, strict=True):
        await tx.refresh(row)
        new = ServiceOut.model_validate(row)
        await audit("service.update", "service", row.id, before=old, after=new)
        out.append(new)
    return out
