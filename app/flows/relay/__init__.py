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

The package splits the relay by job: `common` (claims, outcomes, backoff), `sending`
(claiming and sending), `recording` (recording answers), `failover`, `costs`, `sweep`
and `cancel`; its public names are re-exported here.
"""

from __future__ import annotations

from app.flows.relay.cancel import due_cancels, relay_cancel
from app.flows.relay.common import (
    FUNDS_ERROR,
    Answer,
    Claim,
    RelayedOrder,
    RelayOutcome,
    backoff,
    outgoing_fields,
    request_id_for,
    upstream_fields,
)
from app.flows.relay.costs import CostedOrder, UpstreamCost, upstream_costs
from app.flows.relay.failover import ORDER_ERRORS, fail_over, fails_over, give_up, next_provider
from app.flows.relay.recording import Bind, Fresh, record
from app.flows.relay.sending import (
    CAPPED_PAUSE,
    CLAIM_COLUMNS,
    RECORD_EVERY,
    RelayDue,
    RelayRun,
    SendSlots,
    claim_due,
    relay_due,
    relay_order,
    send,
)
from app.flows.relay.sweep import (
    due_orders,
    move_stale_sending_to_review,
    requeue_reviews_with_request_id,
)

__all__ = [
    "CAPPED_PAUSE",
    "CLAIM_COLUMNS",
    "FUNDS_ERROR",
    "ORDER_ERRORS",
    "RECORD_EVERY",
    "Answer",
    "Bind",
    "Claim",
    "CostedOrder",
    "Fresh",
    "RelayDue",
    "RelayOutcome",
    "RelayRun",
    "RelayedOrder",
    "SendSlots",
    "UpstreamCost",
    "backoff",
    "claim_due",
    "due_cancels",
    "due_orders",
    "fail_over",
    "fails_over",
    "give_up",
    "move_stale_sending_to_review",
    "next_provider",
    "outgoing_fields",
    "record",
    "relay_cancel",
    "relay_due",
    "relay_order",
    "request_id_for",
    "requeue_reviews_with_request_id",
    "send",
    "upstream_costs",
    "upstream_fields",
]
