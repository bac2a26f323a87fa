"""The sandbox provider's control endpoints: its catalog and balances change over HTTP,
as a real provider's would."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx

from app.sandbox import SandboxConfig, SandboxService
from tests.support.upstream import (
    change_upstream,
    remove_upstream,
    sandbox,
    sandbox_control,
    set_upstream_balance,
)

LINK = "https://instagram.com/control"


async def test_sandbox_control_endpoints_change_what_the_provider_answers() -> None:
    config = SandboxConfig(services=[SandboxService(1, "Followers", rate=Decimal("0.40"))])
    async with sandbox(config) as (url, _):
        async with httpx.AsyncClient() as http:

            async def v2(action: str, **fields: str) -> Any:
                data = {"key": "sandbox-key", "action": action, **fields}
                return (await http.post(f"{url}/api/v2", data=data)).json()

            await change_upstream(url, 1, rate="0.55", min=20, max=500, type="Package")
            await change_upstream(url, 1, refill=False, cancel=False, dripfeed=True)
            await sandbox_control(url, "PUT", "/services/7", {"name": "New", "rate": "1.5"})
            listed = {s["service"]: s for s in await v2("services")}
            assert listed[1] == {
                "service": 1,
                "name": "Followers",
                "type": "Package",
                "category": "Sandbox",
                "rate": "0.55",
                "min": "20",
                "max": "500",
                "refill": False,
                "cancel": False,
                "dripfeed": True,
            }
            assert listed[7]["name"] == "New" and listed[7]["rate"] == "1.5"
            await remove_upstream(url, 1)
            assert [s["service"] for s in await v2("services")] == [7]
            assert await v2("add", service="1", link=LINK, quantity="100") == {
                "error": "Incorrect service ID"
            }
            await set_upstream_balance(url, "3.5")
            assert await v2("balance") == {"balance": "3.50000", "currency": "USD"}
            await sandbox_control(url, "POST", "/catalog", {"answer": "empty"})
            assert await v2("services") == []
            await sandbox_control(url, "POST", "/catalog", {"answer": "error"})
            assert await v2("services") == {"error": "Service list unavailable"}
            bad = await http.patch(f"{url}/sandbox/services/7", json={"colour": "red"})
            assert bad.status_code == 422


async def test_a_garbled_add_answer_with_a_request_id_is_the_garbled_answer() -> None:
    """The `malformed` behaviour answers HTML with HTTP 200 and creates nothing, with or
    without a request id (the sandbox once crashed with a 500 on it, found by make chaos)."""
    config = SandboxConfig(
        services=[SandboxService(1, "Followers", rate=Decimal("0.40"), behaviour="malformed")]
    )
    async with sandbox(config) as (url, _), httpx.AsyncClient() as http:
        fields = {"key": "sandbox-key", "action": "add", "service": "1", "link": LINK}
        for extra in ({}, {"request_id": "o1.abc"}):
            answer = await http.post(f"{url}/api/v2", data={**fields, "quantity": "100", **extra})
            assert answer.status_code == 200
            assert answer.text == "<html><body>502 Bad Gateway</body></html>"
        listed = await http.post(
            f"{url}/api/v2",
            data={"key": "sandbox-key", "action": "status", "request_id": "o1.abc"},
        )
        assert listed.json() == {"error": "Incorrect order ID"}
