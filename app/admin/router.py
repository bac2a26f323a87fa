"""The operator API (/admin/v1), assembled from the routers of the domains and flows.

Every route needs a known caller (a staff member's API token or ADMIN_TOKEN) and declares
the permission it needs (`require(...)`, app/http/auth.py; the matrix is app/staff/roles.py);
every change writes its audit entry, naming who acted, in the same transaction as the change
itself (app/http/audit.py).
"""

from __future__ import annotations

from fastapi import APIRouter

from app.accounts.router import admin_router as accounts
from app.admin.audit import admin_router as audit
from app.alerts.router import admin_router as alerts
from app.catalog.router import admin_router as catalog
from app.currencies.router import admin_router as currencies
from app.customers.router import admin_router as customers
from app.flows.router import admin_router as flows
from app.http.auth import authenticated
from app.ledger.router import admin_router as ledger
from app.legal.router import admin_router as legal
from app.news.router import admin_router as news
from app.orders.router import admin_router as orders
from app.payments.router import admin_router as payments
from app.privacy.router import admin_router as privacy
from app.providers.router import admin_router as providers
from app.receipts.router import admin_router as receipts
from app.referrals.router import admin_router as referrals
from app.refills.router import admin_router as refills
from app.reports.router import admin_router as reports
from app.staff.router import admin_router as staff
from app.storefront.router import admin_router as storefront
from app.tickets.router import admin_router as tickets
from app.webhooks.router import admin_router as webhooks

router = APIRouter(prefix="/admin/v1", dependencies=[authenticated])
for part in (
    flows,
    accounts,
    ledger,
    payments,
    receipts,
    catalog,
    orders,
    refills,
    audit,
    providers,
    alerts,
    currencies,
    reports,
    referrals,
    privacy,
    customers,
    tickets,
    webhooks,
    storefront,
    legal,
    news,
    staff,
):
    router.include_router(part)
