"""The provider client against precise fault shapes (httpx.MockTransport)."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from urllib.parse import parse_qs

import httpx
import pytest

from app.providers.client import (
    Anomaly,
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


# What real providers send, and what each becomes (the mapping is written down in the
# module docstring of app.providers.client).


def one_status(body: object, text: str | None = None) -> Handler:
    return answering(200, body, text)


@pytest.mark.parametrize(
    ("sent", "remains"),
    [
        (157, 157),
        ("157", 157),
        ("12.0", 12),
        (12.0, 12),
        (12.5, 12),
        ("12.9", 12),
        ("1e3", 1000),
        (-40, -40),  # over-delivery: the order reads it as 0 remains
        ("-40", -40),
        ("Unknown", None),
        ("", None),
        (None, None),
        ("n/a", None),
        (10**12, 10**12),
    ],
)
async def test_remains_is_read_as_a_bounded_count(sent: object, remains: int | None) -> None:
    status = await client_for(one_status({"status": "In progress", "remains": sent})).status("1")
    assert (status.remains, status.anomalies) == (remains, ())


@pytest.mark.parametrize(
    ("field", "sent"),
    [
        ("remains", 10**20),
        ("remains", "100000000000000000000"),
        ("remains", -(10**13)),
        ("remains", "Infinity"),
        ("remains", "NaN"),
        ("start_count", 10**19),
        ("start_count", "1e300"),
        ("charge", "1e30"),
        ("charge", -1),
        ("posts", 10**20),
    ],
)
async def test_out_of_range_numbers_are_anomalies_and_never_passed_on(
    field: str, sent: object
) -> None:
    body = {"status": "In progress", "remains": 5, "start_count": 7, "charge": "0.5", field: sent}
    status = await client_for(one_status(body)).status("1")
    assert status.anomalies == (Anomaly("out_of_range", field, str(sent)),)
    if field in ("remains", "start_count", "charge"):
        assert getattr(status, field) is None
    assert status.status == "In progress"


async def test_charge_as_a_json_number_or_text_is_an_exact_decimal() -> None:
    for sent, charge in [(0.27819, "0.27819"), ("1.5", "1.5"), (2, "2"), ("-0", "0")]:
        status = await client_for(one_status({"status": "Completed", "charge": sent})).status("1")
        assert (status.charge, status.anomalies) == (Decimal(charge), ())
    unknown = await client_for(one_status({"status": "Completed", "charge": "?"})).status("1")
    assert (unknown.charge, unknown.anomalies) == (None, ())


@pytest.mark.parametrize(
    ("sent", "status"),
    [
        ("Pending", "Pending"),
        ("pending", "Pending"),
        ("In progress", "In progress"),
        ("In Progress", "In progress"),
        ("Inprogress", "In progress"),
        ("inprogress", "In progress"),
        ("in_progress", "In progress"),
        ("IN-PROGRESS", "In progress"),
        ("Processing", "Processing"),
        ("Completed", "Completed"),
        ("Complete", "Completed"),
        ("completed", "Completed"),
        ("Partial", "Partial"),
        ("partial", "Partial"),
        ("Canceled", "Canceled"),
        ("Cancelled", "Canceled"),
        ("cancelled", "Canceled"),
        ("Refunded", "Canceled"),
        ("refunded", "Canceled"),
    ],
)
async def test_status_spellings_map_to_ours(sent: str, status: str) -> None:
    report = await client_for(one_status({"status": sent, "remains": 3})).status("1")
    assert (report.status, report.anomalies) == (status, ())


@pytest.mark.parametrize("sent", ["Fail", "Failed", "fail", "Error", "error", "Rejected", "", "?"])
async def test_unclear_or_unknown_statuses_are_anomalies(sent: str) -> None:
    report = await client_for(one_status({"status": sent, "remains": 3})).status("1")
    assert report.anomalies == (Anomaly("unknown_status", "status", sent),)
    assert report.status == sent  # kept as sent, for the operator to read


@pytest.mark.parametrize("text", ["<html><body>Cloudflare</body></html>", "", " ", "OK"])
async def test_html_or_empty_bodies_with_http_200(text: str) -> None:
    with pytest.raises(ProviderTransient):
        await client_for(one_status(None, text)).status("1")
    with pytest.raises(ProviderTransient):
        await client_for(one_status(None, text)).statuses(["1", "2"])
    with pytest.raises(ProviderUnknownOutcome):
        await client_for(one_status(None, text)).add({"service": "1"})


async def test_multi_status_items_each_keep_their_own_answer() -> None:
    body = {
        "1": {"status": "Completed", "remains": "0"},
        "2": {"error": "Incorrect order ID"},
        "3": {"status": "In progress", "remains": 10**20},
        "4": "garbage",
        "5": {"status": "Fail"},
        "6": {"error": "Too many requests"},
    }
    result = await client_for(one_status(body)).statuses(["1", "2", "3", "4", "5", "6", "7"])
    first, third, fifth = result["1"], result["3"], result["5"]
    assert isinstance(first, ProviderOrderStatus) and first.anomalies == ()
    assert (first.status, first.remains) == ("Completed", 0)
    assert isinstance(result["2"], ProviderPermanent)
    assert result["2"].message == "Incorrect order ID"
    assert isinstance(third, ProviderOrderStatus)
    assert third.anomalies == (Anomaly("out_of_range", "remains", str(10**20)),)
    assert third.remains is None
    assert isinstance(result["4"], ProviderTransient)
    assert isinstance(fifth, ProviderOrderStatus)
    assert fifth.anomalies == (Anomaly("unknown_status", "status", "Fail"),)
    assert isinstance(result["6"], ProviderTransient)
    assert isinstance(result["7"], ProviderTransient)  # not answered at all


async def test_services_and_balance_numbers_are_bounded() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if form(request)["action"] == "balance":
            return httpx.Response(200, json={"balance": "1e40", "currency": "USD"})
        good = {"name": "ok", "type": "Default", "category": "C", "rate": 0.5, "min": "10"}
        return httpx.Response(
            200,
            json=[
                {**good, "service": 1, "max": "1e20"},
                {**good, "service": 2, "max": 1000, "rate": "-1"},
                {**good, "service": 3, "max": 1000, "rate": "1e15"},
                {**good, "service": "x" * 65, "max": 1000},
                {**good, "service": 5, "max": "1000.0", "name": "n" * 400},
            ],
        )

    client = client_for(handler)
    services = await client.services()
    assert [(s.service, s.rate, s.min, s.max, len(s.name)) for s in services] == [
        ("5", Decimal("0.5"), 10, 1000, 300)
    ]
    with pytest.raises(ProviderTransient):
        await client.balance()


# An upstream order id is a short printable token (issue 25): a string of at most 64
# printable characters, or a non-negative JSON integer. Anything else is an unknown outcome
# for that order only: never stored as text, never a refusal.


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        (23501, "23501"),
        (0, "0"),
        ("23501", "23501"),
        ("  77 ", "77"),
        ("AB-12_x:9.z", "AB-12_x:9.z"),
        ("ord 7", "ord 7"),
        ("x" * 64, "x" * 64),
        ("заказ-5", "заказ-5"),
    ],
)
async def test_add_keeps_an_order_id_that_is_a_short_printable_token(
    sent: object, kept: str
) -> None:
    assert await client_for(answering(200, {"order": sent})).add({"service": "1"}) == kept


@pytest.mark.parametrize(
    ("body", "shown"),
    [
        ('{"order": {"id": 5}}', '{"id": 5}'),
        ('{"order": false}', "false"),
        ('{"order": true}', "true"),
        ('{"order": -1}', "-1"),
        ('{"order": "-1"}', '"-1"'),
        ('{"order": 5.5}', "5.5"),
        ('{"order": 7.0}', "7.0"),
        ('{"order": [1]}', "[1]"),
        ('{"order": "' + "x" * 65 + '"}', '"' + "x" * 65),
        ('{"order": ' + "9" * 65 + "}", "9" * 65),
        ('{"order": "12\\u00003"}', '"12\\u00003"'),
        ('{"order": "\\u202e5"}', '"\\u202e5"'),
        ('{"order": "5\\u2066"}', '"5\\u2066"'),
        ('{"order": "a\\nb"}', '"a\\nb"'),
        ('{"order": "   "}', '"   "'),
        ('{"order": ""}', '""'),
        ('{"order": null}', "null"),
    ],
)
async def test_add_with_an_unreadable_order_id_is_an_unknown_outcome(body: str, shown: str) -> None:
    with pytest.raises(ProviderUnknownOutcome) as caught:
        await client_for(answering(200, text=body)).add({"service": "1"})
    assert type(caught.value) is ProviderUnknownOutcome
    # What came is shown to the operator escaped and bounded: it can be stored as it is.
    message = caught.value.message
    assert message.startswith("add: ") and shown[:90] in message
    assert message.isprintable() and len(message) <= 200


@pytest.mark.parametrize(
    "handler",
    [
        answering(200, {"error": "Incorrect link", "order": 5}),
        answering(200, {"order": 5, "error": "Not enough funds on balance"}),
        answering(200, {"order": "5", "error": "Incorrect service ID", "charge": "0.1"}),
        answering(400, {"order": 99}),
        answering(422, {"order": "99", "error": "Incorrect link"}),
        answering(403, {"order": 99, "status": "Pending"}),
    ],
)
async def test_an_answer_naming_an_order_with_an_error_or_a_4xx_is_an_unknown_outcome(
    handler: Handler,
) -> None:
    """The provider may have created the order: neither a refusal (a refund) nor a
    transient error (a blind resend)."""
    with pytest.raises(ProviderUnknownOutcome) as caught:
        await client_for(handler).add({"service": "1"})
    assert type(caught.value) is ProviderUnknownOutcome


@pytest.mark.parametrize(
    ("handler", "expected"),
    [
        (answering(400, {"error": "Incorrect link"}), ProviderPermanent),
        (answering(404, {"detail": "Not Found"}), ProviderTransient),
        (answering(200, {"order": 5, "error": None}), None),
        (answering(200, {"order": 5, "error": ""}), None),
    ],
)
async def test_errors_without_an_order_keep_their_meaning(
    handler: Handler, expected: type[Exception] | None
) -> None:
    client = client_for(handler)
    if expected is None:
        assert await client.add({"service": "1"}) == "5"
        return
    with pytest.raises(expected) as caught:
        await client.add({"service": "1"})
    assert type(caught.value) is expected


async def test_provider_text_is_escaped_before_it_is_kept() -> None:
    """Error messages and unreadable status values may be stored and shown: control and
    bidi characters arrive escaped, never raw."""
    with pytest.raises(ProviderPermanent) as caught:
        await client_for(answering(200, text='{"error": "bad\\u0000link\\u202e"}')).add({})
    assert caught.value.message == "bad\\x00link\\u202e"
    report = await client_for(answering(200, text='{"status": "Fa\\u0000il"}')).status("1")
    assert report.anomalies == (Anomaly("unknown_status", "status", "Fa\\x00il"),)
    assert report.status == "Fa\\x00il"


@pytest.mark.parametrize("sent", ['"' + "r" * 65 + '"', "false", "-3", '"\\u0000"', "{}"])
async def test_refill_with_an_unreadable_refill_id_is_an_unknown_outcome(sent: str) -> None:
    with pytest.raises(ProviderUnknownOutcome):
        await client_for(answering(200, text='{"refill": ' + sent + "}")).refill("5")


@pytest.mark.parametrize(
    ("remains", "shown"),
    [(None, "null"), ("", ""), ("Unknown", "Unknown"), ("n/a", "n/a"), (..., "(missing)")],
)
async def test_a_partial_report_without_readable_remains_is_an_anomaly(
    remains: object, shown: str
) -> None:
    """Partial refunds the remains: without them there is nothing to refund by, and 0
    would close the order for good."""
    body: dict[str, object] = {"status": "Partial", "charge": "0.5"}
    if remains is not ...:
        body["remains"] = remains
    report = await client_for(one_status(body)).status("1")
    assert report.anomalies == (Anomaly("unreadable_remains", "remains", shown),)
    assert (report.status, report.remains) == ("Partial", None)
    readable = await client_for(one_status({"status": "Partial", "remains": "0"})).status("1")
    assert (readable.remains, readable.anomalies) == (0, ())
