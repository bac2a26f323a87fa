"""Relaying orders upstream without ever sending one twice by accident.

Intent is recorded and committed before the HTTP call (`queued → sending`), the outcome
after it. A request that surely never left is retried later; one whose outcome is unknown
goes to the review queue; a crash in between leaves `sending`, which the sweeper moves to
review. Upstream calls never run inside a database transaction.

Providers that take request ids (SPEC §4, `Provider.cap_request_id`): every `add` carries
the order's own request id (`upstream_request_id`, derived from the order and kept once
set), so sending it again can only answer the same provider order. For them an unknown
outcome, or an attempt a dead worker left `sending`, is sent again (with backoff) instead
of going to review, and orders in review that carry a request id are requeued by the
sweeper. Providers without it keep the rule above.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any, Protocol, TypeVar, cast

import httpx
from sqlalchemy import (
    ColumnElement,
    Row,
    Select,
    Table,
    bindparam,
    case,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog.models import Service, ServiceBackup
from app.currencies.service import NoConversionRate, conversion_rate
from app.db import Database, utcnow
from app.metrics import PROVIDER_ALERTS, RELAY_OUTCOMES
from app.orders import anomalies
from app.orders.models import (
    CANCELED,
    PENDING,
    UP_QUEUED,
    UP_REJECTED,
    UP_REVIEW,
    UP_SENDING,
    UP_SENT,
    Order,
    UpstreamEvent,
)
from app.orders.service import lock_owners, refresh_parent, refund
from app.orders.sql import SENT_SQL, sent_params
from app.orders.types import cost_for, handler_for
from app.providers.client import (
    Lane,
    ProviderClient,
    ProviderError,
    ProviderPermanent,
    ProviderTransient,
    ProviderUnknownOutcome,
    read_upstream_id,
    shown,
)
from app.providers.crypto import decrypt_key
from app.providers.models import Provider
from app.providers.service import client_for
from app.settings import Settings

log = logging.getLogger(__name__)

FUNDS_ERROR = "not enough funds"


@dataclass(frozen=True)
class RelayOutcome:
    order_id: int
    outcome: str  # sent, retry, review, rejected, gave_up, skipped, failover
    cancel_due: bool = False


def backoff(settings: Settings, attempts: int) -> timedelta:
    seconds = settings.relay_retry_base_seconds * (2 ** max(0, attempts - 1))
    return timedelta(seconds=min(seconds, 3600))


class RelayedOrder(Protocol):
    """What relaying needs of an order: a full Order or a claimed row."""

    @property
    def type(self) -> str: ...
    @property
    def link(self) -> str: ...
    @property
    def params(self) -> dict[str, Any]: ...
    @property
    def provider_service_id(self) -> str | None: ...


def upstream_fields(order: RelayedOrder) -> dict[str, str]:
    fields = {"service": order.provider_service_id or "", "link": order.link}
    fields.update(handler_for(order.type).upstream_fields(order.params))
    if order.link == "":
        fields.pop("link")
    return fields


@dataclass(frozen=True)
class Claim:
    """An order whose attempt is recorded and committed (`sending`): it may now leave."""

    id: int
    type: str
    link: str
    params: dict[str, Any]
    quantity: int
    service_id: int
    parent_id: int | None
    provider_id: int
    provider_service_id: str | None
    attempts: int
    created_at: datetime
    upstream_request_id: str | None
    provider: Provider


def request_id_for(order_id: int, created_at: datetime) -> str:
    """Our request id for an order's `add` upstream: its id and creation instant, so ids
    never repeat, even across a database rebuilt from scratch."""
    return f"o{order_id}.{int(created_at.timestamp() * 1_000_000):x}"


def outgoing_fields(claim: Claim) -> dict[str, str]:
    """What an attempt sends: the order's fields, and its request id once it has one."""
    fields = upstream_fields(claim)
    if claim.upstream_request_id is not None:
        fields["request_id"] = claim.upstream_request_id
    return fields


CLAIM_COLUMNS = (
    Order.id,
    Order.type,
    Order.link,
    Order.params,
    Order.quantity,
    Order.service_id,
    Order.parent_id,
    Order.provider_id,
    Order.provider_service_id,
    Order.attempts,
    Order.created_at,
    Order.upstream_request_id,
)


def _due_now(now: datetime) -> tuple[ColumnElement[bool], ...]:
    return (
        Order.upstream_state == UP_QUEUED,
        Order.status == PENDING,
        Order.next_attempt_at <= now,
    )


def _within_rooms(
    now: datetime, limit: int, rooms: Mapping[int, int], per_provider: int
) -> Select[tuple[int]]:
    """The due orders to claim, oldest first, at most `rooms[p]` (`per_provider` for a
    provider not listed) of each provider: a provider whose calls fill its room is left
    out, so a slow one never takes the slots of the others."""
    full = [provider_id for provider_id, room in rooms.items() if room <= 0]
    conditions = [*_due_now(now)]
    if full:
        conditions.append(or_(Order.provider_id.is_(None), Order.provider_id.not_in(full)))
    rank = (
        func.row_number()
        .over(partition_by=Order.provider_id, order_by=(Order.next_attempt_at, Order.id))
        .label("rank")
    )
    ranked = select(Order.id, Order.provider_id, Order.next_attempt_at, rank).where(*conditions)
    candidates = ranked.subquery("candidates")
    room = (
        case(
            {p: r for p, r in rooms.items() if r > 0},
            value=candidates.c.provider_id,
            else_=per_provider,
        )
        if any(r > 0 for r in rooms.values())
        else literal(per_provider)
    )
    return (
        select(candidates.c.id)
        .where(candidates.c.rank <= room)
        .order_by(candidates.c.next_attempt_at)
        .limit(limit)
    )


async def claim_due(
    db: Database,
    limit: int,
    *,
    order_id: int | None = None,
    rooms: Mapping[int, int] | None = None,
    per_provider: int | None = None,
) -> list[Claim]:
    """queued → sending for up to `limit` due orders in one transaction, their attempts
    recorded, committed before anything leaves. Rows another worker is claiming right now
    are skipped, so concurrent claims never take the same order. With `per_provider`, at
    most that many of one provider (`rooms[p]` for a provider with calls in flight)."""
    now = utcnow()
    due = select(Order.id).where(*_due_now(now))
    if order_id is not None:
        due = due.where(Order.id == order_id)
    if per_provider is not None and limit > min([per_provider, *(rooms or {}).values()]):
        # One provider alone could take more than its room: choose within the rooms.
        due = due.where(Order.id.in_(_within_rooms(now, limit, rooms or {}, per_provider)))
    due_cte = (
        due.order_by(Order.next_attempt_at).limit(limit).with_for_update(skip_locked=True)
    ).cte("due")
    async with db.transaction() as session:
        rows = (
            await session.execute(
                update(Order)
                .where(Order.id == due_cte.c.id)
                .values(
                    upstream_state=UP_SENDING,
                    sending_since=now,
                    attempts=Order.attempts + 1,
                )
                .returning(*CLAIM_COLUMNS)
            )
        ).all()
        if not rows:
            return []
        provider_ids = {row.provider_id for row in rows if row.provider_id is not None}
        providers = {
            p.id: p
            for p in await session.scalars(select(Provider).where(Provider.id.in_(provider_ids)))
        }
        claims: list[Claim] = []
        parked: list[int] = []
        named: dict[int, str] = {}  # orders given their request id by this claim
        for row in rows:
            provider = providers.get(row.provider_id) if row.provider_id is not None else None
            if provider is None or not provider.enabled:
                parked.append(row.id)
                continue
            claim = Claim(**row._asdict(), provider=provider)
            if claim.upstream_request_id is None and provider.cap_request_id:
                named[claim.id] = request_id_for(claim.id, claim.created_at)
                claim = dataclasses.replace(claim, upstream_request_id=named[claim.id])
            claims.append(claim)
        if named:
            table = cast(Table, Order.__table__)
            await session.execute(
                update(table)
                .where(table.c.id == bindparam("oid"), table.c.upstream_request_id.is_(None))
                .values(upstream_request_id=bindparam("rid")),
                [{"oid": i, "rid": r} for i, r in named.items()],
            )
        if parked:
            # Nothing can leave: put them back to wait for the operator to fix the mapping.
            await session.execute(
                update(Order)
                .where(Order.id.in_(parked))
                .values(
                    upstream_state=UP_QUEUED,
                    sending_since=None,
                    next_attempt_at=now + timedelta(minutes=5),
                    last_error="provider missing or disabled",
                )
            )
        if claims:
            await session.execute(
                insert(UpstreamEvent),
                [
                    {
                        "order_id": claim.id,
                        "action": "add",
                        "outcome": "attempt",
                        "detail": {
                            "attempt": claim.attempts,
                            "provider_id": claim.provider_id,
                            # What leaves, as sent (the key aside): the operator matches
                            # an order in review against the provider's panel with it.
                            "request": {"action": "add", **outgoing_fields(claim)},
                        },
                    }
                    for claim in claims
                ],
            )
    return claims


Answer = str | ProviderError  # the provider's order id, or why there is none


async def send(claim: Claim, client: ProviderClient) -> Answer:
    try:
        return await client.add(outgoing_fields(claim))
    except ProviderError as exc:
        return exc
    except Exception as exc:  # whatever it was, the outcome is unknown
        log.exception("unexpected error relaying an order", extra={"order_id": claim.id})
        return ProviderUnknownOutcome(f"add: {type(exc).__name__}")


async def record(
    db: Database, settings: Settings, answers: Sequence[tuple[Claim, Answer]]
) -> list[RelayOutcome]:
    """Record what came back, each answer touching only its own order.

    Accepted orders are recorded together in one transaction, their ids checked first: a
    value that is not an order id (the client refuses them; this is checked again) is an
    unknown outcome, and an id another order of the provider holds is held for the
    operator (`orders.anomalies.hold_duplicate`). Should the batched statement still fail,
    each order is recorded in its own savepoint, and one that cannot be is an unknown
    outcome. Failures (rare) are recorded one by one through their own rules; one whose
    record fails is left `sending` for the sweeper."""
    sent: list[tuple[Claim, str]] = []
    failed: list[tuple[Claim, ProviderError]] = []
    for claim, answer in answers:
        if isinstance(answer, ProviderError):
            failed.append((claim, answer))
        elif (order_id := read_upstream_id(answer)) is None:
            failed.append(
                (claim, ProviderUnknownOutcome(f"add: unreadable order id {shown(answer)}"))
            )
        else:
            sent.append((claim, order_id))
    outcomes: list[RelayOutcome] = []
    if sent:
        recorded, unrecorded = await _record_sent(db, settings, sent)
        outcomes.extend(recorded)
        failed.extend(unrecorded)
    for claim, exc in failed:
        outcomes.append(await _record_failure_alone(db, settings, claim, exc))
    return outcomes


async def _record_sent(
    db: Database, settings: Settings, sent: Sequence[tuple[Claim, str]]
) -> tuple[list[RelayOutcome], list[tuple[Claim, ProviderError]]]:
    """The accepted orders' outcomes, and those that could not be recorded (as unknown
    outcomes). The earlier order keeps an id the provider gave twice."""
    unrecorded: list[tuple[Claim, ProviderError]] = []
    async with db.transaction() as session:
        fresh = await _hold_duplicates(session, sorted(sent, key=lambda item: item[0].id))
        costs = await upstream_costs(session, settings, [(c, c.provider) for c, _ in fresh.bind])
        rows, failed = await _bind(session, fresh.bind, costs)
        for (claim, provider_order_id), reason in [*fresh.unheld, *failed]:
            if await _held_after_failure(session, claim, provider_order_id):
                fresh.held.append(claim)
            else:
                message = f"add: accepted as {provider_order_id}, not recorded: {reason}"
                unrecorded.append((claim, ProviderUnknownOutcome(message[:1000])))
        not_bound = {claim.id for (claim, _), _ in failed}  # (the unheld were never bound)
        bound = [(claim, oid) for claim, oid in fresh.bind if claim.id not in not_bound]
        cancel_due = {row.id for row in rows if row.cancel_state == "requested"}
        for parent_id in sorted({c.parent_id for c, _ in bound if c.parent_id is not None}):
            await _in_savepoint(session, partial(refresh_parent, session, parent_id))
    RELAY_OUTCOMES.labels("sent").inc(len(bound))
    RELAY_OUTCOMES.labels("review").inc(len(fresh.held))
    outcomes = [RelayOutcome(claim.id, "review") for claim in fresh.held]
    outcomes.extend(RelayOutcome(claim.id, "skipped") for claim in fresh.moved_on)
    for claim, provider_order_id in bound:
        log.info(
            "order relayed",
            extra={
                "order_id": claim.id,
                "provider_id": claim.provider.id,
                "provider_order_id": provider_order_id,
            },
        )
    outcomes.extend(
        RelayOutcome(claim.id, "sent", cancel_due=claim.id in cancel_due) for claim, _ in bound
    )
    return outcomes, unrecorded


@dataclass
class Fresh:
    """Accepted orders to bind to their upstream ids, and those held as duplicates."""

    bind: list[tuple[Claim, str]] = field(default_factory=list)
    held: list[Claim] = field(default_factory=list)
    moved_on: list[Claim] = field(default_factory=list)  # neither sending nor in review now
    unheld: list[tuple[tuple[Claim, str], str]] = field(default_factory=list)  # and why


async def _hold_duplicates(session: AsyncSession, sent: Sequence[tuple[Claim, str]]) -> Fresh:
    """Split off the orders answered with an upstream id another order of the same
    provider holds (already, or earlier in this batch): those are held for the operator."""
    taken = await anomalies.holders(session, {(c.provider_id, oid) for c, oid in sent})
    fresh = Fresh()
    for claim, provider_order_id in sent:
        key = (claim.provider_id, provider_order_id)
        holder = taken.setdefault(key, claim.id)
        if holder == claim.id:
            fresh.bind.append((claim, provider_order_id))
            continue
        hold = partial(
            anomalies.hold_duplicate,
            session,
            claim.id,
            claim.provider_id,
            provider_order_id,
            holder,
        )
        try:
            held = await _in_savepoint(session, hold)
        except DBAPIError as exc:
            fresh.unheld.append(((claim, provider_order_id), _reason(exc)))
            continue
        (fresh.held if held else fresh.moved_on).append(claim)
    return fresh


Bind = tuple[Claim, str]


async def _bind(
    session: AsyncSession, sent: Sequence[Bind], costs: Mapping[int, UpstreamCost]
) -> tuple[list[Row[Any]], list[tuple[Bind, str]]]:
    """SENT_SQL for the whole batch in one savepoint; should it fail, order by order,
    each in its own. The rows it returned, and the orders it could not bind (why)."""

    async def bind(part: Sequence[Bind]) -> list[Row[Any]]:
        params = sent_params([(claim.id, oid) for claim, oid in part], costs)
        return list((await session.execute(SENT_SQL, params)).all())

    if not sent:
        return [], []
    try:
        return await _in_savepoint(session, partial(bind, sent)), []
    except DBAPIError as exc:
        if len(sent) == 1:
            return [], [(sent[0], _reason(exc))]
        log.warning(
            "relay: accepted orders not recorded together, recorded one by one: %s",
            _reason(exc),
            extra={"order_ids": [claim.id for claim, _ in sent]},
        )
    rows: list[Row[Any]] = []
    failed: list[tuple[Bind, str]] = []
    for item in sent:
        try:
            rows.extend(await _in_savepoint(session, partial(bind, [item])))
        except DBAPIError as exc:
            failed.append((item, _reason(exc)))
    return rows, failed


async def _held_after_failure(session: AsyncSession, claim: Claim, provider_order_id: str) -> bool:
    """An order whose binding failed because another order took its id meanwhile (the
    unique index refused it) is held as a duplicate."""
    key = (claim.provider_id, provider_order_id)
    holder = (await anomalies.holders(session, {key})).get(key)
    if holder is None or holder == claim.id:
        return False
    return await _in_savepoint(
        session,
        partial(
            anomalies.hold_duplicate,
            session,
            claim.id,
            claim.provider_id,
            provider_order_id,
            holder,
        ),
    )


T = TypeVar("T")


async def _in_savepoint(session: AsyncSession, work: Callable[[], Awaitable[T]]) -> T:
    """Run `work` in a savepoint: if it fails, only its own changes are undone."""
    async with session.begin_nested():
        return await work()


def _reason(exc: DBAPIError) -> str:
    return str(exc.orig if exc.orig is not None else exc).splitlines()[0][:300]


async def _record_failure_alone(
    db: Database, settings: Settings, claim: Claim, exc: ProviderError
) -> RelayOutcome:
    """A failure's record, which cannot fail the others': if it cannot be written, the
    order stays `sending` and the sweeper decides (review, or a resend with its request
    id), as after a crash."""
    try:
        return await _record_failure(db, settings, claim, exc)
    except DBAPIError as failure:
        log.error(
            "relay: outcome not recorded, left to the sweeper: %s",
            _reason(failure),
            extra={"order_id": claim.id, "provider_id": claim.provider_id},
        )
        return RelayOutcome(claim.id, "unrecorded")


@dataclass(frozen=True)
class UpstreamCost:
    charge: Decimal
    currency: str
    fx_rate: Decimal | None

    def columns(self) -> dict[str, object]:
        return {
            "provider_charge": self.charge,
            "provider_currency": self.currency,
            "fx_rate": self.fx_rate,
        }


class CostedOrder(Protocol):
    """What pricing needs of a sent order: a full Order or a claimed row."""

    @property
    def id(self) -> int: ...
    @property
    def service_id(self) -> int: ...
    @property
    def type(self) -> str: ...
    @property
    def quantity(self) -> int: ...


async def upstream_costs(
    session: AsyncSession, settings: Settings, orders: Sequence[tuple[CostedOrder, Provider]]
) -> dict[int, UpstreamCost]:
    """What the provider bills for each order and the conversion rate of the day; orders
    whose service has no provider rate are left out (the margin report lists them). An
    order taken by one of the service's backup providers (failover) costs that backup's
    rate."""
    service_ids = {order.service_id for order, _ in orders}
    primaries = {
        service_id: (provider_id, rate)
        for service_id, provider_id, rate in await session.execute(
            select(Service.id, Service.provider_id, Service.provider_rate).where(
                Service.id.in_(service_ids)
            )
        )
    }
    backup_rates = {
        (b.service_id, b.provider_id): b.provider_rate
        for b in await session.scalars(
            select(ServiceBackup).where(ServiceBackup.service_id.in_(service_ids))
        )
    }
    fx_rates: dict[str, Decimal | None] = {}
    costs: dict[int, UpstreamCost] = {}
    for order, provider in orders:
        primary_id, provider_rate = primaries.get(order.service_id, (None, None))
        if provider.id != primary_id and (order.service_id, provider.id) in backup_rates:
            provider_rate = backup_rates[(order.service_id, provider.id)]
        if provider_rate is None:
            continue
        currency = provider.currency
        if currency not in fx_rates:
            try:
                fx_rates[currency] = await conversion_rate(session, settings, currency)
            except NoConversionRate:
                fx_rates[currency] = None  # the margin report lists such orders as unpriced
        costs[order.id] = UpstreamCost(
            cost_for(order.type, provider_rate, order.quantity), currency, fx_rates[currency]
        )
    return costs


async def relay_order(
    db: Database, http: httpx.AsyncClient, settings: Settings, order_id: int
) -> RelayOutcome:
    """Relay one order (jobs enqueued per order by earlier versions still arrive)."""
    claims = await claim_due(db, 1, order_id=order_id)
    if not claims:
        return RelayOutcome(order_id, "skipped")
    claim = claims[0]
    answer = await send(claim, client_for(claim.provider, settings.secret_key, http))
    return (await record(db, settings, [(claim, answer)]))[0]


class SendSlots:
    """Upstream `add` calls in flight in this worker process, shared by its relay jobs. A
    job claims only as many orders as it has free slots, so a claimed order never waits
    for its turn: the age of a `sending` attempt is the age of its call.

    Each slot has its own HTTP lane (a pool of one connection, see Lane). Every slot is
    either free or held by exactly one call (or a claim being made for it): `give` refuses
    a slot that is not held, so a slot can be neither lost nor given back twice."""

    def __init__(self, size: int, http: httpx.AsyncClient) -> None:
        self.size = max(1, size)
        # One run of this worker claims at a time (claims stay large); a run that starts
        # meanwhile only raises `kicked`, and the claiming run claims again before it stops.
        self.claiming = False
        self.kicked = False
        self._free = list(range(self.size))
        self._held: set[int] = set()
        # Calls in flight per provider, whatever run made them: RELAY_PROVIDER_CONCURRENCY
        # bounds each, so a slow provider never holds every slot.
        self.flying: Counter[int] = Counter()
        self._freed = asyncio.Event()
        tls = httpx.create_ssl_context()
        self._lanes = [Lane(http, 1, tls) for _ in range(self.size)]

    @property
    def free(self) -> int:
        return len(self._free)

    @property
    def held(self) -> int:
        return len(self._held)

    def take(self, wanted: int) -> list[int]:
        taken = self._free[: max(0, wanted)]
        del self._free[: len(taken)]
        self._held.update(taken)
        assert len(self._free) + len(self._held) == self.size
        return taken

    def give(self, slots: Sequence[int]) -> None:
        for slot in slots:
            assert slot in self._held, f"slot {slot} given back but not held"
            self._held.remove(slot)
        self._free.extend(slots)
        assert len(self._free) + len(self._held) == self.size
        if slots:
            self._freed.set()

    def http(self, slot: int) -> Lane:
        return self._lanes[slot]

    async def wait(self) -> None:
        self._freed.clear()
        await self._freed.wait()

    async def aclose(self) -> None:
        for lane in self._lanes:
            await lane.aclose()


@dataclass
class RelayRun:
    outcomes: Counter[str] = field(default_factory=Counter)
    cancel_due: list[int] = field(default_factory=list)
    # Stopped claiming because the run is long: due orders may remain, kick another run.
    more: bool = False
    claims: int = 0  # claim transactions
    records: int = 0  # transactions recording outcomes of accepted orders


# A claim that left out a provider at its room (RELAY_PROVIDER_CONCURRENCY) is followed
# by the next one after this many seconds at the earliest, unless no call is in flight.
CAPPED_PAUSE = 0.25

# Outcomes that arrived are recorded at least this often, so a slow call never holds back
# the record of the others for long.
RECORD_EVERY = 0.05


class RelayDue:
    """One run of `relay_due`, in three steps that repeat until nothing is due:

    - claim: take every free send slot and claim as many due orders in one committed
      transaction (`claim_due`); slots left without an order are given back at once;
    - send: one task per claimed order, on its own slot; the slot is given back when the
      call ends, whatever happened;
    - record: the answers that arrived, in one `record` call.

    Invariants, checked as the run goes: an order is sent only once its claim committed
    and at most once per run; every slot taken is given back; the calls in flight never
    outnumber the slots this run holds, nor the worker's slots."""

    def __init__(
        self, db: Database, settings: Settings, slots: SendSlots, max_seconds: float
    ) -> None:
        self.db = db
        self.settings = settings
        self.slots = slots
        self.run = RelayRun()
        self.deadline = time.monotonic() + max_seconds
        self.half = max(1, slots.size // 2)
        self.claiming = False
        # After a claim left out a provider whose calls fill its room, the next waits a
        # little (those calls may take long): no claim loop against a slow provider.
        self._claim_after = 0.0
        self._keys: dict[int, str] = {}  # provider id → decrypted API key, once per run
        self._committed: set[int] = set()  # orders whose claim committed in this run
        self._flying: set[asyncio.Task[None]] = set()
        self._in_flight: dict[int, int] = {}  # order id → its slot, while its call runs
        self._providers: dict[int, int] = {}  # order id → its provider, while its call runs
        self._arrived: list[tuple[Claim, Answer]] = []
        self._enough = asyncio.Event()

    async def __call__(self) -> RelayRun:
        if self.slots.claiming:
            self.slots.kicked = True  # the claiming run claims again before it stops
            return self.run
        self.slots.claiming = self.claiming = True
        try:
            while True:
                if self.claiming and time.monotonic() >= self.deadline:
                    self._stop_claiming()
                    self.run.more = True
                free = self.slots.free
                ready = time.monotonic() >= self._claim_after or not self._flying
                if (
                    self.claiming
                    and ready
                    and (free >= self.half or (not self._flying and free > 0))
                ):
                    await self.claim()
                elif self.claiming and not self._flying and not self._arrived:
                    await self.slots.wait()  # other jobs of this worker hold every slot
                    continue
                if not self._flying and not self._arrived:
                    assert not self._in_flight, "a call ended without its answer"
                    return self.run
                await self._answers()
                await self.record()
        finally:
            if self.claiming:
                self._stop_claiming()
            # Stopped mid-flight (shutdown, database lost): calls whose outcome is not
            # recorded stay `sending`, and the sweeper moves them to review. Never resent
            # blindly.
            for task in list(self._flying):
                task.cancel()

    def _stop_claiming(self) -> None:
        self.claiming = self.slots.claiming = False

    async def claim(self) -> None:
        """Claim as many due orders as there are free slots; commit; then send them."""
        taken = self.slots.take(self.slots.free)
        claims: list[Claim] = []
        self.run.claims += 1
        self.slots.kicked = False
        per_provider = self.settings.relay_provider_concurrency
        rooms = {p: per_provider - n for p, n in self.slots.flying.items() if n > 0}
        try:
            # Committed when it returns.
            claims = await claim_due(self.db, len(taken), rooms=rooms, per_provider=per_provider)
        finally:
            self.slots.give(taken[len(claims) :])
        assert len(claims) <= len(taken)
        claimed = Counter(claim.provider_id for claim in claims)
        assert all(rooms.get(p, per_provider) >= n for p, n in claimed.items()), "room exceeded"
        if len(claims) < len(taken) and not self.slots.kicked:
            if any(rooms.get(p, per_provider) <= n for p, n in claimed.items()) or any(
                room <= 0 for room in rooms.values()
            ):
                # Orders of a provider at its room may be due still: claim again later.
                self._claim_after = time.monotonic() + CAPPED_PAUSE
            else:
                self._stop_claiming()  # nothing else is due now
        self._committed.update(claim.id for claim in claims)
        for claim, slot in zip(claims, taken, strict=False):
            self.send(claim, slot)

    def send(self, claim: Claim, slot: int) -> None:
        assert claim.id in self._committed, "an order is sent only after its claim committed"
        assert claim.id not in self._in_flight, "an order is sent at most once per run"
        self._in_flight[claim.id] = slot
        self._providers[claim.id] = claim.provider_id
        self.slots.flying[claim.provider_id] += 1
        assert len(self._in_flight) <= self.slots.held <= self.slots.size
        task = asyncio.create_task(self._call(claim, slot))
        self._flying.add(task)
        task.add_done_callback(self._flying.discard)
        # A task canceled before it ever ran (the run stopped) never reaches the `finally`
        # of _call: its slot is given back here instead.
        task.add_done_callback(lambda _: self._release(claim.id))

    async def _call(self, claim: Claim, slot: int) -> None:
        try:
            key = self._keys.get(claim.provider_id)
            if key is None:
                key = self._keys[claim.provider_id] = decrypt_key(
                    self.settings.secret_key, claim.provider.api_key_encrypted
                )
            client = ProviderClient(claim.provider.url, key, self.slots.http(slot))
            answer = await send(claim, client)
        finally:
            self._release(claim.id)
        self._arrived.append((claim, answer))
        if len(self._arrived) >= self.half or not self._in_flight:
            self._enough.set()

    def _release(self, order_id: int) -> None:
        """The call of this order ended: its slot goes back, exactly once."""
        slot = self._in_flight.pop(order_id, None)
        if slot is not None:
            self.slots.give([slot])
            provider_id = self._providers.pop(order_id)
            self.slots.flying[provider_id] -= 1
            if self.slots.flying[provider_id] <= 0:
                del self.slots.flying[provider_id]

    async def _answers(self) -> None:
        """Wait a little for more answers, so that each record carries many."""
        if self._in_flight and len(self._arrived) < self.half:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._enough.wait(), RECORD_EVERY)
        self._enough.clear()

    async def record(self) -> None:
        batch = self._arrived[:]
        del self._arrived[:]
        if not batch:
            return
        self.run.records += 1
        for outcome in await record(self.db, self.settings, batch):
            self.run.outcomes[outcome.outcome] += 1
            if outcome.cancel_due:
                self.run.cancel_due.append(outcome.order_id)
            if outcome.outcome == "failover":
                self.run.more = True  # queued again, for its next provider: kick a run


async def relay_due(
    db: Database,
    settings: Settings,
    slots: SendSlots,
    *,
    max_seconds: float = 60.0,
) -> RelayRun:
    """Relay every due order: claim as many as there are free send slots, send them
    concurrently, record outcomes as they arrive, and claim again as slots free up, until
    a claim finds fewer due orders than it asked for (or the run has lasted
    `max_seconds`). Any order committed before the run started is claimed by it, or by
    the run of this worker that is claiming already: that one claims again before it
    stops whenever another run started in the meantime.

    Claims and records work on half the slots at a time: each transaction carries many
    orders, and the other half of the calls keeps going meanwhile. See RelayDue."""
    return await RelayDue(db, settings, slots, max_seconds)()


async def _record_failure(
    db: Database, settings: Settings, order: Claim, exc: ProviderError
) -> RelayOutcome:
    kind = type(exc).__name__
    async with db.transaction() as session:
        session.add(
            UpstreamEvent(
                order_id=order.id,
                action="add",
                outcome=kind,
                detail={"message": exc.message[:500]},
            )
        )
        if (
            isinstance(exc, ProviderUnknownOutcome)
            and order.upstream_request_id is not None
            and order.provider.cap_request_id
        ):
            # Sent with our request id: sending it again answers the order it may have
            # created, or creates it once. Never given up on while its fate is unknown.
            await _requeue(session, order.id, UP_SENDING, settings, order.attempts, exc.message)
            RELAY_OUTCOMES.labels("retry").inc()
            log.info(
                "order outcome unknown, sent again with its request id",
                extra={"order_id": order.id},
            )
            return RelayOutcome(order.id, "retry")
        if isinstance(exc, ProviderUnknownOutcome):
            # It may have been created upstream: a resend could double it. An operator decides.
            await _set_state(session, order.id, UP_REVIEW, exc.message)
            RELAY_OUTCOMES.labels("review").inc()
            log.warning("order outcome unknown, moved to review", extra={"order_id": order.id})
            return RelayOutcome(order.id, "review")
        if isinstance(exc, ProviderTransient) and FUNDS_ERROR in exc.message.lower():
            PROVIDER_ALERTS.labels(str(order.provider_id), "insufficient_funds").inc()
            log.error(
                "provider balance too low to relay orders",
                extra={"provider_id": order.provider_id, "order_id": order.id},
            )
        if fails_over(exc) and await fail_over(session, order, exc):
            return RelayOutcome(order.id, "failover")
        if isinstance(exc, ProviderPermanent):
            await give_up(session, order.id, UP_REJECTED, exc.message)
            RELAY_OUTCOMES.labels("rejected").inc()
            return RelayOutcome(order.id, "rejected")
        if order.attempts >= settings.relay_max_attempts:
            await give_up(session, order.id, UP_REJECTED, f"gave up: {exc.message}")
            RELAY_OUTCOMES.labels("gave_up").inc()
            return RelayOutcome(order.id, "gave_up")
        # Surely not created upstream (not sent, or a transient refusal): retry later.
        await session.execute(
            update(Order)
            .where(Order.id == order.id, Order.upstream_state == UP_SENDING)
            .values(
                upstream_state=UP_QUEUED,
                sending_since=None,
                next_attempt_at=utcnow() + backoff(settings, order.attempts),
                last_error=exc.message[:1000],
            )
        )
    RELAY_OUTCOMES.labels("retry").inc()
    return RelayOutcome(order.id, "retry")


# Failover ----------------------------------------------------------------------------------
#
# A service may list backup providers (catalog.ServiceBackup, in order). An order the
# provider refused for good *before accepting it* goes to the next one in the chain
# (the service's own provider, then its backups), never back to one already passed: the
# order row's provider_id/provider_service_id move forward, so each provider of the chain
# receives the order at most once by failover, and the order's provider_id is the one
# that took it (the margin report and the status sync follow it). An unknown outcome
# (timeout after sending, garbage answer) never fails over: it may have been created.

# Refusals about the order itself, which no other provider would accept either.
ORDER_ERRORS = ("incorrect link",)


def fails_over(exc: ProviderError) -> bool:
    """A definitive refusal, before the provider accepted the order."""
    message = exc.message.lower()
    if isinstance(exc, ProviderPermanent):
        return not any(marker in message for marker in ORDER_ERRORS)
    return isinstance(exc, ProviderTransient) and FUNDS_ERROR in message


async def next_provider(session: AsyncSession, order: Claim) -> tuple[int, str] | None:
    """The provider (and its service id) after the order's current one in the chain of
    its service, skipping disabled providers; None at the end of the chain."""
    service = await session.get(Service, order.service_id)
    if service is None or service.provider_id is None or service.provider_service_id is None:
        return None
    backups = await session.scalars(
        select(ServiceBackup)
        .where(ServiceBackup.service_id == order.service_id)
        .order_by(ServiceBackup.position)
    )
    chain = [(service.provider_id, service.provider_service_id)]
    chain += [(b.provider_id, b.provider_service_id) for b in backups]
    current = (order.provider_id, order.provider_service_id)
    if current not in chain:
        return None  # mapped elsewhere since: the operator's mapping decides, not failover
    for provider_id, provider_service_id in chain[chain.index(current) + 1 :]:
        provider = await session.get(Provider, provider_id)
        if provider is not None and provider.enabled:
            return provider_id, provider_service_id
    return None


async def fail_over(session: AsyncSession, order: Claim, exc: ProviderError) -> bool:
    """Queue the order for the next provider of its chain (due now); False if none."""
    target = await next_provider(session, order)
    if target is None:
        return False
    provider_id, provider_service_id = target
    moved = await session.scalar(
        update(Order)
        .where(
            Order.id == order.id,
            Order.upstream_state == UP_SENDING,
            Order.provider_id == order.provider_id,
        )
        .values(
            provider_id=provider_id,
            provider_service_id=provider_service_id,
            upstream_state=UP_QUEUED,
            sending_since=None,
            next_attempt_at=utcnow(),
            last_error=f"provider {order.provider_id} refused: {exc.message}"[:1000],
        )
        .returning(Order.id)
    )
    if moved is None:
        return False
    session.add(
        UpstreamEvent(
            order_id=order.id,
            action="add",
            outcome="failover",
            detail={
                "from_provider_id": order.provider_id,
                "to_provider_id": provider_id,
                "provider_service_id": provider_service_id,
                "message": exc.message[:500],
            },
        )
    )
    RELAY_OUTCOMES.labels("failover").inc()
    log.warning(
        "provider refused the order: failed over to the next provider",
        extra={"order_id": order.id, "from": order.provider_id, "to": provider_id},
    )
    return True


async def _requeue(
    session: AsyncSession,
    order_id: int,
    state: str,
    settings: Settings,
    attempts: int,
    error: str,
) -> None:
    """Back to the queue from `state`, due after the backoff of `attempts`."""
    await session.execute(
        update(Order)
        .where(Order.id == order_id, Order.upstream_state == state)
        .values(
            upstream_state=UP_QUEUED,
            sending_since=None,
            next_attempt_at=utcnow() + backoff(settings, attempts),
            last_error=error[:1000],
        )
    )


async def _set_state(session: AsyncSession, order_id: int, state: str, error: str) -> None:
    await session.execute(
        update(Order)
        .where(Order.id == order_id, Order.upstream_state == UP_SENDING)
        .values(upstream_state=state, last_error=error[:1000])
    )


async def give_up(session: AsyncSession, order_id: int, state: str, error: str) -> None:
    """The order cannot be placed upstream: Canceled with a full refund."""
    await lock_owners(session, [order_id])  # its owner, then the order (the lock order)
    order = await session.scalar(
        update(Order)
        .where(Order.id == order_id, Order.upstream_state.in_((UP_SENDING, UP_REVIEW)))
        .values(
            upstream_state=state,
            status=CANCELED,
            remains=Order.quantity,
            finished_at=utcnow(),
            sending_since=None,
            last_error=error[:1000],
        )
        .returning(Order)
    )
    if order is not None:
        await refund(session, order_id=order.id, amount=order.charge, reason="Not placed upstream")
        if order.parent_id is not None:
            await refresh_parent(session, order.parent_id)


async def move_stale_sending_to_review(db: Database, settings: Settings) -> list[int]:
    """A `sending` attempt older than the timeout has an unknown outcome (the worker died
    mid-call): never resend it blindly. One that carried our request id is sent again
    with it instead (safe: see the module's docstring); the ids moved to review."""
    cutoff = utcnow() - timedelta(seconds=settings.sending_stale_seconds)
    async with db.transaction() as session:
        requeued = list(
            await session.scalars(
                update(Order)
                .where(
                    Order.upstream_state == UP_SENDING,
                    Order.sending_since < cutoff,
                    Order.upstream_request_id.is_not(None),
                    Order.provider_id.in_(select(Provider.id).where(Provider.cap_request_id)),
                )
                .values(
                    upstream_state=UP_QUEUED,
                    sending_since=None,
                    next_attempt_at=utcnow(),
                    last_error="worker stopped during the call: sent again with its request id",
                )
                .returning(Order.id)
            )
        )
        for order_id in requeued:
            session.add(
                UpstreamEvent(order_id=order_id, action="add", outcome="stale_to_retry", detail={})
            )
        ids = list(
            await session.scalars(
                update(Order)
                .where(Order.upstream_state == UP_SENDING, Order.sending_since < cutoff)
                .values(upstream_state=UP_REVIEW, last_error="worker stopped during the call")
                .returning(Order.id)
            )
        )
        for order_id in ids:
            session.add(
                UpstreamEvent(order_id=order_id, action="add", outcome="stale_to_review", detail={})
            )
    for order_id in ids:
        log.warning(
            "send outcome unknown (worker stopped during the call), moved to review",
            extra={"order_id": order_id},
        )
    return ids


async def requeue_reviews_with_request_id(db: Database) -> list[int]:
    """Orders in review whose attempts carried our request id, at a provider that takes
    request ids, are not an operator's question: sending again with the same id answers
    the provider's order (or places it once). Back to the queue, due now; their ids.
    Orders flagged with an anomaly stay for the operator."""
    capable = select(Provider.id).where(Provider.cap_request_id)
    async with db.transaction() as session:
        ids = list(
            await session.scalars(
                update(Order)
                .where(
                    Order.upstream_state == UP_REVIEW,
                    Order.status == PENDING,
                    Order.provider_order_id.is_(None),
                    Order.upstream_request_id.is_not(None),
                    Order.provider_id.in_(capable),
                    # Held for an anomaly (an upstream id given twice): the same request
                    # id would only answer it again. The operator decides.
                    Order.anomaly.is_(None),
                )
                .values(
                    upstream_state=UP_QUEUED,
                    next_attempt_at=utcnow(),
                    last_error="outcome unknown: sent again with its request id",
                )
                .returning(Order.id)
            )
        )
        for order_id in ids:
            session.add(
                UpstreamEvent(order_id=order_id, action="add", outcome="review_to_retry", detail={})
            )
    return ids


async def due_orders(db: Database, limit: int = 1000) -> list[int]:
    async with db.session() as session:
        return list(
            await session.scalars(
                select(Order.id)
                .where(Order.upstream_state == UP_QUEUED, Order.next_attempt_at <= utcnow())
                .order_by(Order.next_attempt_at)
                .limit(limit)
            )
        )


async def relay_cancel(
    db: Database, http: httpx.AsyncClient, settings: Settings, order_id: int
) -> str:
    """Ask the provider to cancel a sent order; the refund follows its status report."""
    async with db.session() as session:
        row = (
            await session.execute(
                select(Order, Provider)
                .join(Provider, Provider.id == Order.provider_id)
                .where(
                    Order.id == order_id,
                    Order.cancel_state == "requested",
                    Order.upstream_state == UP_SENT,
                )
            )
        ).first()
    if row is None:
        return "skipped"
    order, provider = row
    client = client_for(provider, settings.secret_key, http)
    try:
        answers = await client.cancel([order.provider_order_id or ""])
    except ProviderError as exc:
        # Not decided: the sweeper asks again later (a repeated cancel request is harmless).
        async with db.transaction() as session:
            session.add(
                UpstreamEvent(
                    order_id=order.id,
                    action="cancel",
                    outcome=type(exc).__name__,
                    detail={"message": exc.message[:500]},
                )
            )
        return "retry"
    answer = answers.get(order.provider_order_id or "")
    accepted = answer is True
    async with db.transaction() as session:
        await session.execute(
            update(Order)
            .where(Order.id == order.id, Order.cancel_state == "requested")
            .values(
                cancel_state="sent" if accepted else "rejected",
                last_error=None if accepted else getattr(answer, "message", "cancel refused"),
            )
        )
        session.add(
            UpstreamEvent(
                order_id=order.id,
                action="cancel",
                outcome="accepted" if accepted else "rejected",
                detail={} if accepted else {"message": getattr(answer, "message", "")},
            )
        )
    return "accepted" if accepted else "rejected"


async def due_cancels(db: Database, limit: int = 1000) -> list[int]:
    async with db.session() as session:
        return list(
            await session.scalars(
                select(Order.id)
                .where(Order.cancel_state == "requested", Order.upstream_state == UP_SENT)
                .limit(limit)
            )
        )
