"""Recording what came back from `add`: accepted orders bound to their upstream ids
together (ids another order holds are held as duplicates), failures one by one through
their rules (retry, review, failover, give up)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from sqlalchemy import (
    Row,
    update,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import Database, utcnow
from app.flows.relay.common import (
    FUNDS_ERROR,
    Answer,
    Claim,
    RelayOutcome,
    _in_savepoint,
    _reason,
    backoff,
    log,
)
from app.flows.relay.costs import UpstreamCost, upstream_costs
from app.flows.relay.failover import _requeue, _set_state, fail_over, fails_over, give_up
from app.metrics import PROVIDER_ALERTS, RELAY_OUTCOMES
from app.orders import anomalies
from app.orders.models import (
    UP_QUEUED,
    UP_REJECTED,
    UP_REVIEW,
    UP_SENDING,
    Order,
    UpstreamEvent,
)
from app.orders.service import refresh_parent
from app.orders.sql import SENT_SQL, sent_params
from app.providers.client import (
    ProviderError,
    ProviderPermanent,
    ProviderTransient,
    ProviderUnknownOutcome,
    read_upstream_id,
    shown,
)
from app.settings import Settings


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
