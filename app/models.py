"""Every table, imported in one place for Alembic and metadata users."""

from app.accounts.models import ApiKey, User
from app.alerts.models import Alert
from app.audit.models import AuditEntry
from app.catalog.models import Category, Service, ServiceBackup, UserRate
from app.currencies.models import CurrencyRate
from app.customers.models import CustomerLogin, CustomerSession, CustomerToken, RecoveryCode
from app.db import Base
from app.ledger.models import LedgerEntry
from app.legal.models import LegalAcceptance, LegalVersion
from app.mail.models import OutgoingMail
from app.news.models import News, NewsRead
from app.notifications.models import Notification, NotificationSettings, TelegramState
from app.orders.models import Order, UpstreamEvent
from app.payments.models import Chargeback, Payment, PaymentNotification
from app.privacy.models import DeletionRequest
from app.providers.models import CatalogChange, Provider
from app.receipts.models import Receipt
from app.referrals.models import ClientTrace, ReferralPayout, ReferralReward
from app.refills.models import Refill
from app.staff.models import (
    StaffInvitation,
    StaffMember,
    StaffSession,
    StaffSettings,
    StaffToken,
)
from app.storefront.models import Storefront
from app.tickets.models import CannedAnswer, ReviewResolution, Ticket, TicketMessage
from app.webhooks.models import WebhookEndpoint, WebhookEvent

__all__ = [
    "Alert",
    "ApiKey",
    "AuditEntry",
    "Base",
    "CannedAnswer",
    "CatalogChange",
    "Category",
    "Chargeback",
    "ClientTrace",
    "CurrencyRate",
    "CustomerLogin",
    "CustomerSession",
    "CustomerToken",
    "DeletionRequest",
    "LedgerEntry",
    "LegalAcceptance",
    "LegalVersion",
    "News",
    "NewsRead",
    "Notification",
    "NotificationSettings",
    "Order",
    "OutgoingMail",
    "Payment",
    "PaymentNotification",
    "Provider",
    "Receipt",
    "RecoveryCode",
    "ReferralPayout",
    "ReferralReward",
    "Refill",
    "ReviewResolution",
    "Service",
    "ServiceBackup",
    "StaffInvitation",
    "StaffMember",
    "StaffSession",
    "StaffSettings",
    "StaffToken",
    "Storefront",
    "TelegramState",
    "Ticket",
    "TicketMessage",
    "UpstreamEvent",
    "User",
    "UserRate",
    "WebhookEndpoint",
    "WebhookEvent",
]
