"""Claiming due orders (`queued → sending`, committed before any upstream call) and
sending them: `claim_due`, `send`, one order (`relay_order`) or every due one
(`relay_due`: `RelayDue` over this worker's `SendSlots`)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import cast

import httpx
from sqlalchemy import (
    ColumnElement,
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

from app.db import Database, utcnow
from app.flows.relay.common import Answer, Claim, RelayOutcome, log, outgoing_fields, request_id_for
from app.flows.relay.recording import record
from app.orders.models import (
    PENDING,
    UP_QUEUED,
    UP_SENDING,
    Order,
    UpstreamEvent,
)
from app.providers.client import (
    Lane,
    ProviderClient,
    ProviderError,
    ProviderUnknownOutcome,
)
from app.providers.crypto import decrypt_key
from app.providers.models import Provider
from app.providers.service import client_for
from app.settings import Settings

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


async def send(claim: Claim, client: ProviderClient) -> Answer:
    try:
        return await client.add(outgoing_fields(claim))
    except ProviderError as exc:
        return exc
    except Exception as exc:  # whatever it was, the outcome is unknown
        log.exception("unexpected error relaying an order", extra={"order_id": claim.id})
        return ProviderUnknownOutcome(f"add: {type(exc).__name__}")


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
