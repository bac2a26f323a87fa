"""SQL statements that restate a Python rule of orders, for speed. Each takes its state
names and constants from app.orders.models (never a state literal inside the SQL) and has
a named equivalence test that runs it and its Python twin on the same rows
(tests/test_sql_twins.py)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy import TextClause, text

from app.orders.models import (
    ACTIVE_STATUSES,
    COMPLETED,
    IN_PROGRESS,
    UP_DRIPFEED,
    UP_REVIEW,
    UP_SENDING,
    UP_SENT,
)
from app.orders.service import StatusReport
from app.orders.types import SubscriptionsType


def _quoted(value: str) -> str:
    assert "'" not in value, value  # names of states, never user input
    return f"'{value}'"


def _in(values: Sequence[str]) -> str:
    return ", ".join(_quoted(v) for v in values)


# ---------------------------------------------------------------------------------------
# Status sync and relay (app/flows/sync.py, app/flows/relay.py)
# ---------------------------------------------------------------------------------------

PROGRESS_FROM = ACTIVE_STATUSES  # final orders never move on a report

# The bulk twin of `orders.service.apply_status` for reports that move no money (In
# progress, Processing, Completed): the same values, the same guards (only active orders
# move; a drip-feed parent follows its runs), rows locked in id order (concurrent pages
# cannot deadlock), one upstream event per order that changed. Twin test:
# tests/test_sql_twins.py::test_progress_sql_is_the_twin_of_apply_status.
PROGRESS_SQL: TextClause = text(
    f"""
    WITH v AS (
        SELECT * FROM unnest(
            CAST(:ids AS bigint[]), CAST(:statuses AS text[]),
            CAST(:start_counts AS bigint[]), CAST(:remains AS bigint[])
        ) AS v(id, status, start_count, remains)
    ), locked AS (
        SELECT o.id FROM orders AS o
        WHERE o.id = ANY(CAST(:ids AS bigint[]))
            AND o.status IN ({_in(PROGRESS_FROM)})
            AND o.upstream_state <> {_quoted(UP_DRIPFEED)}
        ORDER BY o.id
        FOR UPDATE
    ), changed AS (
        UPDATE orders AS o SET
            status = v.status,
            start_count = CASE WHEN v.start_count >= 0 THEN v.start_count
                ELSE o.start_count END,
            remains = CASE WHEN v.status = {_quoted(COMPLETED)} THEN 0
                WHEN v.remains IS NULL THEN o.remains
                ELSE LEAST(GREATEST(v.remains, 0), o.quantity) END,
            finished_at = CASE WHEN v.status = {_quoted(COMPLETED)} THEN now()
                ELSE o.finished_at END,
            updated_at = now()
        FROM v, locked
        WHERE o.id = v.id AND locked.id = v.id
            AND o.status IN ({_in(PROGRESS_FROM)})
            AND o.upstream_state <> {_quoted(UP_DRIPFEED)}
            AND (v.status <> o.status OR v.status = {_quoted(COMPLETED)}
                OR v.start_count >= 0 OR v.remains IS NOT NULL)
        RETURNING o.id, o.parent_id, v.status, v.start_count, v.remains
    ), events AS (
        INSERT INTO upstream_events (order_id, action, outcome, detail, created_at)
        SELECT id, 'status', status,
            jsonb_build_object(
                'source', 'provider', 'start_count', start_count, 'remains', remains
            ),
            now()
        FROM changed
    )
    SELECT id, parent_id FROM changed
    """
)


def progress_params(reports: Sequence[tuple[int, StatusReport]]) -> dict[str, list[Any]]:
    """The parameters of PROGRESS_SQL for (order id, StatusReport) pairs."""
    return {
        "ids": [order_id for order_id, _ in reports],
        "statuses": [report.status for _, report in reports],
        "start_counts": [report.start_count for _, report in reports],
        "remains": [report.remains for _, report in reports],
    }


# Subscriptions: how many posts the provider has served, shown by `status`.
POSTS_SQL: TextClause = text(
    f"""
    UPDATE orders AS o SET
        params = o.params || jsonb_build_object('posts_done', v.posts),
        updated_at = now()
    FROM unnest(CAST(:ids AS bigint[]), CAST(:posts AS bigint[])) AS v(id, posts)
    WHERE o.id = v.id AND o.type = {_quoted(SubscriptionsType.name)}
    """
)


# Upstream states a provider's order id may be recorded from: the relay's own claims
# (`sending`) and, by an operator, orders whose outcome was unknown (`review`). Either way
# only once: an order that has a provider order id keeps it.
SENT_FROM = (UP_SENDING, UP_REVIEW)

# The bulk twin of `flows.review.review_mark_sent` for the relay's accepted orders: the
# same values (sent, In progress, the provider's order id, what it bills for it) under the
# same guards, one upstream event per order. Twin test:
# tests/test_sql_twins.py::test_sent_sql_is_the_twin_of_review_mark_sent.
SENT_SQL: TextClause = text(
    f"""
    WITH v AS (
        SELECT * FROM unnest(
            CAST(:ids AS bigint[]), CAST(:provider_order_ids AS text[]),
            CAST(:priced AS boolean[]), CAST(:charges AS numeric[]),
            CAST(:currencies AS text[]), CAST(:fx_rates AS numeric[])
        ) AS v(id, provider_order_id, priced, provider_charge, provider_currency, fx_rate)
    ), sent AS (
        UPDATE orders AS o SET
            upstream_state = {_quoted(UP_SENT)},
            provider_order_id = v.provider_order_id,
            status = {_quoted(IN_PROGRESS)},
            sending_since = NULL,
            last_error = NULL,
            provider_charge = CASE WHEN v.priced THEN v.provider_charge ELSE o.provider_charge END,
            provider_currency =
                CASE WHEN v.priced THEN v.provider_currency ELSE o.provider_currency END,
            fx_rate = CASE WHEN v.priced THEN v.fx_rate ELSE o.fx_rate END,
            updated_at = now()
        FROM v
        WHERE o.id = v.id
            AND o.upstream_state IN ({_in(SENT_FROM)})
            AND o.provider_order_id IS NULL
        RETURNING o.id, o.cancel_state
    ), events AS (
        INSERT INTO upstream_events (order_id, action, outcome, detail, created_at)
        SELECT v.id, 'add', 'sent', jsonb_build_object('provider_order_id', v.provider_order_id),
            now()
        FROM v
    )
    SELECT id, cancel_state FROM sent
    """
)


class Billed(Protocol):
    """What the provider bills for an order (flows.relay.UpstreamCost)."""

    @property
    def charge(self) -> Decimal: ...
    @property
    def currency(self) -> str: ...
    @property
    def fx_rate(self) -> Decimal | None: ...


def sent_params(
    sent: Sequence[tuple[int, str]], costs: Mapping[int, Billed]
) -> dict[str, list[Any]]:
    """The parameters of SENT_SQL for (order id, provider order id) pairs; orders without
    a cost keep the cost columns they have."""
    return {
        "ids": [order_id for order_id, _ in sent],
        "provider_order_ids": [provider_order_id for _, provider_order_id in sent],
        "priced": [order_id in costs for order_id, _ in sent],
        "charges": [costs[i].charge if i in costs else None for i, _ in sent],
        "currencies": [costs[i].currency if i in costs else None for i, _ in sent],
        "fx_rates": [costs[i].fx_rate if i in costs else None for i, _ in sent],
    }
