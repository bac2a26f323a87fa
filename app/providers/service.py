"""Providers: registration, an operator's changes, clients, and the balance they report
(with its alert). Their catalogs are compared with ours in app/providers/catalog.py. A
provider's URL reaches only public addresses unless PROVIDER_ALLOW_PRIVATE (`check_url`
when it is set, the guarded client at every call)."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app import keyring, netguard
from app.alerts import service as alerts
from app.db import Database, utcnow
from app.errors import DomainError, NotFound
from app.money import plain
from app.providers.client import Capabilities, ProviderBalance, ProviderClient, ProviderError
from app.providers.crypto import decrypt_key, encrypt_key
from app.providers.models import WEBHOOK_PURPOSE, CatalogChange, Provider
from app.settings import Settings


class ProviderUrlRefused(DomainError):
    http_status = 422
    message = "Incorrect provider URL"


class ProviderUrlPrivate(ProviderUrlRefused):
    http_status = 422
    message = (
        "Provider URL must not point to a private or loopback address "
        "(set PROVIDER_ALLOW_PRIVATE=true for a provider on your own network)"
    )


async def check_url(settings: Settings, url: str) -> str:
    """A provider URL the panel may call (app/netguard.py): http(s), and every address its
    host resolves to public unless PROVIDER_ALLOW_PRIVATE. Checked when it is set; every
    call is guarded again where it connects (`build_http_client`)."""
    policy = netguard.AddressPolicy(allow_private=settings.provider_allow_private)
    try:
        return await netguard.check_url(url, policy)
    except netguard.UrlRefused as exc:
        raise ProviderUrlRefused() from exc
    except netguard.AddressRefused as exc:
        raise (ProviderUrlPrivate() if exc.address else ProviderUrlRefused()) from exc


async def create_provider(
    session: AsyncSession,
    *,
    secret: str,
    name: str,
    url: str,
    api_key: str,
    currency: str = "USD",
    enabled: bool = True,
) -> Provider:
    provider = Provider(
        name=name,
        url=url,
        api_key_encrypted=encrypt_key(secret, api_key),
        currency=currency,
        enabled=enabled,
    )
    session.add(provider)
    await session.flush()
    return provider


async def probe(client: ProviderClient) -> Capabilities:
    """What the provider speaks beyond the standard protocol; none when it cannot say."""
    try:
        return await client.capabilities()
    except ProviderError:
        return Capabilities()


def set_capabilities(provider: Provider, found: Capabilities) -> None:
    """Record a probe's answer, unless the operator pinned the capabilities."""
    provider.capabilities_checked_at = utcnow()
    if provider.capabilities_pinned:
        return
    provider.cap_request_id = found.request_id
    provider.cap_status_by_request_id = found.status_by_request_id
    provider.cap_webhooks = found.webhooks


async def register_webhook(
    provider: Provider, client: ProviderClient, secret_keyring: str, public_url: str
) -> bool:
    """When the provider sends status webhooks, register ours with it and keep the signing
    secret (encrypted); True when registered. A failure leaves polling as it was."""
    if not provider.cap_webhooks or not public_url:
        return False
    url = f"{public_url.rstrip('/')}/webhooks/provider/{provider.id}"
    try:
        secret = await client.set_webhook(url)
    except ProviderError:
        return False
    provider.webhook_secret_encrypted = keyring.encrypt(secret_keyring, WEBHOOK_PURPOSE, secret)
    return True


def webhook_secret(provider: Provider, secret_keyring: str) -> str | None:
    if provider.webhook_secret_encrypted is None:
        return None
    return keyring.decrypt(secret_keyring, WEBHOOK_PURPOSE, provider.webhook_secret_encrypted)


def client_for(provider: Provider, secret: str, http: httpx.AsyncClient) -> ProviderClient:
    return ProviderClient(provider.url, decrypt_key(secret, provider.api_key_encrypted), http)


async def record_balance(session: AsyncSession, provider: Provider, balance: Decimal) -> None:
    """Keep the balance just read; below the provider's threshold, one alert until it
    has recovered (at or above the threshold), then the next fall alerts again."""
    provider.last_balance = balance
    provider.last_balance_at = utcnow()
    threshold = provider.balance_threshold
    if threshold is not None and balance < threshold:
        await alerts.raise_alert(
            session,
            alerts.BALANCE_LOW,
            "provider",
            provider.id,
            f"provider {provider.id} balance {plain(balance)} {provider.currency} is below "
            f"its threshold {plain(threshold)}",
            detail={"balance": plain(balance), "threshold": plain(threshold)},
            once=True,
        )
    else:
        await alerts.resolve(session, alerts.BALANCE_LOW, "provider", provider.id)


async def list_providers(session: AsyncSession) -> list[Provider]:
    return list(await session.scalars(select(Provider).order_by(Provider.id)))


class ProviderNotFound(NotFound):
    http_status = 404
    message = "Provider not found"


async def get_provider(session: AsyncSession, provider_id: int) -> Provider:
    provider = await session.get(Provider, provider_id)
    if provider is None:
        raise ProviderNotFound()
    return provider


# What the operator calls a capability → its column. Setting one pins them all, so the
# probe at the next catalog import no longer changes them.
CAPABILITY_FIELDS = {
    "request_id": "cap_request_id",
    "status_by_request_id": "cap_status_by_request_id",
    "webhooks": "cap_webhooks",
}


async def change_provider(
    session: AsyncSession, settings: Settings, provider: Provider, changes: Mapping[str, Any]
) -> Provider:
    """Apply an operator's change: a new URL is checked (`check_url`), the API key is stored
    encrypted, a capability set by hand is pinned, a None `balance_threshold` removes the
    balance alert."""
    if "url" in changes:
        changes = {**changes, "url": await check_url(settings, str(changes["url"]))}
    for name, value in changes.items():
        if name == "api_key":
            provider.api_key_encrypted = encrypt_key(settings.secret_key, value)
        elif name in CAPABILITY_FIELDS:
            setattr(provider, CAPABILITY_FIELDS[name], value)
            provider.capabilities_pinned = True
        else:
            setattr(provider, name, str(value) if name == "url" else value)
    await session.flush()
    return provider


async def disable_provider(session: AsyncSession, provider: Provider) -> Provider:
    """Providers are never deleted (orders refer to them): disabled."""
    provider.enabled = False
    await session.flush()
    return provider


async def read_balance(
    db: Database, http: httpx.AsyncClient, secret: str, provider_id: int
) -> ProviderBalance:
    """Ask the provider for its balance now and keep it (with its alert). No transaction
    is held open across the call; ProviderError when the provider does not answer it."""
    async with db.session() as session:
        provider = await get_provider(session, provider_id)
    balance = await client_for(provider, secret, http).balance()
    async with db.transaction() as session:
        await record_balance(session, await get_provider(session, provider_id), balance.balance)
    return balance


async def catalog_changes(
    session: AsyncSession, provider_id: int, *, kind: str | None, limit: int, offset: int
) -> list[CatalogChange]:
    """What imports and syncs found different at the provider, newest first."""
    stmt = (
        select(CatalogChange)
        .where(CatalogChange.provider_id == provider_id)
        .order_by(CatalogChange.id.desc())
        .limit(limit)
        .offset(offset)
    )
    if kind is not None:
        stmt = stmt.where(CatalogChange.kind == kind)
    return list(await session.scalars(stmt))
