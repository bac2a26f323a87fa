"""Where the tests' PostgreSQL and Redis are, and the admin token of the test app."""

from __future__ import annotations

import os

BASE_DB = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def _redis_of_this_process(url: str) -> str:
    """Each process of a parallel run (pytest-xdist's gw0, gw1, ...) flushes a database of
    its own: the base database counted down by the worker's number."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker.startswith("gw"):
        return url
    base, _, db = url.rpartition("/")
    return f"{base}/{int(db or 0) - int(worker[2:])}"


TEST_REDIS = _redis_of_this_process(os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15"))
# Strong, as `serve` demands of a configured token.
ADMIN_TOKEN = "test-admin-token-0123456789-abcdefghijklmnop"
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

# Every table, emptied before each test that uses the app.
TABLES = (
    "client_traces, chargebacks, receipts, legal_acceptances, legal_versions, audit_log, "
    "upstream_events, refills, ledger_entries, orders, user_rates, services, categories, "
    "providers, api_keys, payments, payment_notifications, referral_rewards, referral_payouts, "
    "currency_rates, customer_sessions, customer_tokens, recovery_codes, customer_logins, "
    "deletion_requests, mail_outbox, tickets, ticket_messages, canned_answers, "
    "ticket_resolutions, users, alerts, catalog_changes, service_backups, storefront, "
    "staff_sessions, staff_tokens, staff_invitations, staff_settings, staff_members, news_reads, news, "
    "notification_outbox, notification_settings, telegram_state"
)

# The test app's SECRET_KEY: a strong one, as `serve` demands (the suite's own Settings).
SECRET_KEY = "test-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"
