"""Runtime configuration: every knob is an environment variable."""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


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
        default="change-me-in-production",
        description="secret used to encrypt provider API keys at rest",
    )
    currency: str = Field(default="USD", description="the panel's currency")
    host: str = "127.0.0.1"
    port: int = 8000
    db_pool_size: int = 20
    db_max_overflow: int = 20
    db_driver_pool_size: int = Field(
        default=16, description="connections of the API's hot-path pool (add, status)"
    )
    api_max_body_bytes: int = Field(default=256 * 1024, description="request body size limit")
    max_ids_per_request: int = 100
    rate_limit_per_ip: int = Field(
        default=3000, description="API v2 calls per minute per IP (0 = off)"
    )
    rate_limit_per_key: int = Field(
        default=1200, description="API v2 calls per minute per key (0 = off)"
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
    # Demo wiring for `smm-panel run`.
    sandbox_port: int = 8001
    demo_balance: Decimal = Decimal("100")
    log_level: str = "INFO"
    log_json: bool = True
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
        default="http://127.0.0.1:8000", description="where users and gateways reach the panel"
    )
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


@lru_cache
def get_settings() -> Settings:
    return Settings()
