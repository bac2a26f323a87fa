"""What a hostile or clumsy client sends to /api/v2 is answered in the protocol's shape
(`{"error": …}`), never with a 500 and never with problem JSON."""

from __future__ import annotations

import httpx
import pytest

from tests.support.api import Api, MakeService, MakeUser

LINK = "https://instagram.com/someone"
INCORRECT_ORDER = {"error": "Incorrect order ID"}
INCORRECT_REQUEST = {"error": "Incorrect request"}


@pytest.mark.parametrize("order", ["1,2", "1,", ",", " , ", "1 2"])
async def test_single_status_with_a_list_is_an_incorrect_order_id(
    api: Api, make_user: MakeUser, make_service: MakeService, order: str
) -> None:
    user = await make_user("10")
    sid = await make_service()
    first = (await api(user.key, "add", service=sid, link=LINK, quantity=100))["order"]
    await api(user.key, "add", service=sid, link=LINK + "/2", quantity=100)
    # Twice: once on a cold path, once with every cache warm.
    for _ in range(2):
        assert await api(user.key, "status", order=order.replace("1", str(first))) == (
            INCORRECT_ORDER
        )


async def test_single_status_with_a_json_list_is_an_incorrect_order_id(
    client: httpx.AsyncClient, make_user: MakeUser, make_service: MakeService, api: Api
) -> None:
    user = await make_user("10")
    sid = await make_service()
    first = (await api(user.key, "add", service=sid, link=LINK, quantity=100))["order"]
    # A JSON list reads as its items joined by commas (so `[id]` is that id).
    for order in ([first, first + 1], [first], [], [first, first], {"a": 1}):
        response = await client.post(
            "/api/v2", json={"key": user.key, "action": "status", "order": order}
        )
        assert response.status_code == 200, (order, response.text)
        if order == [first]:
            assert response.json()["status"] == "Pending"
        else:
            assert response.json() == INCORRECT_ORDER, order


@pytest.mark.parametrize("method", ["HEAD", "OPTIONS", "PUT", "DELETE", "PATCH"])
async def test_other_methods_answer_in_the_protocol_shape(
    client: httpx.AsyncClient, method: str
) -> None:
    response = await client.request(method, "/api/v2", data={"action": "balance"})
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"
    assert response.headers["content-type"] == "application/json"
    if method != "HEAD":
        assert response.json() == INCORRECT_REQUEST


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (
            b"--x\r\nContent-Disposition: form-data; name=key\r\n\r\nk\r\n--x--\r\n",
            "multipart/form-data",
        ),
        (
            b'--b\r\nContent-Disposition: form-data; name="f"; filename="a.txt"\r\n'
            b"Content-Type: text/plain\r\n\r\nhello\r\n--b--\r\n",
            "multipart/form-data; boundary=b",
        ),
        (
            b"".join(
                b'--b\r\nContent-Disposition: form-data; name="f%d"\r\n\r\nv\r\n' % i
                for i in range(250)
            )
            + b"--b--\r\n",
            "multipart/form-data; boundary=b",
        ),
        (b"{" + b'"a":' * 1 + b"[" * 50_000 + b"]" * 50_000 + b"}", "application/json"),
        (b"[" * 60_000, "application/json"),
    ],
    ids=["no-boundary", "file-part", "too-many-fields", "deep-json", "deep-broken-json"],
)
async def test_unreadable_requests_answer_incorrect_request(
    client: httpx.AsyncClient, content: bytes, content_type: str
) -> None:
    response = await client.post("/api/v2", content=content, headers={"content-type": content_type})
    assert response.status_code == 200, response.text
    assert response.json() == INCORRECT_REQUEST
