"""Providers: registration, clients, and the balance they report (with its alert).
Their catalogs are compared with ours in app/providers/catalog.py."""

from __future__ import annotations

from decimal import Decimal

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app import keyring
from app.alerts import service as alerts
from app.db import utcnow
from app.money import plain
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
