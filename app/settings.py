"""Runtime configuration: every knob is an environment variable.

Secrets have a strength rule (`weak_secret`): `serve`, `worker` and `migrate` refuse to start
on a missing or weak SECRET_KEY and on a weak ADMIN_TOKEN; the embedded default generates
both once and keeps them under DATA_DIR.
"""

from __future__ import annotations

import json
import secrets
from decimal import Decimal
from functools import lru_cache
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MIN_SECRET_LENGTH = 32
# Values copied from examples and old defaults: never a secret, whatever their length.
PLACEHOLDERS = frozenset(
    {
        "change-me-in-production",
        "change-me",
        "changeme",
        "change_me",
        "secret",
        "password",
        "your-secret-key",
        "test-admin-token",
    }
)


def listening_url(host: str, port: int) -> str:
    """The address a browser on this machine reaches a server listening on host:port."""
    shown = "127.0.0.1" if host in ("", "0.0.0.0") else host  # noqa: S104 - a name, not a bind
    shown = "[::1]" if shown == "::" else (f"[{shown}]" if ":" in shown else shown)
    return f"http://{shown}:{port}"


def new_secret() -> str:
    """A fresh strong value for SECRET_KEY or ADMIN_TOKEN (43 URL-safe characters)."""
    return secrets.token_urlsafe(32)


def weak_secret(value: str | None) -> str | None:
    """Why `value` is not an acceptable secret, or None when it is."""
    if not value:
        return "is not set"
    if value.strip().lower() in PLACEHOLDERS or "change-me" in value.lower():
        return "is a known placeholder"
    if len(value) < MIN_SECRET_LENGTH:
        return f"is shorter than {MIN_SECRET_LENGTH} characters"
    return None


def database_name(url: str | None) -> str:
    """The database's name in DATABASE_URL (`smm` when unset or unreadable)."""
    path = urlsplit(url or "").path.strip("/")
    return path.split("/")[-1] or "smm"


class Settings(BaseSettings):
    """Every setting, with the description README's configuration table is printed from
    (`smm-panel settings --markdown`; tests/test_settings_table.py keeps the two equal)."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    # Servers and secrets.
    database_url: str | None = Field(
        default=None,
        description="`postgresql+asyncpg://user:pass@host/db` (plain `postgresql://` "
        "accepted); unset: `run` starts an embedded PostgreSQL under `DATA_DIR`",
    )
    redis_url: str | None = Field(
        default=None,
        description="`redis://host:6379/0`; unset: `run` starts an embedded Redis under `DATA_DIR`",
    )
    data_dir: str = Field(
        default=".data",
        description="where `run` keeps the embedded PostgreSQL and Redis, its generated "
        "`SECRET_KEY` and `ADMIN_TOKEN`, and `run.json` (the pids of a run, to recover from a "
        "killed one)",
    )
    admin_token: str | None = Field(
        default=None,
        description="the owner's bootstrap bearer token of `/admin/v1` (every permission; "
        "staff use their own tokens); unset: only staff tokens are accepted; when set, at "
        "least 32 characters and no placeholder, or `serve`/`worker`/`migrate` refuse to "
        "start (`run` generates one under `DATA_DIR`)",
    )
    secret_key: str = Field(
        default="",
        description="encrypts provider API keys and other secrets at rest; required: at "
        "least 32 characters, no placeholder (`smm-panel secret` prints one); "
        "`serve`/`worker`/`migrate` refuse to start without it (`run` generates one under "
        "`DATA_DIR`). Older keys may follow, comma-separated",
    )
    secret_key_previous: str = Field(
        default="",
        description="comma-separated older keys, still read (never written) until "
        "`smm-panel rotate-secret`",
    )
    currency: str = Field(default="USD", description="the panel's currency")
    host: str = Field(default="127.0.0.1", description="address `serve` and `run` listen on")
    port: int = Field(default=8000, description="port `serve` and `run` listen on")
    db_pool_size: int = Field(default=20, description="SQLAlchemy pool per process")
    db_max_overflow: int = Field(
        default=20, description="connections the SQLAlchemy pool may open beyond its size"
    )
    db_driver_pool_size: int = Field(
        default=16,
        description="plain asyncpg pool of the API v2 lean path (every action)",
    )
    db_listen: bool = Field(
        default=True,
        description="one listening connection per API process (PostgreSQL `LISTEN`) that "
        "lets `services` answer from memory while nothing changed; off behind a pooler in "
        "transaction mode (it keeps no session; `DB_POOLER=transaction` turns it off): one "
        "statement per call instead",
    )
    db_pooler: Literal["none", "transaction"] = Field(
        default="none",
        description="`transaction` when DATABASE_URL leads to a pooler in transaction mode "
        "(PgBouncer `pool_mode = transaction`): statements are prepared unnamed and never "
        "cached, and DB_LISTEN is off",
    )
    # The public API.
    api_max_body_bytes: int = Field(
        default=256 * 1024, description="request body limit of `/api/v2`"
    )
    max_ids_per_request: int = Field(
        default=100, description="ids accepted by multi-status, refill and cancel"
    )
    rate_limit_per_ip: int = Field(
        default=3000, description="API v2 calls per minute per client IP (0 = off)"
    )
    rate_limit_per_key: int = Field(
        default=1200, description="API v2 calls per minute per API key (0 = off)"
    )
    rate_limit_notify_per_ip: int = Field(
        default=300,
        description="payment gateway notifications per minute per client IP (0 = off)",
    )
    redis_prefix: str = Field(
        default="",
        description="namespace of every Redis key of this panel (its queue, job and cron ids, "
        "the worker's health check, rate limits, sign-in locks): panels sharing one Redis need "
        "different ones, the processes of one panel the same; unset = QUEUE_NAME when set, "
        "else `smm:<database name>`",
    )
    queue_name: str = Field(
        default="", description="the arq queue the worker consumes; unset = `<REDIS_PREFIX>:queue`"
    )
    # Upstream relay.
    provider_allow_private: bool = Field(
        default=False,
        description="provider URLs (set in the admin API, and every call the panel makes to a "
        "provider, its key included) may reach private, loopback, link-local and other "
        "addresses that are not globally routable: a provider on your own network. "
        "`smm-panel run` turns it on for its sandbox on 127.0.0.1 unless it is set",
    )
    provider_connect_timeout: float = Field(
        default=5.0, description="seconds to connect to a provider"
    )
    provider_read_timeout: float = Field(
        default=30.0, description="seconds to wait for a provider's answer"
    )
    provider_total_timeout: float = Field(
        default=60.0,
        gt=0,
        description="seconds a whole provider call may take (connect, send and the whole "
        "answer): an answer that dribbles in byte by byte never trips the read timeout, "
        "this deadline does (the outcome is then unknown, as after a read timeout)",
    )
    relay_max_attempts: int = Field(
        default=10,
        description="attempts before an order that cannot be sent is canceled and refunded",
    )
    relay_concurrency: int = Field(
        default=64, description="upstream `add` calls one worker process keeps in flight"
    )
    relay_provider_concurrency: int = Field(
        default=32,
        ge=1,
        description="upstream `add` calls one worker process keeps in flight to one "
        "provider: a slow provider holds at most this many of RELAY_CONCURRENCY's slots, "
        "the others relay with the rest",
    )
    relay_retry_base_seconds: float = Field(
        default=30.0, description="relay backoff base (doubles per attempt, capped at 1 h)"
    )
    sending_stale_seconds: float = Field(
        default=120.0,
        description="an upstream attempt without an outcome after this goes to the review "
        "queue (never resent blindly)",
    )
    status_sync_seconds: int = Field(
        default=15, description="how often statuses are polled upstream"
    )
    catalog_max_removed_share: Decimal = Field(
        default=Decimal("0.5"),
        ge=0,
        le=1,
        description="a catalog answer removing more than this share of a provider's "
        "services on sale is a failed sync (nothing changes, an alert is raised)",
    )
    catalog_new_as_drafts: bool = Field(
        default=False,
        description="the catalog sync imports new upstream services as disabled drafts",
    )
    stuck_after_seconds: int = Field(
        default=24 * 3600,
        ge=60,
        description="an active order without upstream progress this long is stuck (a "
        "service may set its own `stuck_after_seconds`)",
    )
    # `smm-panel run`.
    sandbox_port: int = Field(default=8001, description="the sandbox provider of `run`")
    demo_balance: Decimal = Field(
        default=Decimal("100"), description="the demo user's first balance (`run`)"
    )
    # Logs and metrics.
    log_level: str = Field(default="INFO", description="DEBUG, INFO, WARNING or ERROR")
    log_json: bool | None = Field(
        default=None,
        description="`true`: one JSON object per line (uvicorn's lines and tracebacks "
        "included); `false`: text lines; unset: coloured text on a terminal, JSON otherwise. "
        "API keys never reach them",
    )
    log_requests: bool = Field(
        default=True,
        description="one log line per HTTP request (method, route, status, duration, request id)",
    )
    prometheus_multiproc_dir: str | None = Field(
        default=None,
        description="directory where the processes of `serve --workers N` keep their metrics, "
        "so /metrics adds them up (prometheus_client's multiprocess mode); unset = a directory "
        "made for the run and removed after it. One of your own must be emptied before a start",
    )
    worker_metrics_port: int = Field(
        default=0,
        description="port of the worker's own Prometheus endpoint (relay outcomes, provider "
        "errors); 0 = off",
    )
    # Currencies: conversion into the panel's currency (admin API rates take precedence).
    currency_rates: dict[str, Decimal] = Field(
        default_factory=dict,
        description='JSON, panel currency per unit, e.g. `{"RUB": "0.011"}`; rates set in '
        "the admin API win. A configured payment gateway's currency needs one, or `serve` "
        "and `run` refuse to start",
    )
    # Deposits through payment gateways.
    public_url: str = Field(
        default="",
        description="where users and gateways reach the panel (mail links, the API page, "
        "YooKassa's `return_url`); `https://…` turns on HSTS and `Secure` cookies; unset: "
        "`http://HOST:PORT` (127.0.0.1 for a wildcard HOST)",
    )
    forwarded_allow_ips: str = Field(
        default="127.0.0.1",
        description="proxies whose `X-Forwarded-For`/`X-Forwarded-Proto`/`Forwarded` are "
        "believed: addresses or networks, comma-separated, or `*` (as uvicorn's "
        "`--forwarded-allow-ips`)",
    )
    # The web storefront (/web): what the operator shows on every page.
    panel_name: str = Field(
        default="SMM Panel",
        description="the storefront's name; what the operator sets at run time wins",
    )
    panel_logo: str | None = Field(
        default=None,
        description="the storefront's logo file (PNG, SVG, JPEG, WebP); what the operator "
        "sets at run time wins",
    )
    terms_file: str | None = Field(
        default=None,
        description="plain text file of the Terms of Service page (a placeholder says so "
        "until set); a text set at run time wins",
    )
    privacy_file: str | None = Field(
        default=None, description="plain text file of the Privacy Policy page (as `TERMS_FILE`)"
    )
    terms_of_use_file: str | None = Field(
        default=None, description="plain text file of the Terms of Use page (as `TERMS_FILE`)"
    )
    min_deposit: Decimal = Field(
        default=Decimal("1"), description="smallest deposit invoice, in the panel's currency"
    )
    robokassa_login: str | None = Field(default=None, description="Robokassa shop login")
    robokassa_password1: str | None = Field(
        default=None, description="Robokassa Password#1 (signs the payment links)"
    )
    robokassa_password2: str | None = Field(
        default=None, description="Robokassa Password#2 (checks the ResultURL notifications)"
    )
    robokassa_hash: str = Field(
        default="md5",
        description="the Robokassa shop's hash algorithm: md5, sha1, sha256, sha384, sha512",
    )
    robokassa_currency: str = Field(
        default="RUB", description="the currency Robokassa invoices are priced in"
    )
    robokassa_test: bool = Field(default=False, description="Robokassa's test mode")
    robokassa_url: str = Field(
        default="https://auth.robokassa.ru/Merchant/Index.aspx",
        description="Robokassa's payment page",
    )
    freekassa_merchant_id: str | None = Field(default=None, description="Free-Kassa shop id")
    freekassa_secret1: str | None = Field(
        default=None, description="Free-Kassa secret word 1 (signs the payment links)"
    )
    freekassa_secret2: str | None = Field(
        default=None, description="Free-Kassa secret word 2 (checks the notifications)"
    )
    freekassa_currency: str = Field(
        default="RUB", description="the currency Free-Kassa invoices are priced in"
    )
    freekassa_url: str = Field(
        default="https://pay.fk.money/", description="Free-Kassa's payment page"
    )
    yookassa_shop_id: str | None = Field(default=None, description="YooKassa shop id")
    yookassa_secret_key: str | None = Field(default=None, description="YooKassa secret key")
    yookassa_currency: str = Field(
        default="RUB", description="the currency YooKassa invoices are priced in"
    )
    yookassa_api_url: str = Field(
        default="https://api.yookassa.ru/v3", description="YooKassa's v3 API"
    )
    # Receipts of deposits (422-FZ, 54-FZ).
    fiscal_backend: Literal["none", "self-employed", "gateway"] = Field(
        default="none",
        description="receipts of credited deposits: none; self-employed (registered with the "
        "tax service's Мой налог API as NPD_INN); gateway (the 54-FZ receipt is passed to "
        "Robokassa and YooKassa with the payment)",
    )
    npd_api_url: str = Field(
        default="https://lknpd.nalog.ru/api/v1", description="the tax service's Мой налог API"
    )
    npd_inn: str | None = Field(default=None, description="the self-employed operator's INN")
    npd_password: str | None = Field(
        default=None, description="the password of the operator's Мой налог account"
    )
    npd_retry_seconds: int = Field(
        default=60,
        ge=1,
        description="first wait before a receipt is tried again (doubling, at most a day)",
    )
    fiscal_item_name: str = Field(
        default="Пополнение баланса",
        min_length=1,
        max_length=200,
        description="the service named on a receipt (followed by the receipt's number)",
    )
    referral_share: Decimal = Field(
        default=Decimal("0.05"),
        ge=0,
        le=1,
        description="share of a referred user's deposits credited to the referrer (0 = off)",
    )
    telegram_bot_token: str | None = Field(
        default=None,
        description="the panel's Telegram bot (from @BotFather): customers who link it get "
        "their notifications there; unset = no Telegram",
    )
    telegram_api_url: str = Field(
        default="https://api.telegram.org",
        description="the Telegram Bot API (another address for a local Bot API server)",
    )
    affiliate_payouts: Literal["balance", "request", "review"] = Field(
        default="balance",
        description="how referral rewards reach the referrer's balance: `balance` at once, "
        "`request` when the referrer asks for a payout, `review` when the operator approves "
        "the request",
    )
    affiliate_min_payout: Decimal = Field(
        default=Decimal(0),
        ge=0,
        description="the smallest payout a referrer may ask for (in the panel's currency)",
    )
    referral_reversal_days: int = Field(
        default=30,
        ge=0,
        description="a referred user's deposit reversed within this many days of its "
        "referral reward takes the reward back (0 = never)",
    )
    # Privacy.
    retention_days: int = Field(
        default=365,
        ge=1,
        description="money records of an erased user are kept this long, then purged",
    )
    activity_retention_days: int = Field(
        default=365,
        ge=1,
        description="audit log, upstream history and gateway notifications are kept this long",
    )
    # Mail and the customer API (/client/v1).
    mail_url: str = Field(
        default="console",
        description="`console` (mails are written to the log) or "
        "`smtp://user:pass@host:port` (`smtps://` for TLS)",
    )
    mail_from: str = Field(
        default="smm-panel <noreply@localhost>", description="sender of the panel's mails"
    )
    support_notify_email: str | None = Field(
        default=None, description="operators' address mailed for every new support ticket"
    )
    client_session_days: int = Field(
        default=30, ge=1, description="customer sign-in session lifetime, days"
    )
    client_verify_hours: int = Field(
        default=48, ge=1, description="email verification link lifetime, hours"
    )
    client_reset_minutes: int = Field(
        default=60, ge=1, description="password reset link lifetime, minutes"
    )
    client_invite_days: int = Field(
        default=7, ge=1, description="operator's invitation link lifetime, days"
    )
    client_attempts_per_account: int = Field(
        default=5,
        ge=1,
        description="failed sign-ins (or wrong tokens) per account before a lock; the "
        "operator's page locks an address after this many wrong admin tokens",
    )
    client_attempts_per_ip: int = Field(
        default=30,
        ge=1,
        description="failed attempts per IP (sign-in, mailed tokens) before a lock",
    )
    client_attempt_window_seconds: int = Field(
        default=900, ge=1, description="window in which failed attempts are counted"
    )
    client_lock_seconds: float = Field(
        default=30, gt=0, description="first lock; each further failure doubles it"
    )
    client_lock_max_seconds: float = Field(
        default=3600,
        gt=0,
        description="longest lock. Failures are counted in Redis, in each process's memory "
        "while Redis is down (never unlimited)",
    )
    client_deletion_days: int = Field(
        default=30, ge=1, description="deadline of a customer's deletion request, days"
    )
    # Staff (the operator's console and /admin/v1 tokens); sign-in guessing limits are the
    # customers' (CLIENT_ATTEMPTS_PER_ACCOUNT and the others above).
    staff_require_2fa: bool = Field(
        default=True, description="staff must sign in with a TOTP code (enrolled at first sign-in)"
    )
    staff_session_hours: int = Field(
        default=12, ge=1, description="console session lifetime, hours"
    )
    staff_invite_hours: int = Field(
        default=72, ge=1, description="staff invitation link lifetime, hours"
    )
    webhook_allow_private: bool = Field(
        default=False,
        description="customers' status webhooks may target addresses that are not globally "
        "routable (private, loopback, shared, link-local: tests, chained panels on one network)",
    )
    webhook_retry_base_seconds: float = Field(
        default=30,
        ge=0,
        description="first retry of a failed status webhook; each further one doubles",
    )
    webhook_give_up_hours: float = Field(
        default=72,
        gt=0,
        description="a webhook event undelivered this long disables the endpoint",
    )

    @model_validator(mode="after")
    def _public_url_follows_the_address(self) -> Settings:
        """Unset, PUBLIC_URL is where `serve` listens, so links follow PORT."""
        if not self.public_url:
            self.public_url = listening_url(self.host, self.port)
        return self

    @model_validator(mode="after")
    def _fold_previous_keys(self) -> Settings:
        """SECRET_KEY_PREVIOUS joins the keyring after the current key: reading tries each,
        writing uses the first (app/keyring.py)."""
        current, *older = [k.strip() for k in self.secret_key.split(",")]
        keys = [k for k in older if k]
        for old in self.secret_key_previous.split(","):
            if old.strip() and old.strip() not in keys and old.strip() != current:
                keys.append(old.strip())
        self.secret_key = ",".join([current, *keys])
        return self

    @property
    def redis_namespace(self) -> str:
        """REDIS_PREFIX as it applies: the panel's database is the panel, so its name tells
        panels apart when nothing was set (an explicit QUEUE_NAME already named the panel)."""
        if self.redis_prefix:
            return self.redis_prefix
        if self.queue_name:
            return self.queue_name
        return f"smm:{database_name(self.database_url)}"

    @property
    def arq_queue(self) -> str:
        """QUEUE_NAME as it applies."""
        return self.queue_name or f"{self.redis_namespace}:queue"

    @property
    def current_secret_key(self) -> str:
        return self.secret_key.split(",", 1)[0]

    @property
    def https(self) -> bool:
        return self.public_url.lower().startswith("https://")

    def unsafe_secrets(self) -> list[str]:
        """One line per secret that must not be used to start `serve`, `worker`, `migrate`."""
        problems = []
        why = weak_secret(self.current_secret_key)
        if why:
            problems.append(f"SECRET_KEY {why} (generate one with `smm-panel secret`)")
        if self.admin_token is not None:
            why = weak_secret(self.admin_token)
            if why:
                problems.append(f"ADMIN_TOKEN {why} (generate one with `smm-panel secret`)")
        return problems


@lru_cache
def get_settings() -> Settings:
    return Settings()


# --- README's configuration table, printed from the fields above ---

TABLE_BEGIN = (
    "<!-- settings: generated from app/settings.py by `make settings-table` "
    "(smm-panel settings --readme README.md); describe a setting there, not here -->"
)
TABLE_END = "<!-- settings: end -->"


def shown_default(value: object) -> str:
    """A default as the table shows it: `unset`, `true`, `{}`, `0.5`, `30`."""
    if value is None or value == "":
        return "unset"
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    if isinstance(value, dict):
        return f"`{json.dumps(value)}`"
    if isinstance(value, float) and value.is_integer():
        return f"`{int(value)}`"
    return f"`{value}`"


def settings_table() -> str:
    """The configuration table in Markdown: every setting, its default and meaning."""
    lines = ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        default = field.get_default(call_default_factory=True)
        meaning = (field.description or "").replace("|", "\\|")
        lines.append(f"| `{name.upper()}` | {shown_default(default)} | {meaning} |")
    return "\n".join(lines) + "\n"


def with_settings_table(readme: str) -> str:
    """`readme` with the table between its markers replaced by the current one."""
    begin, end = readme.find(TABLE_BEGIN), readme.find(TABLE_END)
    if begin < 0 or end < begin:
        raise ValueError("the settings table's markers are missing")
    head = readme[: begin + len(TABLE_BEGIN)]
    return f"{head}\n{settings_table()}{readme[end:]}"
