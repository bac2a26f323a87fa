"""Orders on the storefront: a drip-feed order's page gives its runs and interval, its
date and service id; an order refunded in full offers no refill (and the command refuses
one); a mass order keeps the lines that failed and links the orders it made; the
subscription's expiry is a date picker; and every service shows its average completion
time (services page, order form, API v2 `services`), measured from its recent orders."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
from sqlalchemy import select, update

from app.context import AppContext
from app.db import utcnow
from app.orders import average
from app.orders.models import COMPLETED, PARTIAL, Order
from app.web.shop import protocol_date
from tests.support.api import Api, MakeService, MakeUser, order_id_of
from tests.support.client import MakeCustomer
from tests.support.web import csrf_of, refs, signed_in


async def test_a_drip_feed_order_page_gives_runs_interval_date_and_service_id(
    client: httpx.AsyncClient, make_customer: MakeCustomer, make_service: MakeService
) -> None:
    await signed_in(client, make_customer, "10")
    service = await make_service(name="Slow followers", dripfeed=True, min_quantity=10)
    csrf = csrf_of(await client.get("/web/orders/new"))
    placed = await client.post(
        "/web/orders/new",
        data={
            "csrf": csrf,
            "service": str(service),
            "link": "https://x.com/drip",
            "quantity": "100",
            "dripfeed": "on",
            "runs": "3",
            "interval": "15",
        },
    )
    assert placed.status_code == 303, placed.text[:500]
    order_id = int(placed.headers["location"].rsplit("=", 1)[1])
    page = (await client.get(f"/web/orders/{order_id}")).text
    assert f'id="order-service">{service} · Slow followers</dd>' in page
    assert 'id="order-runs">3</dd>' in page and 'id="order-interval">15</dd>' in page
    assert re.search(r'id="order-date">\d{4}-\d\d-\d\d \d\d:\d\d</dd>', page)


async def test_an_order_refunded_in_full_offers_no_refill(
    ctx: AppContext,
    client: httpx.AsyncClient,
    make_customer: MakeCustomer,
    make_service: MakeService,
    api: Api,
    make_user: MakeUser,
) -> None:
    await signed_in(client, make_customer, "10")
    service = await make_service(refill=True)
    csrf = csrf_of(await client.get("/web/orders/new"))
    ids = []
    for n in range(2):
        data = {"csrf": csrf, "service": str(service), "link": f"https://x.com/{n}"}
        placed = await client.post("/web/orders/new", data={**data, "quantity": "100"})
        ids.append(int(placed.headers["location"].rsplit("=", 1)[1]))
    nothing, half = ids
    async with ctx.db.transaction() as session:
        # Partial with nothing delivered (all refunded), and Partial with half delivered.
        for order_id, remains in ((nothing, 100), (half, 50)):
            charge = await session.scalar(select(Order.charge).where(Order.id == order_id))
            assert charge is not None
            refunded = charge * remains / 100
            await session.execute(
                update(Order)
                .where(Order.id == order_id)
                .values(status=PARTIAL, remains=remains, refunded=refunded, finished_at=utcnow())
            )
    listed = (await client.get("/web/orders")).text
    assert f'id="refill-{nothing}"' not in listed and f'id="refill-{half}"' in listed
    detail = (await client.get(f"/web/orders/{nothing}")).text
    assert f'action="/web/orders/{nothing}/refill"' not in detail
    refused = await client.post(f"/web/orders/{nothing}/refill", data={"csrf": csrf})
    assert refused.status_code == 409
    assert "Refill is not available for this order" in refused.text


async def test_a_mass_order_keeps_the_failed_lines_and_links_the_orders_it_made(
    client: httpx.AsyncClient, make_customer: MakeCustomer, make_service: MakeService
) -> None:
    await signed_in(client, make_customer, "10")
    service = await make_service(min_quantity=10)
    csrf = csrf_of(await client.get("/web/orders/mass"))
    lines = f"{service}|https://x.com/1|100\nnot a line\n\n{service}|https://x.com/2|5\n"
    answer = await client.post("/web/orders/mass", data={"csrf": csrf, "lines": lines})
    assert answer.status_code == 200
    kept = re.search(r'<textarea id="mass-lines"[^>]*>([^<]*)</textarea>', answer.text)
    assert kept is not None
    assert kept.group(1) == f"not a line\n{service}|https://x.com/2|5"
    made = re.search(r'<a class="ok" href="/web/orders/(\d+)">Order (\d+) placed</a>', answer.text)
    assert made is not None and made.group(1) == made.group(2)
    assert 'id="mass-kept"' in answer.text


def test_the_expiry_date_picker_sends_the_protocols_date() -> None:
    assert protocol_date("2027-01-31") == "31/01/2027"
    assert protocol_date("31/01/2027") == "31/01/2027"  # typed the protocol's way: as is
    assert protocol_date("soon") == "soon"


async def test_the_expiry_field_is_a_date_and_a_subscription_is_placed_with_it(
    ctx: AppContext,
    client: httpx.AsyncClient,
    make_customer: MakeCustomer,
    make_service: MakeService,
) -> None:
    await signed_in(client, make_customer, "10")
    service = await make_service(type="Subscriptions", min_quantity=10, cancel=False)
    form = await client.get(f"/web/orders/new?service={service}")
    assert '<input id="f-expiry" name="expiry" type="date"' in form.text
    day = (utcnow() + timedelta(days=40)).date()
    placed = await client.post(
        "/web/orders/new",
        data={
            "csrf": csrf_of(form),
            "service": str(service),
            "username": "someone",
            "min": "10",
            "max": "20",
            "posts": "5",
            "expiry": day.isoformat(),
        },
    )
    assert placed.status_code == 303, placed.text[:800]
    order_id = int(placed.headers["location"].rsplit("=", 1)[1])
    async with ctx.db.session() as session:
        params = await session.scalar(select(Order.params).where(Order.id == order_id))
    assert params is not None and params["expiry"] == day.strftime("%d/%m/%Y")


async def test_every_service_shows_its_average_completion_time(
    ctx: AppContext,
    client: httpx.AsyncClient,
    make_customer: MakeCustomer,
    make_service: MakeService,
    make_user: MakeUser,
    api: Api,
) -> None:
    service = await make_service(name="Timed followers", min_quantity=10)
    untimed = await make_service(name="New service", min_quantity=10)
    user = await make_user(balance="10")
    ids = [
        order_id_of(
            await api(user.key, "add", service=service, link=f"https://x.com/{n}", quantity=100)
        )
        for n in range(3)
    ]
    now = utcnow()
    async with ctx.db.transaction() as session:
        # 2 h, 2 h 30 min, and 2 h 15 min: 2 h 15 min on average.
        for order_id, minutes in zip(ids, (120, 150, 135), strict=True):
            await session.execute(
                update(Order)
                .where(Order.id == order_id)
                .values(
                    status=COMPLETED,
                    remains=0,
                    created_at=now - timedelta(minutes=minutes + 5),
                    finished_at=now - timedelta(minutes=5),
                )
            )
    async with ctx.db.transaction() as session:
        assert await average.refresh(session, now) == 1
    async with ctx.db.transaction() as session:
        assert await average.refresh(session, now) == 0  # unchanged: nothing written

    rows = {r["service"]: r for r in await api(user.key, "services")}
    assert rows[service]["average_time"] == "135"
    assert "average_time" not in rows[untimed]

    await signed_in(client, make_customer, "10")
    page = (await client.get("/web/services")).text
    assert '<th scope="col">Average time</th>' in page
    timed_row = page.split(f'id="service-{service}"')[1].split("</tr>")[0]
    assert '<td class="average">2 h 15 min</td>' in timed_row
    untimed_row = page.split(f'id="service-{untimed}"')[1].split("</tr>")[0]
    assert '<td class="average">—</td>' in untimed_row
    form = (await client.get(f"/web/orders/new?service={service}")).text
    assert 'data-average="Average time: 2 h 15 min"' in form
    csrf = refs(form).csrf or ""
    await client.post("/web/language", data={"csrf": csrf, "language": "ru"})
    russian = (await client.get("/web/services")).text
    assert '<th scope="col">Среднее время</th>' in russian
    assert '<td class="average">2 ч 15 мин</td>' in russian
