"""What a tired operator types is either applied as asked or refused with a clear reason:
top-up references, currencies, credit limits, finished orders, removed services, provider
mappings, emails in any case, misspelt fields, and money printed without exponents."""

from __future__ import annotations

import argparse
import asyncio
import re
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel
from sqlalchemy import select, update

from app.cli import cmd_user_topup
from app.context import AppContext
from app.http.schemas import PlainDecimal
from app.ledger.models import LedgerEntry
from app.money import plain
from app.settings import Settings
from tests.support.api import Api, MakeService, MakeUser
from tests.support.env import AUTH
from tests.support.ledger import ledger_ok

LINK = "https://instagram.com/operator"


def is_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    return body


async def deposits(ctx: AppContext) -> list[tuple[int, Decimal, str | None]]:
    async with ctx.db.session() as session:
        rows = await session.execute(
            select(LedgerEntry.user_id, LedgerEntry.amount, LedgerEntry.payment_ref)
            .where(LedgerEntry.kind == "deposit")
            .order_by(LedgerEntry.id)
        )
        return [(r.user_id, r.amount, r.payment_ref) for r in rows]


# Top-up references ----------------------------------------------------------------------


async def test_payment_ref_replay_is_idempotent_and_reuse_is_a_conflict(
    client: httpx.AsyncClient, ctx: AppContext, make_user: MakeUser
) -> None:
    alice, bob = await make_user(), await make_user()

    async def topup(user_id: int, amount: str) -> httpx.Response:
        return await client.post(
            f"/admin/v1/users/{user_id}/topup",
            headers=AUTH,
            json={"amount": amount, "payment_ref": "bank-77"},
        )

    first = await topup(alice.user_id, "10")
    assert first.json() == {"user_id": alice.user_id, "balance": "10.00000000", "duplicate": False}
    replay = await topup(alice.user_id, "10.00")
    assert replay.json() == {"user_id": alice.user_id, "balance": "10.00000000", "duplicate": True}

    other_user = is_problem(await topup(bob.user_id, "10"), 409)
    assert other_user["detail"] == (
        "payment_ref 'bank-77' was already used for another user or another amount"
    )
    other_amount = is_problem(await topup(alice.user_id, "12"), 409)
    assert other_amount["detail"] == other_user["detail"]

    assert await deposits(ctx) == [(alice.user_id, Decimal("10"), "bank-77")]
    await ledger_ok(ctx)


async def test_cli_topup_follows_the_same_payment_ref_rule(
    settings: Settings, ctx: AppContext, make_user: MakeUser, capsys: pytest.CaptureFixture[str]
) -> None:
    alice, bob = await make_user(), await make_user()

    def cli(user_id: int, amount: str) -> None:
        args = argparse.Namespace(
            user_id=user_id, amount=amount, reason="Bank", payment_ref="wire-9"
        )
        cmd_user_topup(settings, args)

    await asyncio.to_thread(cli, alice.user_id, "5")
    await asyncio.to_thread(cli, alice.user_id, "5")
    assert capsys.readouterr().out.splitlines() == [
        f'{{"user_id": {alice.user_id}, "balance": "5.00000000"}}',
        f'{{"user_id": {alice.user_id}, "duplicate": true}}',
    ]
    with pytest.raises(Exception, match="already used for another user or another amount"):
        await asyncio.to_thread(cli, bob.user_id, "5")
    assert await deposits(ctx) == [(alice.user_id, Decimal("5"), "wire-9")]


# Currency -------------------------------------------------------------------------------


async def test_a_users_currency_can_only_be_the_panels(
    client: httpx.AsyncClient, api: Api, make_user: MakeUser
) -> None:
    refused = await client.post(
        "/admin/v1/users", headers=AUTH, json={"email": "eur@example.com", "currency": "XYZ"}
    )
    assert is_problem(refused, 422)["detail"] == "currency must be the panel's currency (USD)"

    created = await client.post(
        "/admin/v1/users", headers=AUTH, json={"email": "usd@example.com", "currency": "usd"}
    )
    assert created.status_code == 201 and created.json()["currency"] == "USD"
    default = await client.post("/admin/v1/users", headers=AUTH, json={"email": "d@example.com"})
    assert default.json()["currency"] == "USD"

    user = await make_user()
    patched = await client.patch(
        f"/admin/v1/users/{user.user_id}", headers=AUTH, json={"currency": "EUR"}
    )
    assert is_problem(patched, 422)["detail"] == "currency must be the panel's currency (USD)"
    assert await api(user.key, "balance") == {"balance": "0.00000", "currency": "USD"}


# Credit limit ---------------------------------------------------------------------------


async def test_lowering_credit_limit_below_the_debt_is_refused_clearly(
    client: httpx.AsyncClient, api: Api, ctx: AppContext, make_user: MakeUser
) -> None:
    user = await make_user()
    granted = await client.patch(
        f"/admin/v1/users/{user.user_id}", headers=AUTH, json={"credit_limit": "5"}
    )
    assert granted.json()["credit_limit"] == "5.00000000"
    spent = await client.post(
        f"/admin/v1/users/{user.user_id}/adjust", headers=AUTH, json={"amount": "-3", "reason": "x"}
    )
    assert spent.json()["balance"] == "-3.00000000"

    lowered = await client.patch(
        f"/admin/v1/users/{user.user_id}", headers=AUTH, json={"credit_limit": "2"}
    )
    assert is_problem(lowered, 409)["detail"] == (
        "credit_limit 2 is below the user's debt of 3.00000000: "
        "top up the balance first, or keep a limit of at least the debt"
    )
    exact = await client.patch(
        f"/admin/v1/users/{user.user_id}", headers=AUTH, json={"credit_limit": "3"}
    )
    assert exact.json()["credit_limit"] == "3.00000000"
    await ledger_ok(ctx)


# Finished orders ------------------------------------------------------------------------


async def test_setting_the_status_of_a_finished_order_is_a_conflict(
    client: httpx.AsyncClient,
    api: Api,
    ctx: AppContext,
    make_user: MakeUser,
    make_service: MakeService,
) -> None:
    user = await make_user(balance="10")
    sid = await make_service()
    order_id = (await api(user.key, "add", service=sid, link=LINK, quantity=1000))["order"]
    done = await client.post(
        f"/admin/v1/orders/{order_id}/status", headers=AUTH, json={"status": "Completed"}
    )
    assert done.status_code == 200 and done.json()["status"] == "Completed"

    again = await client.post(
        f"/admin/v1/orders/{order_id}/status", headers=AUTH, json={"status": "Canceled"}
    )
    assert is_problem(again, 409)["detail"] == (
        "Order already finished (Completed): its status cannot change"
    )
    assert await api(user.key, "balance") == {"balance": "9.10000", "currency": "USD"}
    missing = await client.post(
        "/admin/v1/orders/999999/status", headers=AUTH, json={"status": "Canceled"}
    )
    assert is_problem(missing, 404)["detail"] == "Order not found"
    await ledger_ok(ctx)


# Services -------------------------------------------------------------------------------


async def test_a_removed_service_cannot_be_enabled_again(
    client: httpx.AsyncClient, api: Api, make_user: MakeUser, make_service: MakeService
) -> None:
    user = await make_user(balance="10")
    sid = await make_service()
    removed = await client.delete(f"/admin/v1/services/{sid}", headers=AUTH)
    assert removed.json()["enabled"] is False

    enabled = await client.patch(f"/admin/v1/services/{sid}", headers=AUTH, json={"enabled": True})
    assert is_problem(enabled, 409)["detail"] == (
        "Service was removed: it cannot be enabled again; create a new service instead"
    )
    shown = (await client.get(f"/admin/v1/services/{sid}", headers=AUTH)).json()
    assert shown["enabled"] is False and shown["deleted_at"] is not None
    assert await api(user.key, "services") == []
    renamed = await client.patch(f"/admin/v1/services/{sid}", headers=AUTH, json={"name": "Old"})
    assert renamed.status_code == 200 and renamed.json()["enabled"] is False


async def test_a_service_mapping_needs_both_provider_and_its_service_id(
    client: httpx.AsyncClient, make_service: MakeService
) -> None:
    category = (await client.post("/admin/v1/categories", headers=AUTH, json={"name": "C"})).json()
    provider = await client.post(
        "/admin/v1/providers",
        headers=AUTH,
        json={"name": "Up", "url": "http://127.0.0.1:9/api/v2", "api_key": "k"},
    )
    provider_id = provider.json()["id"]
    base = {
        "category_id": category["id"],
        "name": "S",
        "rate": "1",
        "min_quantity": 10,
        "max_quantity": 100,
    }
    detail = "provider_id and provider_service_id must be set together (or both null)"
    for half in ({"provider_id": provider_id}, {"provider_service_id": "12"}):
        refused = await client.post("/admin/v1/services", headers=AUTH, json={**base, **half})
        assert is_problem(refused, 422)["detail"] == detail

    sid = await make_service()
    for half in ({"provider_id": provider_id}, {"provider_service_id": "12"}):
        refused = await client.patch(f"/admin/v1/services/{sid}", headers=AUTH, json=half)
        assert is_problem(refused, 422)["detail"] == detail
    both = {"provider_id": provider_id, "provider_service_id": "12"}
    mapped = await client.patch(f"/admin/v1/services/{sid}", headers=AUTH, json=both)
    assert mapped.status_code == 200
    unmapped = await client.patch(
        f"/admin/v1/services/{sid}", headers=AUTH, json={"provider_id": None}
    )
    assert is_problem(unmapped, 422)["detail"] == detail
    cleared = {"provider_id": None, "provider_service_id": None}
    assert (
        await client.patch(f"/admin/v1/services/{sid}", headers=AUTH, json=cleared)
    ).status_code == 200


# Emails ---------------------------------------------------------------------------------


async def test_emails_are_unique_whatever_their_case(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    created = await client.post(
        "/admin/v1/users", headers=AUTH, json={"email": "Reseller@Example.com"}
    )
    assert created.json()["email"] == "reseller@example.com"
    again = await client.post(
        "/admin/v1/users", headers=AUTH, json={"email": "RESELLER@example.COM"}
    )
    assert is_problem(again, 409)["detail"] == "A user with this email already exists"

    other = (
        await client.post("/admin/v1/users", headers=AUTH, json={"email": "two@example.com"})
    ).json()
    taken = await client.patch(
        f"/admin/v1/users/{other['id']}", headers=AUTH, json={"email": "reSeller@example.com"}
    )
    assert is_problem(taken, 409)["detail"] == "A user with this email already exists"
    mine = await client.patch(
        f"/admin/v1/users/{other['id']}", headers=AUTH, json={"email": "Two@Example.com"}
    )
    assert mine.json()["email"] == "two@example.com"

    # The database itself refuses a second spelling of one mailbox.
    from sqlalchemy.exc import IntegrityError

    from app.accounts.models import User

    with pytest.raises(IntegrityError):
        async with ctx.db.transaction() as session:
            await session.execute(
                update(User).where(User.id == other["id"]).values(email="RESELLER@EXAMPLE.COM")
            )


# Unknown fields -------------------------------------------------------------------------


async def test_unknown_fields_in_admin_bodies_are_refused(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    refused = await client.post(
        "/admin/v1/users", headers=AUTH, json={"email": "x@example.com", "balance": "100"}
    )
    body = is_problem(refused, 422)
    assert body["errors"] == [{"loc": ["body", "balance"], "msg": "Extra inputs are not permitted"}]
    user = await make_user()
    typo = await client.patch(
        f"/admin/v1/users/{user.user_id}", headers=AUTH, json={"credit_limt": "5"}
    )
    assert is_problem(typo, 422)["errors"][0]["loc"] == ["body", "credit_limt"]


def test_every_admin_body_model_forbids_unknown_fields(app: FastAPI) -> None:
    spec = app.openapi()
    schemas = spec["components"]["schemas"]
    bodies = set()
    for path, operations in spec["paths"].items():
        if not path.startswith("/admin/v1"):
            continue
        for operation in operations.values():
            content = operation.get("requestBody", {}).get("content", {})
            for media in content.values():
                ref = media["schema"].get("$ref", "")
                if ref or media["schema"] != {"type": "string", "format": "binary"}:
                    bodies.add(ref.rsplit("/", 1)[-1])  # an upload's bytes have no model
    assert len(bodies) >= 15
    open_models = [n for n in sorted(bodies) if schemas[n].get("additionalProperties") is not False]
    assert open_models == []


# Money without exponents ----------------------------------------------------------------

EXPONENT = re.compile(r"^[+-]?\d+(\.\d+)?[eE][+-]?\d+$")


class Money(BaseModel):
    value: PlainDecimal
    maybe: PlainDecimal | None = None


@pytest.mark.parametrize(
    ("value", "wire"),
    [
        ("0E-8", "0.00000000"),
        ("1E+3", "1000"),
        ("7.0E-7", "0.00000070"),
        ("-1.5E-7", "-0.00000015"),
        ("12345678901.12345678", "12345678901.12345678"),
        ("0", "0"),
        ("-0E-5", "-0.00000"),
        ("2.50000", "2.50000"),
    ],
)
def test_plain_decimal_never_prints_an_exponent(value: str, wire: str) -> None:
    assert plain(Decimal(value)) == wire
    dumped = Money(value=Decimal(value), maybe=Decimal(value)).model_dump_json()
    assert dumped == f'{{"value":"{wire}","maybe":"{wire}"}}'
    assert Money(value=Decimal(value)).model_dump()["value"] == Decimal(value)


def exponents_in(value: object) -> list[str]:
    if isinstance(value, str):
        return [value] if EXPONENT.match(value) else []
    if isinstance(value, dict):
        return [e for v in value.values() for e in exponents_in(v)]
    if isinstance(value, list):
        return [e for v in value for e in exponents_in(v)]
    return []


async def test_no_admin_answer_prints_money_in_exponent_notation(
    app: FastAPI,
    client: httpx.AsyncClient,
    api: Api,
    ctx: AppContext,
    make_user: MakeUser,
    make_service: MakeService,
) -> None:
    # Zero balances come back from the database as 0E-8; inputs in exponent form are echoed.
    user = await make_user(balance="1")
    zero = await make_user()
    sid = await make_service(rate=Decimal("0.0007"), provider_rate=Decimal("0"))
    provider = await client.post(
        "/admin/v1/providers",
        headers=AUTH,
        json={"name": "Up", "url": "http://127.0.0.1:9/api/v2", "api_key": "k"},
    )
    provider_id = provider.json()["id"]
    order_id = (await api(user.key, "add", service=sid, link=LINK, quantity=50))["order"]
    answers: list[httpx.Response] = [
        await client.post(
            f"/admin/v1/users/{zero.user_id}/topup", headers=AUTH, json={"amount": "1E+3"}
        ),
        await client.put(
            f"/admin/v1/users/{user.user_id}/rates/{sid}", headers=AUTH, json={"rate": "7.0E-7"}
        ),
        await client.put("/admin/v1/currencies/RUB", headers=AUTH, json={"rate": "1E-2"}),
        await client.post(
            f"/admin/v1/users/{zero.user_id}/adjust",
            headers=AUTH,
            json={"amount": "-1E+3", "reason": "back to zero"},
        ),
        await client.post(
            f"/admin/v1/orders/{order_id}/status", headers=AUTH, json={"status": "Canceled"}
        ),
    ]
    ids = {
        "user_id": zero.user_id,
        "service_id": sid,
        "order_id": order_id,
        "provider_id": provider_id,
        "category_id": (await client.get(f"/admin/v1/services/{sid}", headers=AUTH)).json()[
            "category_id"
        ],
        "code": "RUB",
    }
    for path, operations in app.openapi()["paths"].items():
        if not path.startswith("/admin/v1") or "get" not in operations:
            continue
        params = re.findall(r"\{([^}]+)\}", path)
        if any(p not in ids for p in params) or path.endswith("/balance"):
            continue  # payments, refills, rewards: none exist here; balance calls upstream
        concrete = path.format(**{p: ids[p] for p in params})
        response = await client.get(concrete, headers=AUTH)
        if response.headers.get("content-type", "").startswith("application/json"):
            answers.append(response)
    checked = [a for a in answers if a.status_code == 200]
    assert len(checked) >= 20
    found = {str(a.request.url): exponents_in(a.json()) for a in checked}
    assert {url: e for url, e in found.items() if e} == {}
