"""The model and the auditor.

The model is a small in-memory account of users' money and orders, written without the
code's help: what each user deposited (acknowledged top-ups and settled payments), what
each acknowledged `add` charged (rate × quantity × runs / 1000), and which orders exist.
It predicts the allowed outcomes of every reply (`add` succeeds exactly when the
predicted balance covers the predicted charge and no identical order is active; a
replayed payment credits nothing…).

After every step the auditor compares the database with the model and with the simulated
provider's truth:

- every balance equals the sum of its ledger entries and never falls below its floor
  (app/ledger/service.py `check_invariants`, which also checks each order's money);
- each user's balance is what the model predicts (deposits − charges + refunds), and so
  is the total: Σ deposits − Σ charges + Σ refunds = Σ balances;
- every order is charged once and refunded at most once, never more than charged, and a
  refund follows a rule: a Canceled order gets its charge back, a Partial one
  remains × charge / quantity rounded down; a provider must really have reported that
  status, and an order refunded as "not placed upstream" must never have been created
  there;
- no order was created upstream twice (the simulated provider counts creations);
- every acknowledged `add` exists, with its user and charge;
- a final status never changes;
- liveness, once faults stop: every order is final or in the review queue.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.ledger.service import check_invariants
from sim.provider import FINAL, SimProvider

ACTIVE = ("Pending", "In progress", "Processing")
NOT_PLACED = ("withdrawn", "rejected")


@dataclass(frozen=True)
class Known:
    """An acknowledged order, as its `add` answered."""

    id: int
    user_id: int
    service_id: int
    link: str
    charge: Decimal


@dataclass(frozen=True)
class Row:
    id: int
    parent_id: int | None
    user_id: int
    service_id: int
    link: str
    status: str
    upstream_state: str
    quantity: int
    remains: int | None
    charge: Decimal
    refunded: Decimal
    provider_order_id: str | None


def allowed_partial_refunds(charge: Decimal, quantity: int, remains: int) -> set[Decimal]:
    """remains × charge / quantity rounded down (to 5 places, or to the charge's own 8)."""
    exact = charge * remains / quantity
    return {
        min(charge, exact.quantize(Decimal(1).scaleb(-places), rounding=ROUND_DOWN))
        for places in (5, 8)
    }


@dataclass
class Model:
    deposits: defaultdict[int, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    charges: defaultdict[int, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    refunds: defaultdict[int, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    orders: dict[int, Known] = field(default_factory=dict)
    payment_refs: dict[str, tuple[int, Decimal]] = field(default_factory=dict)
    paid: set[int] = field(default_factory=set)
    charged: set[int] = field(default_factory=set)  # orders with a charge entry
    refunded: set[int] = field(default_factory=set)  # orders with a refund entry
    refund_amounts: dict[int, Decimal] = field(default_factory=dict)
    finals: dict[int, tuple[str, int | None]] = field(default_factory=dict)
    last_entry: int = 0
    rows: dict[int, Row] = field(default_factory=dict)  # the orders as last read

    def balance(self, user_id: int) -> Decimal:
        return self.deposits[user_id] - self.charges[user_id] + self.refunds[user_id]

    def active_duplicate(self, user_id: int, service_id: int, link: str) -> bool:
        return any(
            r.parent_id is None
            and r.user_id == user_id
            and r.service_id == service_id
            and r.link == link
            and r.status in ACTIVE
            for r in self.rows.values()
        )


class Auditor:
    def __init__(self, model: Model, provider: SimProvider) -> None:
        self.model = model
        self.provider = provider
        self.violations: list[str] = []

    def fail(self, text_: str) -> None:
        if text_ not in self.violations:
            self.violations.append(text_)

    async def read_orders(self, session: AsyncSession) -> None:
        rows = await session.execute(
            text(
                "SELECT id, parent_id, user_id, service_id, link, status, upstream_state,"
                " quantity, remains, charge, refunded, provider_order_id FROM orders"
            )
        )
        self.model.rows = {r.id: Row(*r) for r in rows}

    async def check(self, session: AsyncSession) -> None:
        model = self.model
        report = await check_invariants(session)
        for violation in report.violations:
            self.fail(f"ledger invariant {violation}")
        await self.read_orders(session)
        await self._entries(session)
        balances = {
            int(user_id): Decimal(balance)
            for user_id, balance in await session.execute(text("SELECT id, balance FROM users"))
        }
        for user_id, balance in sorted(balances.items()):
            if balance != model.balance(user_id):
                predicted = model.balance(user_id)
                self.fail(
                    f"user {user_id}: balance {balance}, the model predicts {predicted}"
                    f" (deposits {model.deposits[user_id]} − charges {model.charges[user_id]}"
                    f" + refunds {model.refunds[user_id]})"
                )
        total = sum(model.deposits.values(), Decimal(0)) - sum(model.charges.values(), Decimal(0))
        total += sum(model.refunds.values(), Decimal(0))
        if total != sum(balances.values(), Decimal(0)):
            self.fail(f"Σ deposits − Σ charges + Σ refunds = {total} ≠ Σ balances")
        self._orders()
        for ours, count in sorted(self.provider.creations.items()):
            if count > 1:
                self.fail(f"order {ours} was created upstream {count} times")

    async def _entries(self, session: AsyncSession) -> None:
        model = self.model
        entries = await session.execute(
            text(
                "SELECT id, user_id, kind, amount, order_id FROM ledger_entries"
                " WHERE id > :last ORDER BY id"
            ),
            {"last": model.last_entry},
        )
        for entry_id, user_id, kind, amount, order_id in entries:
            model.last_entry = entry_id
            if kind == "charge":
                if order_id in model.charged:
                    self.fail(f"order {order_id} charged twice (entry {entry_id})")
                model.charged.add(order_id)
            elif kind == "refund":
                model.refunds[user_id] += amount
                self._refund(entry_id, order_id, Decimal(amount))
            elif kind != "deposit":
                self.fail(f"unexpected ledger entry {entry_id} of kind {kind}")

    def _refund(self, entry_id: int, order_id: int | None, amount: Decimal) -> None:
        model = self.model
        row = model.rows.get(order_id or 0)
        if row is None:
            self.fail(f"refund entry {entry_id} for no order ({order_id})")
            return
        if order_id in model.refunded:
            self.fail(f"order {order_id} refunded twice (entry {entry_id})")
        model.refunded.add(row.id)
        model.refund_amounts.setdefault(row.id, amount)
        where = f"refund entry {entry_id} of order {row.id} ({row.status}, {row.upstream_state})"
        if row.status == "Canceled":
            if amount != row.charge:
                self.fail(f"{where}: {amount}, a cancel refunds the charge {row.charge}")
        elif row.status == "Partial":
            allowed = allowed_partial_refunds(row.charge, row.quantity, row.remains or 0)
            if amount not in allowed:
                self.fail(f"{where}: {amount}, allowed {sorted(allowed)}")
        else:
            self.fail(f"{where}: refunded while not Canceled or Partial")
        created = self.provider.creations.get(row.id, 0)
        if row.upstream_state in NOT_PLACED and created:
            self.fail(f"{where}: refunded as not placed, but created upstream")
        if row.upstream_state == "sent" and row.provider_order_id is not None:
            up = self.provider.orders.get(row.provider_order_id)
            reported = up.reports if up is not None else []
            remains = row.quantity if row.status == "Canceled" else row.remains
            if not any(s == row.status and min(r, row.quantity) == remains for s, r in reported):
                self.fail(f"{where}: the provider never reported it (reports {reported})")

    def _orders(self) -> None:
        model = self.model
        for known in model.orders.values():
            row = model.rows.get(known.id)
            if row is None:
                self.fail(f"acknowledged order {known.id} does not exist")
                continue
            if (row.user_id, row.charge) != (known.user_id, known.charge):
                self.fail(f"acknowledged order {known.id} differs: {row} vs {known}")
            if known.charge > 0 and known.id not in model.charged:
                self.fail(f"acknowledged order {known.id} has no charge entry")
        for row in model.rows.values():
            if row.refunded > row.charge:
                self.fail(f"order {row.id} refunded {row.refunded} > charged {row.charge}")
            if row.status in FINAL:
                first = model.finals.setdefault(row.id, (row.status, row.remains))
                if first != (row.status, row.remains):
                    self.fail(
                        f"order {row.id} was final {first} and changed to"
                        f" {(row.status, row.remains)}"
                    )

    def liveness(self) -> None:
        """Every order final or in review (a drip-feed parent: each of its runs)."""
        rows = self.model.rows
        runs: defaultdict[int, list[Row]] = defaultdict(list)
        for row in rows.values():
            if row.parent_id is not None:
                runs[row.parent_id].append(row)
        for row in sorted(rows.values(), key=lambda r: r.id):
            if row.upstream_state == "dripfeed":
                settled = all(
                    r.status in FINAL or r.upstream_state == "review" for r in runs[row.id]
                )
                if row.status not in FINAL and not settled:
                    self.fail(f"liveness: drip-feed order {row.id} is stuck ({row.status})")
            elif row.status not in FINAL and row.upstream_state != "review":
                self.fail(f"liveness: order {row.id} is stuck ({row.status}, {row.upstream_state})")
