"""Every table, imported in one place for Alembic and metadata users."""

from app.accounts.models import ApiKey, User
from app.alerts.models import Alert
from app.audit.models import AuditEntry
from app.catalog.models import Category, Service, ServiceBackup, UserRate
from app.currencies.models import CurrencyRate
from app.db import Base
from app.ledger.models import LedgerEntry
from app.orders.models import Order, UpstreamEvent
from app.payments.models import Payment, PaymentNotification
from app.providers.models import CatalogChange, Provider
from app.referrals.models import ReferralReward
from app.refills.models import Refill

__all__ = [
    "Alert",
    "ApiKey",
    "AuditEntry",
    "Base",
    "CatalogChange",
    "Category",
    "CurrencyRate",
    "LedgerEntry",
    "Order",
    "Payment",
    "PaymentNotification",
    "Provider",
    "ReferralReward",
    "Refill",
    "Service",
    "ServiceBackup",
    "UpstreamEvent",
    "User",
    "UserRate",
]
