"""The ledger invariants, checked the way the operator endpoint checks them."""

from __future__ import annotations

from app.context import AppContext
from app.ledger import service as ledger


async def ledger_ok(ctx: AppContext) -> None:
    async with ctx.db.session() as session:
        report = await ledger.check_invariants(session)
    assert report.ok, report.violations
