"""The operator API (/admin/v1), assembled from the routers of the domains and flows.

Every route needs the admin bearer token; every change writes its audit entry in the
same transaction as the change itself (app/http/audit.py).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends

from app.accounts.router import admin_router as accounts
from app.admin.audit import admin_router as audit
from app.alerts.router import admin_router as alerts
from app.catalog.router import admin_router as catalog
from app.currencies.router import admin_router as currencies
from app.customers.router import admin_router as customers
from app.flows.router import admin_router as flows
from app.http.auth import require_admin
from app.ledger.router import admin_router as ledger
from app.orders.router import admin_router as orders
from app.payments.router import admin_router as payments
from app.privacy.router import admin_router as privacy
from app.providers.router import admin_router as providers
from app.referrals.router import admin_router as referrals
from app.refills.router import admin_router as refills
from app.reports.router import admin_router as reports
from app.storefront.router import admin_router as storefront
from app.tickets.router import admin_router as tickets
from app.webhooks.router import admin_router as webhooks

router = APIRouter(prefix="/admin/v1", dependencies=[Depends(require_admin)])
for part in (
    flows,
    accounts,
    ledger,
    payments,
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
):
    router.include_router(part)
