"""Prometheus metrics shared by the API and the worker, right with many processes.

`serve --workers N` runs N processes behind one port, and a scrape reaches any of them: with
PROMETHEUS_MULTIPROC_DIR set, each process keeps its values in that directory and
`exposition()` adds up every process's counters and histograms, so consecutive scrapes never
go backwards. `serve --workers N` sets one up itself (`shared_across`): a directory made for
the run and removed after it. Gauges are read at scrape time (or set by the job that
measured them): the most recent value of any process is the panel's (`mostrecent`).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

M = TypeVar("M", Counter, Gauge, Histogram)
MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"
log = logging.getLogger(__name__)


def gauge(name: str, documentation: str, labels: tuple[str, ...] = ()) -> Gauge:
    """A gauge holds the value last measured, whichever process measured it."""
    return Gauge(name, documentation, labels, multiprocess_mode="mostrecent")


_CHILDREN: dict[tuple[int, tuple[str, ...]], Any] = {}
MAX_CHILDREN = 10_000


def child(metric: M, *values: str) -> M:
    """`metric.labels(*values)`, looked up once: the per-request metrics of the API take
    their series from here (label values are bounded: actions, routes, statuses)."""
    key = (id(metric), values)
    found: M | None = _CHILDREN.get(key)
    if found is None:
        if len(_CHILDREN) >= MAX_CHILDREN:
            _CHILDREN.clear()
        found = _CHILDREN[key] = metric.labels(*values)
    return found


def exposition() -> bytes:
    """The text a scrape answers: every process's values when they share a directory."""
    if MULTIPROC_DIR not in os.environ:
        return generate_latest(REGISTRY)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return generate_latest(registry)


@contextmanager
def shared_across(processes: int, directory: str | None) -> Iterator[str | None]:
    """For `processes` API processes about to start: the directory they keep their values
    in (PROMETHEUS_MULTIPROC_DIR, set for them). The operator's own directory is used as it
    is; otherwise one is made for the run and removed after it. One process needs none."""
    if directory:
        os.environ[MULTIPROC_DIR] = directory
        yield directory
        return
    if processes < 2:
        yield None
        return
    made = tempfile.mkdtemp(prefix="smm-panel-metrics-")
    os.environ[MULTIPROC_DIR] = made
    log.info("metrics shared by the processes", extra={"directory": made})
    try:
        yield made
    finally:
        os.environ.pop(MULTIPROC_DIR, None)
        shutil.rmtree(made, ignore_errors=True)


REQUESTS = Counter("smm_api_requests_total", "API v2 calls", ["action", "outcome"])
REQUEST_SECONDS = Histogram("smm_api_request_seconds", "API v2 call latency", ["action"])
RELAY_OUTCOMES = Counter("smm_relay_outcomes_total", "Upstream add outcomes", ["outcome"])
PROVIDER_ERRORS = Counter(
    "smm_provider_errors_total", "Provider call failures", ["provider_id", "kind"]
)
PROVIDER_ALERTS = Counter(
    "smm_provider_alerts_total", "Provider problems needing an operator", ["provider_id", "kind"]
)
PROVIDER_ANOMALIES = Counter(
    "smm_provider_anomalies_total",
    "Provider status reports that could not be applied (flagged on their order)",
    ["provider_id", "kind"],
)
PROVIDER_BALANCE = gauge("smm_provider_balance", "Last known provider balance", ("provider_id",))
STATUS_UPDATES = Counter("smm_status_updates_total", "Orders changed by status sync")
REVIEW_QUEUE = gauge("smm_review_queue_orders", "Orders waiting for an operator decision")
ORDERS_BY_STATUS = gauge("smm_orders", "Orders by status (read at scrape time)", ("status",))
PAYMENT_NOTIFICATIONS = Counter(
    "smm_payment_notifications_total", "Gateway notifications", ["gateway", "outcome"]
)
PAYMENT_NOTIFICATIONS_TRUNCATED = Counter(
    "smm_payment_notifications_truncated_total",
    "Refused gateway notifications whose payload was stored truncated",
    ["gateway", "outcome"],
)
DEPOSITS = Counter("smm_deposits_total", "Deposits credited", ["gateway"])
HTTP_REQUESTS = Counter("smm_http_requests_total", "HTTP requests", ["method", "route", "status"])
HTTP_SECONDS = Histogram("smm_http_request_seconds", "HTTP request latency", ["route"])
QUEUE_DEPTH = gauge("smm_queue_jobs", "Jobs waiting in the queue (read at scrape time)")
LEDGER_VIOLATIONS = gauge(
    "smm_ledger_violations", "Ledger invariant violations found by the last scheduled audit"
)
LEDGER_CHECKED_AT = gauge(
    "smm_ledger_checked_at", "Unix time of the last scheduled ledger audit that completed"
)
DELETIONS_OVERDUE = gauge(
    "smm_deletion_requests_overdue",
    "Users' deletion requests open past their deadline (read at scrape time)",
)
ALERTS = Counter("smm_alerts_total", "Alerts raised for operators", ["kind"])
STUCK_ORDERS = gauge(
    "smm_stuck_orders", "Active orders without upstream progress past their service's stuck_after"
)
CATALOG_SYNCS = Counter("smm_catalog_syncs_total", "Provider catalog syncs", ["outcome"])
SUPPORT_OPEN = gauge("smm_support_open_tickets", "Support tickets not closed (read at scrape time)")
SUPPORT_FIRST_RESPONSE = Histogram(
    "smm_support_first_response_seconds",
    "Time from a ticket's opening to the first operator answer",
    buckets=(60, 300, 900, 3600, 4 * 3600, 12 * 3600, 86400, 3 * 86400, 7 * 86400),
)
SUPPORT_RESOLUTION = Histogram(
    "smm_support_resolution_seconds",
    "Time from a ticket's opening to its closing",
    buckets=(300, 3600, 4 * 3600, 12 * 3600, 86400, 3 * 86400, 7 * 86400, 30 * 86400),
)
