"""Runtime configuration: every knob is an environment variable.

Secrets have a strength rule (`weak_secret`): `serve`, `worker` and `migrate` refuse to start
on a missing or weak SECRET_KEY and on a weak ADMIN_TOKEN; the embedded default generates
both once and keeps them under DATA_DIR.
"""

from __future__ import annotations

import secrets
from decimal import Decimal
from functools import lru_cache

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


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    database_url: str | None = Field(
        default=None,
        description="postgresql+asyncpg://… URL; unset = embedded Postgres under DATA_DIR",
    )
    redis_url: str | None = Field(
        default=None, description="redis://… URL; unset = embedded Redis under DATA_DIR"
    )
    data_dir: str = Field(default=".data", description="where the embedded default keeps its data")
    admin_token: str | None = Field(
        default=None, description="bearer token for /admin/v1 (unset = admin API refuses all)"
    )
    secret_key: str = Field(
        default="",
        description="secret used to encrypt provider API keys at rest (>= 32 characters; "
        "`smm-panel secret` prints one); older keys may follow, comma-separated",
    )
    secret_key_previous: str = Field(
        default="",
        description="comma-separated older SECRET_KEYs, still read until `rotate-secret`",
    )
    currency: str = Field(default="USD", description="the panel's currency")
    host: str = "127.0.0.1"
    port: int = 8000
    db_pool_size: int = 20
    db_max_overflow: int = 20
    db_driver_pool_size: int = Field(
        default=16, description="connections of the API's hot-path pool (add, status)"
    )
    db_listen: bool = Field(
        default=True,
        description=(
            "keep one listening connection per API process (PostgreSQL LISTEN) so `services`"
            " answers from memory while nothing changed; off behind a pooler that keeps no"
            " session (transaction pooling): one statement per call instead"
        ),
    )
    api_max_body_bytes: int = Field(default=256 * 1024, description="request body size limit")
    max_ids_per_request: int = 100
    rate_limit_per_ip: int = Field(
        default=3000, description="API v2 calls per minute per IP (0 = off)"
    )
    rate_limit_per_key: int = Field(
        default=1200, description="API v2 calls per minute per key (0 = off)"
    )
    rate_limit_notify_per_ip: int = Field(
        default=300, description="payment gateway notifications per minute per IP (0 = off)"
    )
    queue_name: str = Field(default="arq:queue", description="arq queue the worker consumes")
    # Upstream relay.
    provider_connect_timeout: float = 5.0
    provider_read_timeout: float = 30.0
    relay_max_attempts: int = 10
    # Upstream `add` calls one worker process keeps in flight.
    relay_concurrency: int = 64
    relay_retry_base_seconds: float = 30.0
    sending_stale_seconds: float = 120.0
    status_sync_seconds: int = 15
    # Catalog sync (per provider, every `providers.sync_minutes`): an answer that would
    # remove more than this share of the provider's services is a failed sync.
    catalog_max_removed_share: Decimal = Field(default=Decimal("0.5"), ge=0, le=1)
    catalog_new_as_drafts: bool = Field(
        default=False, description="import new upstream services as disabled drafts"
    )
    # An active order without upstream progress for this long is stuck (a service may
    # set its own `stuck_after_seconds`).
    stuck_after_seconds: int = Field(default=24 * 3600, ge=60)
    # Demo wiring for `smm-panel run`.
    sandbox_port: int = 8001
    demo_balance: Decimal = Decimal("100")
    log_level: str = "INFO"
    log_json: bool | None = Field(
        default=None,
        description="JSON lines (true) or coloured text (false); unset = JSON unless stdout "
        "is a terminal",
    )
    log_requests: bool = Field(default=True, description="one JSON log line per HTTP request")
    worker_metrics_port: int = Field(
        default=0, description="port of the worker's own Prometheus endpoint (0 = off)"
    )
    # Currencies: conversion into the panel's currency (admin API rates take precedence).
    currency_rates: dict[str, Decimal] = Field(
        default_factory=dict,
        description='JSON, e.g. {"RUB": "0.011"}: panel currency per unit of each currency',
    )
    # Deposits through payment gateways.
    public_url: str = Field(
        default="http://127.0.0.1:8000",
        description="where users and gateways reach the panel; https:// turns on HSTS and "
        "Secure cookies",
    )
    forwarded_allow_ips: str = Field(
        default="127.0.0.1",
        description="proxies whose X-Forwarded-For/Forwarded headers are believed: "
        "comma-separated IPs or networks, or * (as uvicorn's --forwarded-allow-ips)",
    )
    # The web storefront (/web): what the operator shows on every page.
    panel_name: str = Field(default="SMM Panel", description="the panel's name on its pages")
    panel_logo: str | None = Field(
        default=None, description="path to the logo file (PNG, SVG, JPEG or WebP) on the pages"
    )
    terms_file: str | None = Field(default=None, description="path to the Terms of Service text")
    privacy_file: str | None = Field(default=None, description="path to the Privacy Policy text")
    terms_of_use_file: str | None = Field(default=None, description="path to the Terms of Use text")
    min_deposit: Decimal = Field(default=Decimal("1"), description="in the panel's currency")
    robokassa_login: str | None = None
    robokassa_password1: str | None = None
    robokassa_password2: str | None = None
    robokassa_hash: str = Field(default="md5", description="md5, sha1, sha256, sha384, sha512")
    robokassa_currency: str = "RUB"
    robokassa_test: bool = False
    robokassa_url: str = "https://auth.robokassa.ru/Merchant/Index.aspx"
    freekassa_merchant_id: str | None = None
    freekassa_secret1: str | None = None
    freekassa_secret2: str | None = None
    freekassa_currency: str = "RUB"
    freekassa_url: str = "https://pay.fk.money/"
    yookassa_shop_id: str | None = None
    yookassa_secret_key: str | None = None
    yookassa_currency: str = "RUB"
    yookassa_api_url: str = "https://api.yookassa.ru/v3"
    # Referral program: the share of a referred user's deposits credited to the referrer.
    referral_share: Decimal = Field(default=Decimal("0.05"), ge=0, le=1)
    # Privacy: money records of an erased user are kept this long, then purged; activity
    # logs (audit, upstream events, gateway notifications) are kept this long.
    retention_days: int = Field(default=365, ge=1)
    activity_retention_days: int = Field(default=365, ge=1)
    # Mail and the customer API (/client/v1).
    mail_url: str = Field(
        default="console", description="`console` (log the message) or smtp://user:pass@host:port"
    )
    mail_from: str = Field(default="smm-panel <noreply@localhost>", description="sender")
    support_notify_email: str | None = Field(
        default=None, description="operators' address mailed for every new support ticket"
    )
    client_session_days: int = Field(default=30, ge=1, description="sign-in session lifetime")
    client_verify_hours: int = Field(default=48, ge=1, description="email verification link")
    client_reset_minutes: int = Field(default=60, ge=1, description="password reset link")
    client_invite_days: int = Field(default=7, ge=1, description="operator's invitation link")
    client_attempts_per_account: int = Field(
        default=5, ge=1, description="failed sign-ins per account before a lock"
    )
    client_attempts_per_ip: int = Field(
        default=30, ge=1, description="failed attempts per IP (sign-in, tokens) before a lock"
    )
    client_attempt_window_seconds: int = Field(default=900, ge=1)
    client_lock_seconds: float = Field(
        default=30, gt=0, description="first lock; each further failure doubles it"
    )
    client_lock_max_seconds: float = Field(default=3600, gt=0)
    client_deletion_days: int = Field(
        default=30, ge=1, description="deadline of a deletion request"
    )
    # Staff (the operator's console and /admin/v1 tokens); sign-in guessing limits are the
    # customers' (CLIENT_ATTEMPTS_PER_ACCOUNT and the others above).
    staff_require_2fa: bool = Field(
        default=True, description="staff must sign in with a TOTP code (enrolled at first sign-in)"
    )
    staff_session_hours: int = Field(default=12, ge=1, description="console session lifetime")
    staff_invite_hours: int = Field(default=72, ge=1, description="staff invitation link")
    webhook_allow_private: bool = Field(
        default=False,
        description="status webhooks may target private and loopback addresses (tests, "
        "chained panels on one network)",
    )
    webhook_retry_base_seconds: float = Field(
        default=30, ge=0, description="first retry of a failed webhook; each further doubles"
    )
    webhook_give_up_hours: float = Field(
        default=72, gt=0, description="an event undelivered this long disables the endpoint"
    )

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
