"""Every table, imported in one place for Alembic and metadata users."""

from app.accounts.models import ApiKey, User
from app.audit.models import AuditEntry
from app.catalog.models import Category, Service, UserRate
from app.currencies.models import CurrencyRate
from app.customers.models import CustomerLogin, CustomerSession, CustomerToken, RecoveryCode
from app.db import Base
from app.ledger.models import LedgerEntry
from app.mail.models import OutgoingMail
from app.orders.models import Order, UpstreamEvent
from app.payments.models import Payment, PaymentNotification
from app.privacy.models import DeletionRequest
from app.providers.models import Provider
from app.referrals.models import ReferralReward
from app.refills.models import Refill
from app.webhooks.models import WebhookEndpoint, WebhookEvent

__all__ = [
    "ApiKey",
    "AuditEntry",
    "Base",
    "Category",
    "CurrencyRate",
    "CustomerLogin",
    "CustomerSession",
    "CustomerToken",
    "DeletionRequest",
    "LedgerEntry",
    "Order",
    "OutgoingMail",
    "Payment",
    "PaymentNotification",
    "Provider",
    "RecoveryCode",
    "ReferralReward",
    "Refill",
    "Service",
    "UpstreamEvent",
    "User",
    "UserRate",
    "WebhookEndpoint",
    "WebhookEvent",
]
