"""A provider's catalog against ours: import, sync, and every difference recorded.

One comparison serves both the operator's import (`POST /providers/{id}/import`, with a
markup that becomes the rule of the services it creates or reprices) and the scheduled
sync (`sync_provider`, every `providers.sync_minutes`, or `POST /providers/{id}/sync`):
each difference between the provider's answer and the entry we last read from it
(`services.upstream`) is a `catalog_changes` row (new, removed, rate, min, max, type,
refill, cancel, dripfeed, name, category, with before and after).

What the sync does about them (each automatic change of a service is audited, actor
"sync"):
- rate: a `markup` service is repriced by its rule; a service whose rate is below its
  cost (the provider rate converted into the panel's currency) is repriced by its rule,
  or, under a `fixed` rule, disabled (`held` = below_cost) and alerted;
- min/max narrowed upstream narrow ours (a widening is left to the operator);
- refill/cancel withdrawn upstream are withdrawn from ours;
- type changed: the service is disabled until an operator confirms the new type;
- removed: disabled (`held` = removed); orders already sent keep being synced. It is put
  back on sale if it comes back;
- new: recorded, and with CATALOG_NEW_AS_DRAFTS imported as a disabled draft.

An answer that is an error, an empty list, or would remove more than
CATALOG_MAX_REMOVED_SHARE of the provider's services on sale is a failed sync: nothing
changes, the failure is kept on the provider and alerted, never read as "all removed".
The provider call is made outside any database transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.alerts import service as alerts
from app.audit.service import record as audit_record
from app.catalog import service as catalog_service
from app.catalog.models import MARKUP, SERVICE_TYPES, Category, Service
from app.catalog.pricing import PricingRule, cost_of
from app.catalog.upstream import HELD_TYPE
from app.currencies.service import conversion_rate
from app.db import Database, utcnow
from app.errors import DomainError, NotFound
from app.metrics import CATALOG_SYNCS
from app.providers.client import ProviderBalance, ProviderError, ProviderService
from app.providers.models import NEW, REMOVED, CatalogChange, Provider
from app.providers.service import client_for, record_balance
from app.settings import Settings

log = logging.getLogger(__name__)

SYNC_ACTOR = "sync"
# Why the sync took a service off sale (services.held).
HELD_REMOVED = "removed"
HELD_BELOW_COST = "below_cost"
HELD_DRAFT = "draft"


class CatalogRefused(DomainError):
    """The provider's answer cannot be trusted as its catalog: nothing was changed."""

    http_status = 422


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0
    disabled: int = 0
    changes: list[CatalogChange] = field(default_factory=list)


def upstream_entry(item: ProviderService) -> dict[str, Any]:
    """What we keep of a provider's service (JSON, money as a plain string)."""
    return {
        "rate": str(item.rate),
        "min": item.min,
        "max": item.max,
        "type": item.type,
        "refill": item.refill,
        "cancel": item.cancel,
        "dripfeed": item.dripfeed,
        "name": item.name,
        "category": item.category,
    }


def _held_entry(service: Service, category: str) -> dict[str, Any]:
    """Our fields in the shape of an upstream entry, for services imported before the
    entry was kept."""
    return {
        "rate": str(service.provider_rate) if service.provider_rate is not None else None,
        "min": service.min_quantity,
        "max": service.max_quantity,
        "type": service.type,
        "refill": service.refill,
        "cancel": service.cancel,
        "dripfeed": service.provider_dripfeed,
        "name": service.name,
        "category": category,
    }


def _differs(name: str, before: Any, after: Any) -> bool:
    if name == "rate" and before is not None and after is not None:
        return Decimal(str(before)) != Decimal(str(after))
    return bool(before != after)


def _set(service: Service, name: str, value: Any) -> None:
    """Assign only a different value (1.5 and 1.50000000 are the same rate), so that an
    unchanged service is not written, nor audited."""
    if getattr(service, name) != value:
        setattr(service, name, value)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def check_answer(
    remote: list[ProviderService], existing: Mapped, max_removed_share: Decimal
) -> None:
    """Refuse an answer that would empty or gut the catalog (CatalogRefused)."""
    if not remote:
        raise CatalogRefused("the provider answered an empty service list")
    seen = {item.service for item in remote}
    on_sale = [
        item_id
        for item_id, services in existing.items()
        for s in services
        if s.enabled or s.held == HELD_BELOW_COST
    ]
    removed = [item_id for item_id in on_sale if item_id not in seen]
    if on_sale and Decimal(len(removed)) > max_removed_share * len(on_sale):
        raise CatalogRefused(
            f"the answer would remove {len(removed)} of {len(on_sale)} services "
            f"(more than {max_removed_share * 100:f} %)"
        )


def snapshot(service: Service) -> dict[str, Any]:
    """What the audit log keeps of a service's automatic change."""
    return {
        "rate": str(service.rate),
        "provider_rate": _text(service.provider_rate),
        "min_quantity": service.min_quantity,
        "max_quantity": service.max_quantity,
        "type": service.type,
        "refill": service.refill,
        "cancel": service.cancel,
        "enabled": service.enabled,
        "held": service.held,
        "pending_type": service.pending_type,
        "pricing": service.pricing,
    }


class CatalogRun:
    """One comparison of a provider's answer with our services, applied in `session`."""

    def __init__(
        self,
        session: AsyncSession,
        settings: Settings,
        provider: Provider,
        *,
        new_rule: PricingRule | None,
        rule: PricingRule | None,
        actor: str | None,
    ) -> None:
        self.session = session
        self.settings = settings
        self.provider = provider
        # An import's markup: the rule of the services it creates (None: the sync, which
        # creates disabled drafts at most) and of those it reprices (None: each service
        # keeps its own rule).
        self.new_rule = new_rule
        self.rule = rule
        self.actor = actor  # who the automatic changes are audited as (None: not audited)
        self.result = ImportResult()
        self.fx = Decimal(1)
        self.categories: dict[str, Category] = {}
        self.category_names: dict[int, str] = {}

    def change(
        self, item_id: str, service: Service | None, kind: str, before: Any, after: Any
    ) -> None:
        row = CatalogChange(
            provider_id=self.provider.id,
            provider_service_id=item_id,
            service_id=service.id if service is not None else None,
            kind=kind,
            before=_text(before),
            after=_text(after),
            created_at=utcnow(),
        )
        self.session.add(row)
        self.result.changes.append(row)

    async def category(self, name: str) -> Category:
        found = self.categories.get(name)
        if found is None:
            found = Category(name=name or "Imported", position=len(self.categories))
            self.session.add(found)
            await self.session.flush()
            self.categories[found.name] = found
        return found

    async def run(
        self, remote: list[ProviderService], existing: Mapped, *, refresh: bool
    ) -> ImportResult:
        self.fx = await conversion_rate(self.session, self.settings, self.provider.currency)
        self.categories = {c.name: c for c in await self.session.scalars(select(Category))}
        self.category_names = {c.id: c.name for c in self.categories.values()}
        seen: set[str] = set()
        for item in remote:
            if item.type not in SERVICE_TYPES:
                continue
            if item.service in seen:
                continue  # listed twice: the first entry counts
            seen.add(item.service)
            mapped = existing.get(item.service, [])
            if not mapped:
                await self.new(item)
            for service in mapped:
                await self.known(service, item, refresh=refresh)
        for item_id, services in existing.items():
            if item_id not in seen:
                for service in services:
                    await self.removed(item_id, service)
        await self.session.flush()
        return self.result

    async def new(self, item: ProviderService) -> None:
        drafts = self.new_rule is None
        if drafts and not self.settings.catalog_new_as_drafts:
            self.change(item.service, None, NEW, None, item.name)
            return
        rule = self.new_rule or PricingRule()
        category = await self.category(item.category)
        min_q, max_q = max(1, item.min), max(max(1, item.min), item.max)
        service = Service(
            category_id=category.id,
            name=item.name,
            type=item.type,
            rate=rule.price(cost_of(item.rate, self.fx)),
            min_quantity=min_q,
            max_quantity=max_q,
            refill=item.refill,
            refill_days=30 if item.refill else 0,
            cancel=item.cancel,
            dripfeed=item.dripfeed,
            enabled=not drafts,
            held=HELD_DRAFT if drafts else None,
            provider_id=self.provider.id,
            provider_service_id=item.service,
            provider_rate=item.rate,
            provider_dripfeed=item.dripfeed,
            upstream=upstream_entry(item),
            **rule.columns(),
        )
        self.session.add(service)
        await self.session.flush()
        self.change(item.service, service, NEW, None, item.name)
        self.result.created += 1
        await self.audit(service, None, "service.sync_draft")

    async def known(self, service: Service, item: ProviderService, *, refresh: bool) -> None:
        before = snapshot(service)
        held = service.upstream or _held_entry(
            service, self.category_names.get(service.category_id, "")
        )
        now = upstream_entry(item)
        if held.get(REMOVED):
            self.change(item.service, service, NEW, None, item.name)  # it came back
        for name, after in now.items():
            if _differs(name, held.get(name), after):
                self.change(item.service, service, name, held.get(name), after)
        if service.upstream != now:
            service.upstream = now
        _set(service, "provider_rate", item.rate)
        _set(service, "provider_dripfeed", item.dripfeed)
        min_q, max_q = max(1, item.min), max(max(1, item.min), item.max)
        if refresh:  # the operator's import takes the provider's entry as it is
            _set(service, "min_quantity", min_q)
            _set(service, "max_quantity", max_q)
            _set(service, "type", item.type)
        else:
            self.narrow(service, min_q, max_q)
            if not item.refill:
                service.refill = False
            if not item.cancel:
                service.cancel = False
        if item.type != service.type:
            await self.hold(service, HELD_TYPE, pending_type=item.type)
        elif service.held == HELD_TYPE:  # back to our type: nothing left to confirm
            await self.release(service, alerts.TYPE_CHANGED)
            service.pending_type = None
        if service.held == HELD_REMOVED:  # it came back: on sale again
            await self.release(service, alerts.SERVICE_REMOVED)
        if self.rule is not None:
            for name, value in self.rule.columns().items():
                _set(service, name, value)
        await self.price(service)
        self.result.updated += 1
        await self.audit(service, before, "service.sync")

    @staticmethod
    def narrow(service: Service, min_q: int, max_q: int) -> None:
        low, high = max(service.min_quantity, min_q), min(service.max_quantity, max_q)
        if low > high:
            low, high = min_q, max_q  # no overlap left: the provider's range
        _set(service, "min_quantity", low)
        _set(service, "max_quantity", high)

    async def price(self, service: Service) -> None:
        """Follow the rule; never leave the service on sale below its cost."""
        if service.provider_rate is None:
            return
        cost = cost_of(service.provider_rate, self.fx)
        rule = PricingRule.of(service)
        if rule.mode == MARKUP:
            _set(service, "rate", rule.price(cost))
        if service.rate >= cost:
            if service.held == HELD_BELOW_COST:
                await self.release(service, alerts.BELOW_COST)
            return
        if not service.enabled:
            return  # not on sale (by the operator, or held for another reason)
        await self.hold(service, HELD_BELOW_COST)
        await alerts.raise_alert(
            self.session,
            alerts.BELOW_COST,
            "service",
            service.id,
            f"service {service.id} would sell below cost: disabled",
            detail={"rate": str(service.rate), "cost": str(cost), "pricing": rule.mode},
            once=True,
        )

    async def release(self, service: Service, alert: str) -> None:
        """The reason the sync took the service off sale is gone: back on sale."""
        service.held = None
        service.enabled = service.deleted_at is None
        await alerts.resolve(self.session, alert, "service", service.id)

    async def hold(self, service: Service, reason: str, *, pending_type: str | None = None) -> None:
        service.enabled = False
        service.held = reason
        if pending_type is not None:
            service.pending_type = pending_type
            await alerts.raise_alert(
                self.session,
                alerts.TYPE_CHANGED,
                "service",
                service.id,
                f"service {service.id} changed type upstream to {pending_type}: disabled "
                "until an operator confirms",
                detail={"type": service.type, "pending_type": pending_type},
                once=True,
            )

    async def removed(self, item_id: str, service: Service) -> None:
        held = service.upstream or _held_entry(
            service, self.category_names.get(service.category_id, "")
        )
        if held.get(REMOVED):
            return  # recorded already
        before = snapshot(service)
        self.change(item_id, service, REMOVED, service.name, None)
        service.upstream = {**held, REMOVED: True}
        if not service.enabled:
            await self.audit(service, before, "service.sync")
            return  # off sale already (by the operator or the sync): it stays as it is
        service.enabled = False
        service.held = HELD_REMOVED
        self.result.disabled += 1
        await alerts.raise_alert(
            self.session,
            alerts.SERVICE_REMOVED,
            "service",
            service.id,
            f"service {service.id} was removed upstream: disabled",
            detail={"provider_id": self.provider.id, "provider_service_id": item_id},
            once=True,
        )
        await self.audit(service, before, "service.sync")

    async def audit(self, service: Service, before: dict[str, Any] | None, action: str) -> None:
        after = snapshot(service)
        if self.actor is None or before == after:
            return
        await audit_record(
            self.session,
            actor=self.actor,
            action=action,
            entity="service",
            entity_id=service.id,
            before=before,
            after=after,
        )


Mapped = dict[str, list[Service]]  # our services by the provider's service id


async def reprice(session: AsyncSession, settings: Settings, service: Service) -> None:
    """Apply the service's pricing rule now, as the next sync would (the operator changed
    the rule, the provider's rate or the fixed rate): a markup service follows its cost, and
    no rule leaves a service on sale below it (held and alerted; released when covered).
    NoConversionRate when the provider's currency has no rate."""
    if service.provider_id is None or service.provider_rate is None:
        return
    provider = await session.get(Provider, service.provider_id)
    if provider is None:
        return
    run = CatalogRun(session, settings, provider, new_rule=None, rule=None, actor=None)
    run.fx = await conversion_rate(session, settings, provider.currency)
    await run.price(service)


async def change_service(
    session: AsyncSession, settings: Settings, service: Service, changes: Mapping[str, Any]
) -> Service:
    """An operator's change to a service (the catalog's rules), its pricing rule applied at
    once (`reprice`), not at the next catalog sync: every front end changes a service here."""
    await catalog_service.change_service(session, service, changes)
    await reprice(session, settings, service)
    await session.flush()
    await session.refresh(service)
    return service


async def mapped_services(session: AsyncSession, provider_id: int) -> Mapped:
    """Our services mapped to the provider (several may share one of its services)."""
    mapped: Mapped = {}
    for s in await session.scalars(
        select(Service)
        .where(
            Service.provider_id == provider_id,
            Service.provider_service_id.is_not(None),
            Service.deleted_at.is_(None),
        )
        .order_by(Service.id)
        .with_for_update()
    ):
        mapped.setdefault(s.provider_service_id or "", []).append(s)
    return mapped


async def import_services(
    session: AsyncSession,
    settings: Settings,
    provider: Provider,
    remote: list[ProviderService],
    rule: PricingRule,
    *,
    update_rates: bool = True,
) -> ImportResult:
    """The operator's import: create our services for new provider services with `rule`,
    refresh mapped ones (repriced by `rule` when `update_rates`), disable vanished ones."""
    existing = await mapped_services(session, provider.id)
    check_answer(remote, existing, settings.catalog_max_removed_share)
    run = CatalogRun(
        session,
        settings,
        provider,
        new_rule=rule,
        rule=rule if update_rates else None,
        actor=None,  # the operator's import is audited once, by its route
    )
    return await run.run(remote, existing, refresh=True)


class MarkupNeedsProvider(DomainError):
    http_status = 422

    def __init__(self, service_id: int) -> None:
        super().__init__(f"Service {service_id} has no provider rate: a markup needs one")


async def apply_rule(
    session: AsyncSession, settings: Settings, services: list[Service], rule: PricingRule
) -> None:
    """Give each service the pricing rule and price it by the rule now, as the sync
    would: a markup from its provider rate converted at today's rate, and a service left
    below its cost held off sale and alerted. A markup needs a provider rate."""
    if rule.mode == MARKUP:
        for service in services:
            if service.provider_id is None or service.provider_rate is None:
                raise MarkupNeedsProvider(service.id)
    runs: dict[int, CatalogRun] = {}
    for service in services:
        for name, value in rule.columns().items():
            setattr(service, name, value)
        if service.provider_id is None:
            continue
        run = runs.get(service.provider_id)
        if run is None:
            provider = await session.get(Provider, service.provider_id)
            assert provider is not None  # a foreign key
            run = CatalogRun(session, settings, provider, new_rule=None, rule=None, actor=None)
            run.fx = await conversion_rate(session, settings, provider.currency)
            runs[service.provider_id] = run
        await run.price(service)
    await session.flush()


@dataclass
class SyncOutcome:
    provider_id: int
    ok: bool
    error: str | None = None
    created: int = 0
    updated: int = 0
    disabled: int = 0
    changes: int = 0
    balance: Decimal | None = None


async def sync_provider(
    db: Database, http: httpx.AsyncClient, settings: Settings, provider_id: int
) -> SyncOutcome:
    """Read the provider's catalog and balance (no transaction open), then apply them."""
    async with db.session() as session:
        provider = await session.get(Provider, provider_id)
    if provider is None:
        raise NotFound("Provider not found")
    client = client_for(provider, settings.secret_key, http)
    remote: list[ProviderService] | None = None
    error: str | None = None
    try:
        remote = await client.services()
    except ProviderError as exc:
        error = f"provider error: {exc.message}"
    balance: ProviderBalance | None = None
    try:
        balance = await client.balance()
    except ProviderError as exc:
        log.warning(
            "provider balance unavailable at sync",
            extra={"provider_id": provider_id, "error": exc.message},
        )
    async with db.transaction() as session:
        row = await session.get(Provider, provider_id, with_for_update=True)
        assert row is not None
        outcome = SyncOutcome(provider_id, ok=False)
        if balance is not None:
            await record_balance(session, row, balance.balance)
            outcome.balance = balance.balance
        row.last_sync_at = utcnow()
        if remote is not None:
            error = await _apply(session, settings, row, remote, outcome)
        if error is not None:
            await _failed(session, row, error)
            outcome.error = error
        else:
            row.last_sync_error = None
            outcome.ok = True
            await alerts.resolve(session, alerts.SYNC_FAILED, "provider", provider_id)
    CATALOG_SYNCS.labels("ok" if outcome.ok else "failed").inc()
    return outcome


async def _apply(
    session: AsyncSession,
    settings: Settings,
    provider: Provider,
    remote: list[ProviderService],
    outcome: SyncOutcome,
) -> str | None:
    """Compare and apply in a savepoint; the reason it failed, if it did."""
    try:
        async with session.begin_nested():
            existing = await mapped_services(session, provider.id)
            check_answer(remote, existing, settings.catalog_max_removed_share)
            run = CatalogRun(
                session, settings, provider, new_rule=None, rule=None, actor=SYNC_ACTOR
            )
            result = await run.run(remote, existing, refresh=False)
    except DomainError as exc:
        return exc.message
    outcome.created, outcome.updated = result.created, result.updated
    outcome.disabled, outcome.changes = result.disabled, len(result.changes)
    return None


async def _failed(session: AsyncSession, provider: Provider, error: str) -> None:
    provider.last_sync_error = error[:1000]
    log.warning("catalog sync failed", extra={"provider_id": provider.id, "error": error})
    await alerts.raise_alert(
        session,
        alerts.SYNC_FAILED,
        "provider",
        provider.id,
        f"catalog sync of provider {provider.id} failed: {error}",
        detail={"error": error[:500]},
        once=True,
    )


async def due_providers(db: Database) -> list[int]:
    """Enabled providers whose catalog sync is due (sync_minutes > 0)."""
    now = utcnow()
    async with db.session() as session:
        providers = await session.scalars(
            select(Provider).where(Provider.enabled, Provider.sync_minutes > 0)
        )
        return [
            p.id
            for p in providers
            if p.last_sync_at is None
            or (now - p.last_sync_at).total_seconds() >= p.sync_minutes * 60 - 5
        ]


__all__ = [
    "CatalogRefused",
    "ImportResult",
    "SyncOutcome",
    "due_providers",
    "import_services",
    "reprice",
    "sync_provider",
]
