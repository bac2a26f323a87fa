"""The storefront's API page documents API v2 as the README does: every action with its
parameters and an example answer, the fields of every service type, the statuses, the
refusals, and PHP and Python samples carrying the customer's key and the panel's own
address, with a link to /docs."""

from __future__ import annotations

import html
import re

import httpx

from app.accounts.service import PREFIX_LEN
from app.context import AppContext
from app.orders.models import STATUSES
from app.orders.types import SERVICE_TYPES
from app.refills.models import REFILL_STATUSES
from tests.support.client import MakeCustomer
from tests.support.web import csrf_of, signed_in

ACTIONS = ("services", "add", "status", "refill", "refill_status", "cancel", "balance")


async def test_the_api_page_documents_every_action_type_status_and_refusal(
    ctx: AppContext, client: httpx.AsyncClient, make_customer: MakeCustomer
) -> None:
    await signed_in(client, make_customer, "0")
    before = ctx.settings.public_url
    ctx.settings.public_url = "http://boost.example:8443/"
    try:
        page = await client.get("/web/api")
        issued = await client.post("/web/account/api-key", data={"csrf": csrf_of(page)})
    finally:
        ctx.settings.public_url = before
    text = html.unescape(issued.text)
    key = re.search(r'id="new-key">[^<]*<code>([^<]+)</code>', issued.text)
    assert key is not None
    address = "http://boost.example:8443/api/v2"
    assert f'id="api-address">{address}</code>' in text
    assert 'href="/docs" id="api-docs"' in text
    table = text.split('id="api-actions"')[1].split("</table>")[0]
    assert all(f"<td><code>{action}</code></td>" in table for action in ACTIONS)
    assert '{"order": 23501}' in table and '"average_time": "135"' in table
    types = text.split('id="api-types"')[1].split("</table>")[0]
    assert all(f"<td>{name}</td>" in types for name in SERVICE_TYPES)
    assert "<code>username, min, max, posts</code>" in types
    assert all(f"<code>{s}</code>" in text for s in (*STATUSES, *REFILL_STATUSES))
    for refusal in ("Invalid API key", "Incorrect service ID", "Not enough funds on balance"):
        assert f"<li><code>{refusal}</code></li>" in text
    php = text.split('id="sample-php"')[1].split("</pre>")[0]
    python = text.split('id="sample-python"')[1].split("</pre>")[0]
    assert f"curl_init('{address}')" in php and f"'key' => '{key.group(1)}'" in php
    assert f'API = "{address}"' in python and f'KEY = "{key.group(1)}"' in python
    # Python's sample is valid Python.
    compile(python.split("<code>", 1)[1].split("</code>")[0], "sample.py", "exec")

    # Later visits show the key's start only, in the samples as well.
    again = html.unescape((await client.get("/web/api")).text)
    assert key.group(1) not in again
    assert f'KEY = "{key.group(1)[:PREFIX_LEN]}…"' in again


async def test_the_api_page_in_russian(
    client: httpx.AsyncClient, make_customer: MakeCustomer
) -> None:
    await signed_in(client, make_customer, "0")
    page = await client.get("/web/api")
    await client.post("/web/language", data={"csrf": csrf_of(page), "language": "ru"})
    russian = (await client.get("/web/api")).text
    assert "Поля add по типу услуги" in russian and "Статус заказа" in russian
