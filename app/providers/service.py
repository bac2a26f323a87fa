"""Providers: registration, clients, balance, and importing their services with a markup."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_UP, Decimal

import httpx
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app import keyring
from app.catalog.models import SERVICE_TYPES, Category, Service
from app.db import utcnow
from app.providers.client import Capabilities, ProviderClient, ProviderError
from app.providers.crypto import decrypt_key, encrypt_key
from app.providers.models import WEBHOOK_PURPOSE, Provider


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


@dataclass(frozen=True)
class Markup:
    """Our rate = provider rate × multiplier + fixed (per 1000), rounded up to 5 digits."""

    multiplier: Decimal = Decimal("1.5")
    fixed: Decimal = Decimal(0)

    def apply(self, provider_rate: Decimal) -> Decimal:
        rate = provider_rate * self.multiplier + self.fixed
        return rate.quantize(Decimal("0.00001"), rounding=ROUND_UP)


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0
    disabled: int = 0


async def import_services(
    session: AsyncSession,
    provider: Provider,
    client: ProviderClient,
    markup: Markup,
    *,
    update_rates: bool = True,
) -> ImportResult:
    """Create or refresh our services from the provider's list; services whose upstream
    vanished are disabled (existing orders continue)."""
    remote = await client.services()
    result = ImportResult()
    existing = {
        s.provider_service_id: s
        for s in await session.scalars(select(Service).where(Service.provider_id == provider.id))
    }
    categories = {c.name: c for c in await session.scalars(select(Category))}
    seen: set[str] = set()
    for item in remote:
        if item.type not in SERVICE_TYPES:
            continue
        seen.add(item.service)
        category = categories.get(item.category)
        if category is None:
            category = Category(name=item.category or "Imported", position=len(categories))
            session.add(category)
            await session.flush()
            categories[category.name] = category
        min_q, max_q = max(1, item.min), max(max(1, item.min), item.max)
        service = existing.get(item.service)
        if service is None:
            session.add(
                Service(
                    category_id=category.id,
                    name=item.name,
                    type=item.type,
                    rate=markup.apply(item.rate),
                    min_quantity=min_q,
                    max_quantity=max_q,
                    refill=item.refill,
                    refill_days=30 if item.refill else 0,
                    cancel=item.cancel,
                    dripfeed=item.dripfeed,
                    provider_id=provider.id,
                    provider_service_id=item.service,
                    provider_rate=item.rate,
                    provider_dripfeed=item.dripfeed,
                )
            )
            result.created += 1
            continue
        service.provider_rate = item.rate
        service.min_quantity, service.max_quantity = min_q, max_q
        service.type = item.type
        service.provider_dripfeed = item.dripfeed
        if update_rates:
            service.rate = markup.apply(item.rate)
        result.updated += 1
    gone = [sid for sid, s in existing.items() if sid not in seen and s.enabled]
    if gone:
        await session.execute(
            update(Service)
            .where(Service.provider_id == provider.id, Service.provider_service_id.in_(gone))
            .values(enabled=False, updated_at=utcnow())
        )
        result.disabled = len(gone)
    await session.flush()
    return result
