"""Providers: registration, clients, and the balance they report (with its alert).
Their catalogs are compared with ours in app/providers/catalog.py."""

from __future__ import annotations

from decimal import Decimal

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from app.alerts import service as alerts
from app.db import utcnow
from app.money import plain
from app.providers.client import ProviderClient
from app.providers.crypto import decrypt_key, encrypt_key
from app.providers.models import Provider


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
