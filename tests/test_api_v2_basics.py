from __future__ import annotations

from typing import Any

from tests.conftest import Api, ledger_ok


async def test_balance_and_add_and_status(api: Api, make_user: Any, make_service: Any, ctx: Any) -> None:
    user = await make_user(balance="10")
    sid = await make_service()
    assert await api(user.key, "balance") == {"balance": "10.00000", "currency": "USD"}
    out = await api(user.key, "add", service=sid, link="https://instagram.com/x", quantity=309)
    assert out == {"order": 1}
    st = await api(user.key, "status", order=1)
    assert st == {"charge": "0.27810", "start_count": "0", "status": "Pending", "remains": "309", "currency": "USD"}
    assert await api(user.key, "balance") == {"balance": "9.72190", "currency": "USD"}
    await ledger_ok(ctx)
