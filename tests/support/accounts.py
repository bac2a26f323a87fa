"""Opening a reseller's account on a panel: a user, an API key and a first deposit."""

from __future__ import annotations

from decimal import Decimal

from app.accounts import service as accounts
from app.context import AppContext
from app.ledger import service as ledger
from tests.support.api import Reseller


async def open_reseller(ctx: AppContext, balance: str | Decimal, email: str) -> Reseller:
    async with ctx.db.transaction() as session:
        user = await accounts.create_user(session, email=email)
        issued = await accounts.issue_key(session, user.id)
        if Decimal(balance) > 0:
            await ledger.credit(
                session,
                user_id=user.id,
                amount=Decimal(balance),
                kind="deposit",
                reason="test deposit",
            )
    return Reseller(user.id, issued.key)
