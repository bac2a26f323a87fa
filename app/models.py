"""Every table, imported in one place for Alembic and metadata users."""

from app.accounts.models import ApiKey, User
from app.audit.models import AuditEntry
from app.catalog.models import Category, Service, UserRate
from app.db import Base
from app.ledger.models import LedgerEntry
from app.orders.models import Order, UpstreamEvent
from app.providers.models import Provider
from app.refills.models import Refill

__all__ = [
    "ApiKey",
    "AuditEntry",
    "Base",
    "Category",
    "LedgerEntry",
    "Order",
    "Provider",
    "Refill",
    "Service",
    "UpstreamEvent",
    "User",
    "UserRate",
]
