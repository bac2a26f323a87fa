"""The real system under simulation: the domain code on a throwaway PostgreSQL database,
driven step by step.

Real: orders.service (place_order, cancel_order, refund, apply_status through the status
sync), the relay (claim_due / send / record, relay_cancel, move_stale_sending_to_review
through the worker's `sweep`), the status sync, refills (refills.service and
flows/refills.py), drip-feed runs, payments (manual_topup, settle), the ledger, the
database and its constraints. Simulated: the clock, the provider, Redis, crashes.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial
from typing import Any

import asyncpg
from sqlalchemy import event, select, text
from sqlalchemy.engine import ExceptionContext

from app import migrate
from app.accounts import service as accounts
from app.catalog.models import Category, Service
from app.db import Database
from app.errors import (
    CancelDisabled,
    DomainError,
    DuplicateActiveOrder,
    NotEnoughFunds,
)
from app.flows import relay, sync
from app.orders import service as orders
from app.orders.models import Order
from app.payments import gateways
from app.payments import service as payments
from app.payments.models import Payment
from app.providers.client import ProviderClient
from app.providers.crypto import encrypt_key
from app.providers.models import Provider
from app.refills import service as refills
from app.settings import Settings
from sim.audit import ACTIVE, Auditor, Known, Model
from sim.provider import URL, SimProvider
from sim.world import Clock, Job, SimHttp, World, install_clock
from workers import main as worker

# Strong, as Settings demands; they protect nothing outside the throwaway database.
SECRET_KEY = "sim-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"  # noqa: S105
ADMIN_TOKEN = "sim-admin-token-0123456789-abcdefghijklmnop"  # noqa: S105
PROVIDER_KEY = "sim-provider-key"
USERS = 3
# Cron periods of the worker (workers/main.py cron_jobs): sweep, status sync, refill sync.
SWEEP_SECONDS, SYNC_SECONDS, REFILL_SYNC_SECONDS = 10, 15, 30
# The longest delay the system itself schedules before due work is picked up again: the
# relay's backoff cap (one hour), beyond the stale-send timeout and drip-feed intervals.
# Liveness is checked after two such periods without faults.
PERIOD_SECONDS = 3600 + SWEEP_SECONDS

# The tables a history writes (CASCADE takes whatever refers to them).
WRITTEN = (
    "users, providers, categories, services, orders, ledger_entries, upstream_events, "
    "refills, payments, payment_notifications, referral_rewards, api_keys, audit_log"
)

STEP_WEIGHTS = (
    ("add", 26),
    ("deposit", 5),
    ("payment", 3),
    ("cancel", 7),
    ("refill", 4),
    ("refund_replay", 2),
    ("job", 18),
    ("answer", 20),
    ("tick", 12),
    ("provider", 10),
    ("sync", 8),
    ("crash", 3),
    ("restart", 1),
)


def plan(seed: int, steps: int) -> list[tuple[str, int]]:
    """The history of a seed: each step's kind and its own sub-seed."""
    rng = random.Random(seed)
    kinds = [k for k, _ in STEP_WEIGHTS]
    weights = [w for _, w in STEP_WEIGHTS]
    return [(rng.choices(kinds, weights)[0], rng.getrandbits(64)) for _ in range(steps)]


def settings_for(url: str) -> Settings:
    return Settings(
        database_url=url,
        redis_url=None,
        admin_token=ADMIN_TOKEN,
        secret_key=SECRET_KEY,
        log_json=False,
    )


@asynccontextmanager
async def throwaway_database(base: str) -> AsyncIterator[str]:
    """A fresh, migrated database for this run, dropped afterwards (as tests/conftest.py)."""
    name = f"smm_sim_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(base)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    url = base.rsplit("/", 1)[0] + "/" + name
    try:
        await asyncio.to_thread(migrate.upgrade, url)
        yield url
    finally:
        admin = await asyncpg.connect(base)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


class Abandoned(Exception):
    """The API call stops at this await point (client gone, process killed)."""


@dataclass
class Outcome:
    trace: list[str]
    violations: list[str]
    steps: int
    faults: dict[str, int] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return bool(self.violations)


# The status sync's page in the simulation: small, so that a sync has several pages in
# flight whose orders belong to users met in different orders (the lock-order fault).
PAGE = 3


class Deadlocks:
    """Every statement PostgreSQL aborted as one of two transactions waiting on each other
    (`deadlock detected`), seen on the engine itself, whatever the code did with the
    error next (logged and retried later): each is a liveness violation."""

    def __init__(self, db: Database) -> None:
        self.lines: list[str] = []
        event.listen(db.engine.sync_engine, "handle_error", self.seen)

    def seen(self, context: ExceptionContext) -> None:
        error = str(context.original_exception)
        if "deadlock detected" in error:
            self.lines.append(f"deadlock: {error.splitlines()[0][:300]}")

    def take(self) -> list[str]:
        taken, self.lines = self.lines, []
        return taken


class System:
    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self.deadlocks = Deadlocks(db)

    async def reset(self) -> None:
        """Empty what a history writes and restart every id at 1: a seed replays alike."""
        async with self.db.transaction() as session:
            await session.execute(text(f"TRUNCATE {WRITTEN} RESTART IDENTITY CASCADE"))

    async def run(self, seed: int, steps: list[tuple[str, int]]) -> Outcome:
        await self.reset()
        clock = Clock(datetime.now(UTC).replace(microsecond=0))
        undo = install_clock(clock)
        page, sync.BATCH = sync.BATCH, PAGE
        self.deadlocks.take()
        try:
            world = World(clock)
            history = History(self, world, seed)
            await history.setup()
            executed = 0
            for index, (kind, subseed) in enumerate(steps):
                executed += 1
                world.rng = random.Random(subseed)
                world.trace.append(f"step {index}: {kind}")
                mark = len(world.trace)
                try:
                    await history.step(kind)
                except Exception as exc:  # the code under test failed: a finding
                    first = str(exc).splitlines()[0][:300] if str(exc) else ""
                    history.auditor.fail(
                        f"step {index} ({kind}) raised {type(exc).__name__}: {first}"
                    )
                    world.trace.append(f"  VIOLATION {history.auditor.violations[-1]}")
                if len(world.trace) > mark or kind == "tick":
                    await history.audit(f"step {index} ({kind})")
                if history.auditor.violations:
                    break
            if not history.auditor.violations:
                world.trace.append("quiet: faults stop")
                await history.quiet()
            return Outcome(
                world.trace,
                history.auditor.violations,
                executed,
                dict(world.faults_by_kind),
            )
        finally:
            sync.BATCH = page
            undo()


class History:
    """One seed's run: the world, the model, and the step implementations."""

    def __init__(self, system: System, world: World, seed: int) -> None:
        self.system = system
        self.db = system.db
        self.settings = system.settings
        self.world = world
        self.seed = seed
        self.model = Model()
        self.auditor = Auditor(self.model, world.provider)
        self.users: list[int] = []
        self.services: dict[int, Service] = {}
        self.provider_ids: list[int] = []
        self.links = 0
        self.payments: list[int] = []
        self.elapsed = 0.0
        self.ctx: dict[str, Any] = {
            "db": self.db,
            "settings": self.settings,
            "jobs": world.queue,
            "http": SimHttp(world).as_client(),
        }

    @property
    def provider(self) -> SimProvider:
        return self.world.provider

    # -- setup ------------------------------------------------------------------------------

    async def setup(self) -> None:
        async with self.db.transaction() as session:
            provider = Provider(
                name="sim",
                url=URL,
                api_key_encrypted=encrypt_key(self.settings.secret_key, PROVIDER_KEY),
            )
            category = Category(name="Sim")
            session.add_all([provider, category])
            await session.flush()
            self.provider_ids = [provider.id]
            common = {
                "category_id": category.id,
                "type": "Default",
                "min_quantity": 10,
                "max_quantity": 1000,
                "provider_id": provider.id,
            }
            services = [
                Service(
                    name="Followers",
                    rate=Decimal("1.20"),
                    refill=True,
                    refill_days=30,
                    cancel=True,
                    dripfeed=True,
                    provider_dripfeed=False,
                    provider_service_id="1",
                    **common,
                ),
                Service(
                    name="Likes",
                    rate=Decimal("0.50"),
                    refill=False,
                    cancel=False,
                    provider_service_id="2",
                    **common,
                ),
            ]
            session.add_all(services)
            await session.flush()
            self.services = {s.id: s for s in services}
            for index in range(USERS):
                user = await accounts.create_user(session, email=f"user{index}@sim.example")
                self.users.append(user.id)
        for user_id in self.users:
            await self._topup(user_id, Decimal(random.Random(self.seed + user_id).randrange(1, 4)))
        await self.audit("setup")

    async def audit(self, where: str) -> None:
        before = len(self.auditor.violations)
        for line in self.system.deadlocks.take():
            self.auditor.fail(f"liveness: {line}")
        async with self.db.session() as session:
            await self.auditor.check(session)
        for violation in self.auditor.violations[before:]:
            self.world.trace.append(f"  VIOLATION after {where}: {violation}")
        for error in self.world.errors:
            self.auditor.fail(f"unexpected error: {error}")
            self.world.trace.append(f"  VIOLATION after {where}: unexpected error {error}")
        self.world.errors.clear()

    # -- steps ------------------------------------------------------------------------------

    async def step(self, kind: str) -> None:
        await getattr(self, f"step_{kind}")()

    async def step_add(self) -> None:
        rng, model = self.world.rng, self.model
        user_id = rng.choice(self.users)
        service = self.services[rng.choice(sorted(self.services))]
        mine = sorted(k.link for k in model.orders.values() if k.user_id == user_id)
        if mine and rng.random() < 0.25:
            link = rng.choice(mine)
        else:
            self.links += 1
            link = f"https://sim.example/u{user_id}/post{self.links}"
        quantity = rng.choices([rng.randrange(10, 200), rng.randrange(200, 1001), 5], [6, 3, 1])[0]
        fields = {"service": str(service.id), "link": link, "quantity": str(quantity)}
        runs = rng.choice([2, 3]) if service.dripfeed and rng.random() < 0.3 else 1
        if runs > 1:
            fields.update(runs=str(runs), interval=str(rng.choice([1, 5, 10])))
        charge = service.rate * quantity * runs / 1000
        if quantity < service.min_quantity:
            expected = f"error: Quantity less than minimal {service.min_quantity}"
        elif model.active_duplicate(user_id, service.id, link):
            expected = "error: " + DuplicateActiveOrder.message
        elif model.balance(user_id) < charge:
            expected = "error: " + NotEnoughFunds.message
        else:
            expected = "ok"
        crash = rng.choices(["none", "before_commit", "reply_lost"], [90, 5, 5])[0]
        if crash != "none":
            self.world.fault(f"api:add_{crash}")
        placed = None
        try:
            async with self.db.transaction() as session:
                placed = await orders.place_order(session, user_id, fields)
                if crash == "before_commit":
                    raise Abandoned()
        except DomainError as exc:
            got = f"error: {exc.message}"
        except Abandoned:
            got = "abandoned"
        else:
            got = "ok"
        self.world.note(f"add {fields} by user {user_id}: {got} (model: {expected})")
        if got == "abandoned":
            await self._expect_absent(user_id, link, service.id)
            return
        if got != expected:
            self.auditor.fail(f"add by user {user_id} {fields}: got {got!r}, allowed {expected!r}")
            return
        if placed is None:
            return
        if placed.charge != charge:
            self.auditor.fail(f"order {placed.order_id} charged {placed.charge}, expected {charge}")
        # Acknowledged (or, reply lost, found by the client's next look); charged either way.
        model.orders[placed.order_id] = Known(placed.order_id, user_id, service.id, link, charge)
        model.charges[user_id] += charge
        if crash == "reply_lost":
            return  # the after-commit enqueue happened: the process died after it
        for order_id, due in placed.relays:
            if due <= self.world.clock.now:
                await self.world.queue.relay_order(order_id)

    async def _expect_absent(self, user_id: int, link: str, service_id: int) -> None:
        async with self.db.session() as session:
            found = await session.scalar(
                select(Order.id).where(
                    Order.user_id == user_id,
                    Order.link == link,
                    Order.service_id == service_id,
                    Order.parent_id.is_(None),  # drip-feed runs share their order's link
                    Order.id.not_in(list(self.model.orders) or [0]),
                )
            )
        if found is not None:
            self.auditor.fail(f"an abandoned add left order {found}")

    async def step_deposit(self) -> None:
        rng = self.world.rng
        refs = sorted(self.model.payment_refs)
        if refs and rng.random() < 0.3:
            ref = rng.choice(refs)
            user_id, amount = self.model.payment_refs[ref]
            self.world.fault("payment:duplicate_notification")
        else:
            user_id, amount = rng.choice(self.users), Decimal(rng.randrange(1, 6))
            ref = f"ref-{len(refs) + 1}"
        await self._topup(user_id, amount, ref)

    async def _topup(self, user_id: int, amount: Decimal, ref: str | None = None) -> None:
        first = ref is None or ref not in self.model.payment_refs
        async with self.db.transaction() as session:
            movement = await payments.manual_topup(
                session,
                self.settings,
                user_id=user_id,
                amount=amount,
                reason="sim top-up",
                operator="sim",
                payment_ref=ref,
            )
        if (movement is not None) != first:
            self.auditor.fail(f"top-up {ref} for user {user_id}: credited={movement is not None}")
        if movement is not None:
            self.model.deposits[user_id] += amount
            if ref is not None:
                self.model.payment_refs[ref] = (user_id, amount)

    async def step_payment(self) -> None:
        rng = self.world.rng
        if self.payments and rng.random() < 0.4:
            payment_id = rng.choice(self.payments)
            self.world.fault("payment:replayed_settle")
        else:
            async with self.db.transaction() as session:
                payment = Payment(
                    user_id=rng.choice(self.users),
                    gateway="robokassa",
                    amount=Decimal(rng.randrange(1, 6)),
                    currency="USD",
                    credit_amount=Decimal(rng.randrange(1, 6)),
                )
                session.add(payment)
                await session.flush()
                payment_id = payment.id
            self.payments.append(payment_id)
        async with self.db.transaction() as session:
            row = await session.get(Payment, payment_id)
            assert row is not None
            user_id, credit, amount = row.user_id, row.credit_amount, row.amount
            result = await payments.settle(
                session,
                self.settings,
                "robokassa",
                gateways.Confirmed(payment_id, amount, None, f"ext-{payment_id}"),
            )
        expected = "replay" if payment_id in self.model.paid else "credited"
        self.world.note(f"settle payment {payment_id}: {result} (model: {expected})")
        if result != expected:
            self.auditor.fail(f"settle {payment_id}: got {result}, allowed {expected}")
        if result == "credited":
            self.model.paid.add(payment_id)
            self.model.deposits[user_id] += credit

    def _pick_order(self, *, final: bool | None = None) -> Known | None:
        rng = self.world.rng
        rows = self.model.rows
        known = [
            k
            for k in sorted(self.model.orders.values(), key=lambda k: k.id)
            if final is None or (k.id in rows and (rows[k.id].status not in ACTIVE) == final)
        ]
        return rng.choice(known) if known else None

    async def step_cancel(self) -> None:
        known = self._pick_order(final=self.world.rng.random() < 0.1)
        if known is None:
            return
        row = self.model.rows[known.id]
        service = self.services[known.service_id]
        if not service.cancel:
            allowed = {"error: " + CancelDisabled.message}
        elif row.status not in ACTIVE:
            allowed = {"error: " + orders.OrderNotCancelable.message}
        elif row.upstream_state == "queued":
            allowed = {"withdrawn"}
        else:
            allowed = {
                "requested",
                "withdrawn",
                "error: " + orders.CancelAlreadyRequested.message,
            }
        try:
            async with self.db.transaction() as session:
                due = await orders.cancel_order(session, known.user_id, known.id)
        except DomainError as exc:
            got = f"error: {exc.message}"
        else:
            got = "requested" if due else "withdrawn"
            for order_id in due:
                await self.world.queue.relay_cancel(order_id)
        self.world.note(f"cancel order {known.id}: {got} (allowed {sorted(allowed)})")
        if got not in allowed:
            self.auditor.fail(f"cancel {known.id} ({row}): got {got!r}, allowed {sorted(allowed)}")

    async def step_refill(self) -> None:
        known = self._pick_order(final=True)
        if known is None:
            return
        try:
            async with self.db.transaction() as session:
                refill = await refills.request_refill(session, known.user_id, known.id)
                refill_id = refill.id
        except DomainError as exc:
            self.world.note(f"refill order {known.id}: {exc.message}")
            return
        self.world.note(f"refill order {known.id}: refill {refill_id}")
        await self.world.queue.relay_refill(refill_id)

    async def step_refund_replay(self) -> None:
        """A refund cause delivered again (a second worker, a replayed resolution): the
        exact-once refund must absorb it."""
        refunded = sorted(self.model.refunded)
        if not refunded:
            return
        order_id = self.world.rng.choice(refunded)
        self.world.fault("refund:replayed_cause")
        async with self.db.transaction() as session:
            amount = await orders.refund(
                session,
                order_id=order_id,
                amount=self.model.refund_amounts[order_id],
                reason="replayed",
            )
        self.world.note(f"refund replay for order {order_id}: {amount}")

    async def step_job(self) -> None:
        ready = sorted(self.world.queue.ready(), key=lambda j: (j.key, j.not_before))
        if not ready:
            return
        job = self.world.rng.choice(ready)
        self.world.queue.take(job)
        self.run_job(job)
        await self.world.settle()

    def run_job(self, job: Job) -> None:
        self.world.note(f"job {job.key}")
        if job.kind == "relay_order":
            order_id = job.arg
            self.world.spawn(job.key, lambda: self.relay(order_id))
        elif job.kind == "relay_due":
            self.world.spawn(job.key, lambda: self.relay(None))
        elif job.kind == "relay_cancel":
            self.world.spawn(job.key, lambda: worker.relay_cancel(self.ctx, job.arg or 0))
        elif job.kind == "relay_refill":
            self.world.spawn(job.key, lambda: worker.relay_refill(self.ctx, job.arg or 0))
        elif job.kind == "sync_provider":
            self.world.spawn(job.key, lambda: worker.sync_provider_statuses(self.ctx, job.arg or 0))

    async def relay(self, order_id: int | None) -> None:
        """The relay job: claim (committed), send each claim, record the answers, through
        the public functions of app/flows/relay/."""
        limit = 1 if order_id is not None else self.world.rng.randrange(1, 6)
        while True:
            claims = await relay.claim_due(self.db, limit, order_id=order_id)
            answers: list[tuple[relay.Claim, relay.Answer]] = []
            for claim in claims:
                http = SimHttp(self.world, claim.id)
                client = ProviderClient(claim.provider.url, PROVIDER_KEY, http)
                answers.append((claim, await relay.send(claim, client)))
            if answers:
                for outcome in await relay.record(self.db, self.settings, answers):
                    self.world.note(f"relay order {outcome.order_id}: {outcome.outcome}")
                    if outcome.cancel_due:
                        await self.world.queue.relay_cancel(outcome.order_id)
            # Like relay_due: claim again until a claim finds fewer due orders than it asked.
            if order_id is not None or len(claims) < limit:
                return

    async def step_answer(self) -> None:
        rng, parked = self.world.rng, self.world.parked()
        reads = [c for c in parked if c.action == "status"]
        if len(reads) > 1 and rng.random() < 0.3:
            # Lock order: pages of the status sync answered at the same instant apply
            # their reports (and refunds, for users met in any order) concurrently.
            self.world.fault("status:together")
            await self.world.answer_together(reads, faulty=True)
            return
        if reads and rng.random() < 0.5:
            parked = reads  # status answers race each other more often
        if parked:
            await self.world.answer(rng.choice(parked), faulty=True)

    async def step_crash(self) -> None:
        parked = self.world.parked()
        if parked:
            self.world.fault("worker:crash_at_await")
            await self.world.crash(self.world.rng.choice(parked).root)

    async def step_restart(self) -> None:
        self.world.fault("worker:restart_queue_lost")
        await self.world.restart()

    async def step_provider(self) -> None:
        self.provider.progress(self.world.rng)

    async def step_sync(self) -> None:
        """Another worker runs a provider's status sync now (a job delivered twice, or
        late), whatever else runs: syncs of one provider may overlap here."""
        ids = self.provider_ids
        provider_id = ids[0] if len(ids) == 1 else self.world.rng.choice(ids)
        self.world.spawn("sync", lambda: worker.sync_provider_statuses(self.ctx, provider_id))
        self.world.note(f"status sync of provider {provider_id} starts")
        await self.world.settle()

    def spawn_syncs(self) -> None:
        """The `sync_statuses` cron fired: each provider's sync job (enqueued with the
        provider's job id) is picked up at once."""
        for provider_id in self.provider_ids:
            label = "sync" if len(self.provider_ids) == 1 else f"sync:{provider_id}"
            self.world.spawn(label, partial(worker.sync_provider_statuses, self.ctx, provider_id))

    async def step_tick(self) -> None:
        rng = self.world.rng
        seconds = rng.choice([rng.randrange(1, 30), rng.randrange(30, 200), rng.randrange(1, 900)])
        await self.advance(seconds)

    async def advance(self, seconds: float) -> None:
        before = self.elapsed
        self.elapsed += seconds
        self.world.clock.advance(seconds)
        self.world.note(f"clock +{seconds}s")

        def crossed(period: int) -> bool:
            return int(self.elapsed // period) > int(before // period)

        if crossed(SWEEP_SECONDS):
            self.world.spawn("sweep", lambda: worker.sweep(self.ctx))
        if crossed(SYNC_SECONDS):
            self.spawn_syncs()
        if crossed(REFILL_SYNC_SECONDS):
            self.world.spawn("sync_refills", lambda: worker.sync_refills(self.ctx))
        await self.world.settle()

    # -- once faults stop -----------------------------------------------------------------------

    async def drain(self) -> None:
        """Answer every call and run every ready job, faithfully, until nothing is left."""
        world = self.world
        for _ in range(1000):
            parked = world.parked()
            reads = [c for c in parked if c.action == "status"]
            if len(reads) > 1:
                # Every page of a sync answered at once: they apply concurrently.
                await world.answer_together(reads, faulty=False)
                continue
            if parked:
                await world.answer(parked[0], faulty=False)
                continue
            ready = sorted(world.queue.ready(), key=lambda j: (j.key, j.not_before))
            if not ready:
                return
            world.queue.take(ready[0])
            self.run_job(ready[0])
            await world.settle()
        self.auditor.fail("drain: the system kept working without end")

    async def quiet(self) -> None:
        """Faults stop; within two periods every order must be final or in review."""
        world = self.world
        world.faults = False
        world.rng = random.Random(self.seed)
        await self.drain()
        for period in range(2):
            world.trace.append(f"quiet period {period + 1}")
            await self.advance(PERIOD_SECONDS)
            await self.drain()
            for _ in range(2):
                self.provider.progress(world.rng, finish_all=True)
                await self.advance(SYNC_SECONDS)
                await self.drain()
            await self.audit(f"quiet period {period + 1}")
        self.auditor.liveness()
        for violation in self.auditor.violations:
            if violation.startswith("liveness"):
                world.trace.append(f"  VIOLATION {violation}")
