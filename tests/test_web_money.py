"""Money on the storefront as a Russian-speaking customer reads it: amounts in the locale's
format (`454,55 ₽`), never internal precision or codes; a deposit typed with a decimal
comma; the chosen payment method kept after a refusal; readable gateway names and their
ways to pay; a pending invoice with its link to pay; and amounts read in roubles while
charges stay in the panel's currency at the operator's rate, which every page says."""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import select

from app.context import AppContext
from app.payments import service as payments
from app.payments.models import Payment
from tests.support.client import Customer, MakeCustomer
from tests.support.web import csrf_of, signed_in


@pytest.fixture(autouse=True)
def gateways(ctx: AppContext) -> Iterator[None]:
    s = ctx.settings
    saved = s.model_dump()
    s.robokassa_login, s.robokassa_password1, s.robokassa_password2 = "shop", "one", "two"
    s.freekassa_merchant_id, s.freekassa_secret1, s.freekassa_secret2 = "42", "one", "two"
    s.currency_rates = {"RUB": Decimal("0.011")}
    s.min_deposit = Decimal("1")
    yield
    for name, value in saved.items():
        setattr(s, name, value)


def test_a_deposit_amount_takes_a_decimal_comma_or_point() -> None:
    assert payments.parse_amount("5,5") == payments.parse_amount("5.5") == Decimal("5.5")
    assert payments.parse_amount(" 1000,25 ") == Decimal("1000.25")
    for bad in ("5,5,5", "5,5.5", "1 000", ",5", "５", "1e3"):
        with pytest.raises(payments.IncorrectAmount):
            payments.parse_amount(bad)


async def switch(client: httpx.AsyncClient, language: str) -> None:
    page = await client.get("/web/funds")
    await client.post("/web/language", data={"csrf": csrf_of(page), "language": language})


def checked_gateway(html: str) -> str:
    found = re.search(r'name="gateway" value="([a-z]+)" checked', html)
    assert found is not None, html
    return found.group(1)


async def test_a_refused_deposit_keeps_the_method_and_says_the_minimum_in_the_locale(
    client: httpx.AsyncClient, make_customer: MakeCustomer
) -> None:
    await signed_in(client, make_customer, "0")
    page = await client.get("/web/funds")
    assert checked_gateway(page.text) == "robokassa"  # the first, until one is chosen
    assert "Robokassa" in page.text and "Free-Kassa" in page.text
    assert "bank cards, SBP" in page.text
    refused = await client.post(
        "/web/funds", data={"csrf": csrf_of(page), "gateway": "freekassa", "amount": "0,5"}
    )
    assert refused.status_code == 422
    assert checked_gateway(refused.text) == "freekassa"
    assert 'value="0,5"' in refused.text
    assert "Minimum deposit is $1.00" in refused.text
    assert "1.00000" not in refused.text

    await switch(client, "ru")
    page = await client.get("/web/funds")
    refused = await client.post(
        "/web/funds", data={"csrf": csrf_of(page), "gateway": "freekassa", "amount": "0,5"}
    )
    assert "Минимальное пополнение — 1,00\xa0$" in refused.text
    assert checked_gateway(refused.text) == "freekassa"
    assert "банковские карты, СБП" in refused.text


async def test_a_deposit_with_a_decimal_comma_opens_an_invoice_with_its_link_to_pay(
    ctx: AppContext, client: httpx.AsyncClient, make_customer: MakeCustomer
) -> None:
    customer = await signed_in(client, make_customer, "0")
    page = await client.get("/web/funds")
    made = await client.post(
        "/web/funds", data={"csrf": csrf_of(page), "gateway": "freekassa", "amount": "5,5"}
    )
    assert made.status_code == 200, made.text
    payment = await only_payment(ctx, customer)
    assert (payment.gateway, payment.credit_amount, payment.amount) == (
        "freekassa",
        Decimal("5.5"),
        Decimal("500.00"),
    )
    # The invoice in the locale's format: no internal precision, no bare codes.
    assert 'id="invoice-amount">RUB500.00<' in made.text
    assert 'id="invoice-credit">$5.50<' in made.text
    assert "5.50000" not in made.text and "freekassa" not in made.text.replace(
        'value="freekassa"', ""
    )
    # The invoices list links a pending invoice to its payment page, through the panel.
    listed = await client.get("/web/funds")
    assert f'href="/web/funds/{payment.id}/pay"' in listed.text
    paying = await client.get(f"/web/funds/{payment.id}/pay")
    assert (paying.status_code, paying.headers["location"]) == (303, payment.pay_url)
    await switch(client, "ru")
    again = await client.get(f"/web/funds/{payment.id}")
    assert 'id="invoice-amount">500,00\xa0₽<' in again.text
    assert 'id="invoice-credit">5,50\xa0$<' in again.text


async def test_amounts_read_in_roubles_and_deposits_typed_in_roubles(
    ctx: AppContext, client: httpx.AsyncClient, make_customer: MakeCustomer
) -> None:
    customer = await signed_in(client, make_customer, "10")
    account = await client.get("/web/account")
    assert '<option value="RUB"' in account.text
    saved = await client.post(
        "/web/account/profile",
        data={
            "csrf": csrf_of(account),
            "name": "",
            "language": "ru",
            "timezone": "Europe/Moscow",
            "currency": "RUB",
        },
    )
    assert saved.status_code == 303
    page = await client.get("/web/funds")
    # 10 USD at 0.011 USD per rouble; every page that converts says so.
    assert "≈\xa0909,09\xa0₽" in page.text
    note = re.search(r'id="conversion-note">([^<]+)<', page.text)
    assert note is not None
    assert "по курсу панели (1,00\xa0$ = ≈\xa090,91\xa0₽" not in note.group(1)
    assert "1,00\xa0$ = 90,91\xa0₽" in note.group(1) and "USD" in note.group(1)
    assert "Сумма, RUB" in page.text
    # 500,50 roubles typed: the invoice is those roubles, the credit their value in USD.
    made = await client.post(
        "/web/funds", data={"csrf": csrf_of(page), "gateway": "robokassa", "amount": "500,50"}
    )
    assert made.status_code == 200, made.text
    payment = await only_payment(ctx, customer)
    assert (payment.amount, payment.currency, payment.credit_amount) == (
        Decimal("500.50"),
        "RUB",
        Decimal("5.5055"),
    )
    # Too little in roubles: the minimum in roubles too, the method kept.
    refused = await client.post(
        "/web/funds", data={"csrf": csrf_of(page), "gateway": "freekassa", "amount": "50"}
    )
    assert "Минимальное пополнение — ≈\xa090,91\xa0₽" in refused.text
    assert checked_gateway(refused.text) == "freekassa"
    # A currency the panel has no rate for is refused.
    bad = await client.post(
        "/web/account/profile",
        data={"csrf": csrf_of(page), "language": "ru", "timezone": "UTC", "currency": "EUR"},
    )
    assert bad.status_code == 422 and "Неверная валюта" in bad.text


async def only_payment(ctx: AppContext, customer: Customer) -> Payment:
    async with ctx.db.session() as session:
        (payment,) = await session.scalars(
            select(Payment).where(Payment.user_id == customer.user_id)
        )
    return payment
