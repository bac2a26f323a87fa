"""SQL statements that restate a Python rule of orders, for speed. Each takes its state
names and constants from app.orders.models (never a state literal inside the SQL) and has
a named equivalence test that runs it and its Python twin on the same rows
(tests/test_sql_twins.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import TextClause, text

from app.orders.models import (
    ACTIVE_STATUSES,
    COMPLETED,
    UP_DRIPFEED,
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
            AND o.status IN ({_in(ACTIVE_STATUSES)})
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
            AND o.status IN ({_in(ACTIVE_STATUSES)})
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
    """  # noqa: S608 (only constants of app.orders.models are formatted in)
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
    """  # noqa: S608
)
