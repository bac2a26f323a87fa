"""Every page of the storefront in a real browser (headless Chromium against a real panel
server process), as a Russian-speaking reseller would try it: each page in English and
Russian, on a 360 px phone and a 1280 px desktop, never scrolling sideways at 360 px
(asserted from the document's width), with 0 axe-core violations, and a screenshot of each
kept under tests/artifacts/pages/ (git-ignored; CI keeps that folder as its artifacts).

Then the deposit flow in roubles on a phone, in Russian: amounts read in roubles, a
decimal comma, a refusal that keeps the chosen gateway, the invoice with its link to pay;
and the order form's warnings before sending (below the minimum, above the balance)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from decimal import Decimal

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ready
from selenium.webdriver.support.ui import Select
from sqlalchemy import select, update

from app.catalog.models import Service
from app.context import AppContext
from app.mail.service import Mailer
from app.payments.models import Payment
from app.settings import Settings
from app.tickets import service as tickets
from tests.support.api import Api, MakeService, order_id_of
from tests.support.axe import violations
from tests.support.browser import ARTIFACTS, chromium, chromium_present, wait
from tests.support.client import Customer, MakeCustomer
from tests.support.pages import page_width, sign_in_by_cookie, switch_language
from tests.support.server import panel_server
from tests.support.web import storefront_routes

pytestmark = pytest.mark.skipif(
    not chromium_present() and not os.environ.get("CI"),
    reason="chromium and chromedriver are not installed (CI installs them)",
)
SHOTS = ARTIFACTS / "pages"
WIDTHS = (360, 1280)
LANGUAGES = ("en", "ru")
# Not pages: the gateway's payment page, the logo file, the data export (JSON).
NOT_PAGES = ("/pay", "/logo", "/export")
PUBLIC = ("/web/", "/web/services", "/web/terms", "/web/forgot", "/web/operator")


@pytest.fixture(scope="module")
def storefront(database_url: str, settings: Settings) -> Iterator[str]:
    """The panel as a server process with two gateways in roubles at 0.011 USD each."""
    with panel_server(
        database_url,
        QUEUE_NAME=settings.queue_name,
        ROBOKASSA_LOGIN="shop",
        ROBOKASSA_PASSWORD1="one",
        ROBOKASSA_PASSWORD2="two",
        FREEKASSA_MERCHANT_ID="42",
        FREEKASSA_SECRET1="one",
        FREEKASSA_SECRET2="two",
        CURRENCY_RATES='{"RUB": "0.011"}',
    ) as base:
        yield base


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    with chromium(1280, 900) as driver:
        yield driver


def look(driver: WebDriver, url: str, shot: str, width: int) -> list[str]:
    """Open `url`; what is wrong with it (sideways scrolling, axe violations)."""
    driver.get(url)
    wait(driver).until(ready.presence_of_element_located((By.TAG_NAME, "main")))
    problems = []
    if width == 360 and page_width(driver) > 360:
        problems.append(f"{url} at 360 px is {page_width(driver)} px wide")
    problems += [f"{url} at {width} px: axe {v}" for v in violations(driver)]
    driver.save_screenshot(str(SHOTS / f"{shot}-{width}.png"))
    return problems


def shot_name(path: str, language: str) -> str:
    name = path.removeprefix("/web").strip("/").replace("/", "-") or "home"
    return f"{name}-{language}"


async def a_customer_with_everything(
    ctx: AppContext, make_customer: MakeCustomer, make_service: MakeService, api: Api
) -> tuple[Customer, dict[str, int]]:
    """A customer with an order, a ticket and a pending invoice, and services with and
    without an average time, so that every page has something to show."""
    customer = await make_customer("25")
    timed = await make_service(
        category="Instagram",
        name="Real followers with a rather long name that must wrap on a phone",
        description="https://instagram.com/a-very-long-link-that-must-not-widen-the-page-at-all",
        dripfeed=True,
        min_quantity=10,
    )
    await make_service(category="Telegram", name="Channel members", refill=False)
    async with ctx.db.transaction() as session:
        await session.execute(
            update(Service).where(Service.id == timed).values(average_seconds=8100)
        )
    order_id = order_id_of(
        await api(
            customer.key,
            "add",
            service=timed,
            link="https://instagram.com/p/long-link",
            quantity=100,
        )
    )
    notify = tickets.Notify(Mailer(ctx.db, "console", "panel"), None)
    async with ctx.db.transaction() as session:
        ticket = await tickets.open_ticket(
            session,
            notify,
            customer.user_id,
            subject="Where is my order?",
            category="order",
            message="It has not started yet.",
            order_ids=[order_id],
        )
        invoice = Payment(
            user_id=customer.user_id,
            gateway="freekassa",
            amount=Decimal("909.10"),
            currency="RUB",
            credit_amount=Decimal("10"),
            pay_url="https://pay.freekassa.example/?m=42&o=1",
        )
        session.add(invoice)
        await session.flush()
    return customer, {"order_id": order_id, "ticket_id": ticket.id, "payment_id": invoice.id}


async def test_every_page_in_both_languages_at_360_and_1280_px_without_axe_violations(
    storefront: str,
    browser: WebDriver,
    ctx: AppContext,
    make_customer: MakeCustomer,
    make_service: MakeService,
    api: Api,
) -> None:
    base, driver = storefront, browser
    customer, ids = await a_customer_with_everything(ctx, make_customer, make_service, api)
    paths = [
        p for p in storefront_routes("GET", **ids) if not p.endswith(NOT_PAGES) and "{" not in p
    ]
    assert len(paths) >= 25, paths
    SHOTS.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    # Signed out: the public pages.
    driver.delete_all_cookies()
    for language in LANGUAGES:
        driver.set_window_size(1280, 900)
        driver.get(f"{base}/web/")
        switch_language(driver, language)
        for width in WIDTHS:
            driver.set_window_size(width, 900)
            for path in PUBLIC:
                problems += look(
                    driver, f"{base}{path}", "public-" + shot_name(path, language), width
                )
    # Signed in: every page of the storefront.
    sign_in_by_cookie(driver, base, customer.token)
    for language in LANGUAGES:
        driver.set_window_size(1280, 900)
        driver.get(f"{base}/web/orders")
        switch_language(driver, language)
        for width in WIDTHS:
            driver.set_window_size(width, 900)
            for path in paths:
                problems += look(driver, f"{base}{path}", shot_name(path, language), width)
    driver.set_window_size(1280, 900)
    switch_language(driver, "en")
    assert problems == [], "\n".join(problems)
    assert len(list(SHOTS.glob("*.png"))) >= 2 * 2 * len(paths)


def fill(driver: WebDriver, field_id: str, text: str) -> None:
    element = driver.find_element(By.ID, field_id)
    element.clear()
    element.send_keys(text)


def made_id(driver: WebDriver) -> str:
    """The invoice's id, from its page's heading ("Счёт 7")."""
    return str(driver.find_element(By.TAG_NAME, "h1").text.split()[-1])


def submit(driver: WebDriver, button_id: str) -> None:
    page = driver.find_element(By.TAG_NAME, "html")
    driver.find_element(By.ID, button_id).click()
    wait(driver).until(ready.staleness_of(page))


async def test_a_deposit_in_roubles_with_a_decimal_comma_on_a_phone_in_russian(
    storefront: str, browser: WebDriver, ctx: AppContext, make_customer: MakeCustomer
) -> None:
    base, driver = storefront, browser
    customer = await make_customer("10")
    sign_in_by_cookie(driver, base, customer.token)
    driver.set_window_size(360, 800)
    try:
        driver.get(f"{base}/web/account")
        switch_language(driver, "ru")
        Select(driver.find_element(By.ID, "display-currency")).select_by_value("RUB")
        Select(driver.find_element(By.ID, "timezone")).select_by_value("Europe/Moscow")
        submit(driver, "save-profile")
        # 10 USD at 0.011 USD per rouble, marked as converted, and the page says how.
        assert driver.find_element(By.CSS_SELECTOR, "#balance strong").text == "≈ 909,09 ₽"
        note = driver.find_element(By.ID, "conversion-note").text
        assert "1,00 $ = 90,91 ₽" in note and "USD" in note

        driver.get(f"{base}/web/funds")
        assert driver.find_element(By.CSS_SELECTOR, "label[for=amount]").text == "Сумма, RUB"
        driver.find_element(By.CSS_SELECTOR, "label[for=gateway-freekassa]").click()
        fill(driver, "amount", "50,5")
        submit(driver, "create-invoice")
        # Refused (below 1 USD): the reason in roubles, Free-Kassa still chosen, the amount kept.
        assert driver.find_element(By.ID, "funds-error").text == (
            "Минимальное пополнение — ≈ 90,91 ₽"
        )
        assert driver.find_element(By.ID, "gateway-freekassa").is_selected()
        assert driver.find_element(By.ID, "amount").get_attribute("value") == "50,5"
        assert page_width(driver) <= 360
        driver.save_screenshot(str(SHOTS / "deposit-refused-ru-360.png"))

        fill(driver, "amount", "500,50")
        submit(driver, "create-invoice")
        assert driver.find_element(By.ID, "invoice-amount").text == "500,50 ₽"
        assert driver.find_element(By.ID, "invoice-credit").text == "5,5055 $"  # exact
        pay = driver.find_element(By.ID, "pay-now").get_attribute("href") or ""
        assert pay.endswith(f"/web/funds/{made_id(driver)}/pay")
        driver.save_screenshot(str(SHOTS / "deposit-invoice-ru-360.png"))
        async with ctx.db.session() as session:
            made = (
                await session.execute(
                    select(Payment.gateway, Payment.amount, Payment.credit_amount).where(
                        Payment.user_id == customer.user_id
                    )
                )
            ).one()
        assert tuple(made) == ("freekassa", Decimal("500.50"), Decimal("5.5055"))
        driver.get(f"{base}/web/funds")
        (row,) = driver.find_elements(By.CSS_SELECTOR, "#invoices tbody tr")
        assert "Free-Kassa" in row.text and "500,50 ₽" in row.text
        assert (row.find_element(By.LINK_TEXT, "Оплатить").get_attribute("href") or "") == pay
    finally:
        driver.set_window_size(1280, 900)
        switch_language(driver, "en")


async def test_the_order_form_warns_before_sending(
    storefront: str,
    browser: WebDriver,
    make_customer: MakeCustomer,
    make_service: MakeService,
) -> None:
    base, driver = storefront, browser
    customer = await make_customer("1")
    service = await make_service(category="Warned", rate=Decimal("2"), min_quantity=100)
    sign_in_by_cookie(driver, base, customer.token)
    driver.get(f"{base}/web/orders/new?service={service}")
    warning = driver.find_element(By.ID, "charge-warning")
    fill(driver, "f-quantity", "50")
    assert warning.text == "Below the minimum quantity (100)."
    fill(driver, "f-quantity", "20000")
    assert warning.text == "Above the maximum quantity (10,000)."
    fill(driver, "f-quantity", "1000")  # $2.00 with $1.00 on the balance
    assert warning.text == "More than your balance ($1.00): add funds first."
    fill(driver, "f-quantity", "400")
    assert not warning.is_displayed()


async def test_a_compact_header_on_a_phone_and_links_that_follow_the_port(
    storefront: str, browser: WebDriver, make_customer: MakeCustomer
) -> None:
    """The header keeps to a few short lines at 360 px (it took about 200 of 800 px); the
    server listens on a port of its own and PUBLIC_URL is unset: the API page's address
    and the referral link name that port."""
    base, driver = storefront, browser
    customer = await make_customer("10")
    sign_in_by_cookie(driver, base, customer.token)
    driver.set_window_size(360, 800)
    try:
        for language in LANGUAGES:
            driver.get(f"{base}/web/orders")
            switch_language(driver, language)
            height = driver.execute_script(
                "return document.querySelector('header.top').getBoundingClientRect().height"
            )
            assert height <= 130, (language, height)
            assert page_width(driver) <= 360
    finally:
        driver.set_window_size(1280, 900)
        switch_language(driver, "en")
    driver.get(f"{base}/web/api")
    assert driver.find_element(By.ID, "api-address").text == f"{base}/api/v2"
    driver.get(f"{base}/web/affiliates")
    link = driver.find_element(By.ID, "ref-link").get_attribute("value") or ""
    assert link.startswith(f"{base}/?ref="), link
