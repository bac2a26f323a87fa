"""A service's name and description per language: the operator writes the Russian ones
(the console's service page, /admin/v1); Russian-speaking customers read them on the
services list, the order form and their orders, the others read the English ones; a
search finds a service by either name; API v2 keeps the name its clients know."""

from __future__ import annotations

import httpx

from app.context import AppContext
from tests.support.api import Api, MakeService, order_id_of
from tests.support.client import MakeCustomer
from tests.support.console import signed_in as console_signed_in
from tests.support.console import submit
from tests.support.env import AUTH
from tests.support.web import refs, signed_in

FORM = {
    "name": "Instagram followers",
    "type": "Default",
    "rate": "0.9",
    "min_quantity": "10",
    "max_quantity": "5000",
    "step": "1",
    "refill_days": "30",
    "position": "0",
    "pricing": "fixed",
    "enabled": "1",
    "description": "Real-looking accounts.",
    "name_ru": "Подписчики Instagram",
    "description_ru": "Живые на вид аккаунты.",
}


async def test_customers_read_the_service_in_their_language_and_find_it_by_either_name(
    client: httpx.AsyncClient,
    ctx: AppContext,
    api: Api,
    make_customer: MakeCustomer,
    make_service: MakeService,
) -> None:
    service = await make_service(name="Old name")
    page = f"/web/admin/services/{service}"
    await console_signed_in(client, ctx, "manager")
    shown = await client.get(page)
    assert 'id="e-name-ru"' in shown.text
    category = str(
        (await client.get(f"/admin/v1/services/{service}", headers=AUTH)).json()["category_id"]
    )
    saved = await submit(client, page, page, **FORM, category_id=category)
    assert saved.headers["location"] == f"{page}?done=saved"
    got = (await client.get(f"/admin/v1/services/{service}", headers=AUTH)).json()
    assert (got["name_ru"], got["description_ru"]) == (
        "Подписчики Instagram",
        "Живые на вид аккаунты.",
    )

    customer = await signed_in(client, make_customer, "10")
    order_id = order_id_of(
        await api(customer.key, "add", service=service, link="https://x.com/a", quantity=100)
    )
    english = await client.get("/web/services", params={"q": "подписчики"})
    assert "<td>Instagram followers" in english.text and "Real-looking accounts." in english.text
    csrf = refs(english.text).csrf or ""
    await client.post("/web/language", data={"csrf": csrf, "language": "ru"})
    russian = await client.get("/web/services", params={"q": "instagram FOLLOWERS"})
    assert "<td>Подписчики Instagram" in russian.text and "Живые на вид аккаунты." in russian.text
    nothing = await client.get("/web/services", params={"q": "лайки"})
    assert "Подписчики Instagram" not in nothing.text
    form = await client.get("/web/orders/new")
    assert f"{service} · Подписчики Instagram ·" in form.text
    assert 'data-description="Живые на вид аккаунты."' in form.text
    orders = await client.get("/web/orders")
    assert "<td>Подписчики Instagram</td>" in orders.text
    detail = await client.get(f"/web/orders/{order_id}")
    assert f"{service} · Подписчики Instagram" in detail.text
    (listed,) = await api(customer.key, "services")
    assert listed["name"] == "Instagram followers"

    # Emptied, the Russian name gives way to the English one.
    patched = await client.patch(
        f"/admin/v1/services/{service}", headers=AUTH, json={"name_ru": None}
    )
    assert patched.json()["name_ru"] is None
    orders = await client.get("/web/orders")
    assert "<td>Instagram followers</td>" in orders.text
