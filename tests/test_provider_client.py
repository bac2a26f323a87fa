"""The provider client against precise fault shapes (httpx.MockTransport)."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from urllib.parse import parse_qs

import httpx
import pytest

from app.providers.client import (
    ProviderClient,
    ProviderNotSent,
    ProviderOrderStatus,
    ProviderPermanent,
    ProviderTransient,
    ProviderUnknownOutcome,
)

URL = "https://provider.test/api/v2"
Handler = Callable[[httpx.Request], httpx.Response]


def client_for(handler: Handler) -> ProviderClient:
    return ProviderClient(
        URL, "secret-key", httpx.AsyncClient(transport=httpx.MockTransport(handler))
    )


def form(request: httpx.Request) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(request.content.decode()).items()}


def raising(exc: Exception) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    return handler


def answering(status: int = 200, body: object = None, text: str | None = None) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        if text is not None:
            return httpx.Response(status, text=text)
        return httpx.Response(status, json=body)

    return handler


async def test_add_sends_form_fields_and_returns_the_id_as_text() -> None:
    seen: list[dict[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(form(request))
        return httpx.Response(200, json={"order": 23501})

    assert (
        await client_for(handler).add({"service": "1", "link": "https://x.y", "quantity": 100})
        == "23501"
    )
    assert seen == [
        {
            "key": "secret-key",
            "action": "add",
            "service": "1",
            "link": "https://x.y",
            "quantity": "100",
        }
    ]


@pytest.mark.parametrize(
    ("handler", "expected"),
    [
        (raising(httpx.ConnectError("refused")), ProviderNotSent),
        (raising(httpx.ConnectTimeout("slow connect")), ProviderNotSent),
        (raising(httpx.PoolTimeout("pool")), ProviderNotSent),
        (raising(httpx.ReadTimeout("no answer")), ProviderUnknownOutcome),
        (raising(httpx.WriteTimeout("half sent")), ProviderUnknownOutcome),
        (raising(httpx.RemoteProtocolError("dropped")), ProviderUnknownOutcome),
        (answering(500, {"error": "boom"}), ProviderUnknownOutcome),
        (answering(502, text="<html>Bad Gateway</html>"), ProviderUnknownOutcome),
        (answering(200, text="<html>maintenance</html>"), ProviderUnknownOutcome),
        (answering(200, {"unexpected": True}), ProviderUnknownOutcome),
        (answering(429, {"error": "slow down"}), ProviderTransient),
        (answering(200, {"error": "Not enough funds on balance"}), ProviderTransient),
        (answering(200, {"error": "Incorrect service ID"}), ProviderPermanent),
        (answering(200, {"error": "Incorrect link"}), ProviderPermanent),
        (answering(200, {"error": "Quantity less than minimal 50"}), ProviderPermanent),
        (answering(200, {"error": "Something nobody documented"}), ProviderPermanent),
    ],
)
async def test_add_failures_are_classified(handler: Handler, expected: type[Exception]) -> None:
    with pytest.raises(expected) as caught:
        await client_for(handler).add({"service": "1"})
    assert type(caught.value) is expected


@pytest.mark.parametrize(
    ("handler", "expected"),
    [
        (raising(httpx.ReadTimeout("no answer")), ProviderTransient),
        (answering(503, text="down"), ProviderTransient),
        (answering(200, text="not json"), ProviderTransient),
        (raising(httpx.ConnectError("refused")), ProviderNotSent),
    ],
)
async def test_read_only_failures_are_transient(
    handler: Handler, expected: type[Exception]
) -> None:
    with pytest.raises(expected):
        await client_for(handler).balance()


async def test_status_tolerates_numbers_strings_nulls_and_extra_fields() -> None:
    body = {
        "charge": 0.27819,
        "start_count": None,
        "status": "in progress",
        "remains": "157",
        "currency": "USD",
        "posts": "3",
    }
    status = await client_for(answering(200, body)).status("1")
    assert status == ProviderOrderStatus(
        status="In progress",
        charge=Decimal("0.27819"),
        start_count=None,
        remains=157,
        currency="USD",
        extra={"posts": "3"},
    )
    cancelled = await client_for(answering(200, {"status": "Cancelled", "remains": 5})).status("1")
    assert (cancelled.status, cancelled.remains) == ("Canceled", 5)


async def test_multi_status_chunks_by_100_and_keeps_per_id_errors() -> None:
    requests: list[list[str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        ids = form(request)["orders"].split(",")
        requests.append(ids)
        answer: dict[str, object] = {}
        for i in ids:
            answer[i] = (
                {"error": "Incorrect order ID"}
                if i == "7"
                else {"status": "Completed", "remains": "0", "charge": "1", "start_count": "5"}
            )
        return httpx.Response(200, json=answer)

    ids = [str(i) for i in range(1, 151)]
    result = await client_for(handler).statuses(ids)
    assert [len(r) for r in requests] == [100, 50]
    assert isinstance(result["7"], ProviderPermanent)
    assert result["7"].message == "Incorrect order ID"
    first = result["1"]
    assert isinstance(first, ProviderOrderStatus) and first.status == "Completed"
    assert len(result) == 150


async def test_services_balance_refill_and_cancel_shapes() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        fields = form(request)
        action = fields["action"]
        if action == "services":
            return httpx.Response(
                200,
                json=[
                    {
                        "service": 1,
                        "name": "F",
                        "type": "Default",
                        "category": "C",
                        "rate": "0.90",
                        "min": "50",
                        "max": 10000,
                        "refill": True,
                        "cancel": "1",
                        "extra": "x",
                    },
                    {"service": 2, "name": "broken"},
                ],
            )
        if action == "balance":
            return httpx.Response(200, json={"balance": 100.84292, "currency": "USD"})
        if action == "refill":
            return httpx.Response(200, json={"refill": "77"})
        if action == "refill_status":
            return httpx.Response(
                200,
                json=[
                    {"refill": 1, "status": "Completed"},
                    {"refill": 3, "status": {"error": "Refill not found"}},
                ],
            )
        return httpx.Response(
            200,
            json=[
                {"order": 9, "cancel": {"error": "Incorrect order ID"}},
                {"order": 2, "cancel": 1},
            ],
        )

    client = client_for(handler)
    services = await client.services()
    assert len(services) == 1
    assert (services[0].service, services[0].rate, services[0].max, services[0].cancel) == (
        "1",
        Decimal("0.90"),
        10000,
        True,
    )
    balance = await client.balance()
    assert (balance.balance, balance.currency) == (Decimal("100.84292"), "USD")
    assert await client.refill("5") == "77"
    statuses = await client.refill_statuses(["1", "3"])
    assert statuses["1"] == "Completed" and isinstance(statuses["3"], ProviderPermanent)
    cancels = await client.cancel(["9", "2"])
    assert cancels["2"] is True and isinstance(cancels["9"], ProviderPermanent)


async def test_the_key_stays_out_of_errors_and_repr() -> None:
    client = client_for(raising(httpx.ConnectError("refused")))
    with pytest.raises(ProviderNotSent) as caught:
        await client.add({})
    assert "secret-key" not in str(caught.value) and "secret-key" not in repr(client)
    assert json.dumps({"m": caught.value.message})
