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
    relay_retry_base_seconds: float = 30.0
    sending_stale_seconds: float = 120.0
    status_sync_seconds: int = 15
    # Demo wiring for `smm-panel run`.
    sandbox_port: int = 8001
    demo_balance: Decimal = Decimal("100")
    log_level: str = "INFO"
    log_json: bool = True


@lru_cache
def get_settings() -> Settings:
    return Settings()
