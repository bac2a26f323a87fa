"""The storefront's pages beyond ordering, in a real browser: headless Chromium against a
real panel server process, a real sandbox provider and a burst worker.

A drip-feed order placed through the order form is split into its runs by the panel (the
provider cannot drip-feed): the order's page shows each run with when it is due, the runs'
quantity and the interval, and the drip-feed page counts the runs done; a subscription
and a refill show on their pages; an order without runs or subscription shows neither
section. Every page is looked at on a 360 px phone and a 1280 px desktop, in English and
Russian, without sideways scrolling at 360 px.

An operator publishes an announcement in the console; the customer's dashboard marks it
unread, the news page shows it in their language, and opening it clears the mark.

A referrer (AFFILIATE_PAYOUTS=review) sees the commission, the minimum payout and what is
available, asks for a payout, and sees it credited once a finance member approves it in
the console.

A customer chooses their notifications on the account page, links the panel's bot (a
local fake Bot API) with the one-time code the page shows, and gets the completion of an
order in their Telegram chat.

With the system set to dark, the pages turn dark and axe-core finds no violation on them
(contrast included)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, timedelta
from decimal import Decimal

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ready
from selenium.webdriver.support.ui import Select
from sqlalchemy import select, update

from app.context import AppContext
from app.news.models import News
from app.orders.models import COMPLETED, Order
from app.settings import Settings
from tests.support.api import Api, MakeService
from tests.support.axe import violations
from tests.support.browser import chromium, chromium_present, wait
from tests.support.client import MakeCustomer
from tests.support.console import PASSWORD, Member, enrolled
from tests.support.env import AUTH
from tests.support.pages import look_at, sign_in_by_cookie, switch_language
from tests.support.server import panel_server
from tests.support.telegram import BOT_NAME, TOKEN, fake_bot_api
from tests.support.upstream import followers_provider, run_jobs
from workers.main import deliver_notifications, poll_telegram

pytestmark = pytest.mark.skipif(
    not chromium_present() and not os.environ.get("CI"),
    reason="chromium and chromedriver are not installed (CI installs them)",
)


@pytest.fixture(scope="module")
def storefront(database_url: str, settings: Settings) -> Iterator[str]:
    with panel_server(
        database_url,
        QUEUE_NAME=settings.queue_name,
        AFFILIATE_PAYOUTS="review",
        AFFILIATE_MIN_PAYOUT="0.5",
    ) as base:
        yield base


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    with chromium(1280, 900) as driver:
        yield driver


@pytest.fixture
async def provider(ctx: AppContext, settings: Settings) -> AsyncIterator[int]:
    async with followers_provider(
        ctx,
        settings,
        seconds_to_start=0,
        seconds_to_complete=3600,
    ) as provider_id:
        yield provider_id


async def test_a_drip_feed_order_shows_its_runs_and_interval(
    storefront: str,
    browser: WebDriver,
    ctx: AppContext,
    settings: Settings,
    make_customer: MakeCustomer,
    make_service: MakeService,
    provider: int,
) -> None:
    base, driver = storefront, browser
    service = await make_service(
        category="Followers",
        name="Slow followers",
        rate=Decimal("1"),
        min_quantity=10,
        dripfeed=True,
        provider_id=provider,
        provider_service_id="1",
    )
    customer = await make_customer("10")
    sign_in_by_cookie(driver, base, customer.token)

    driver.get(f"{base}/web/orders/new")
    Select(driver.find_element(By.ID, "category")).select_by_visible_text("Followers")
    Select(driver.find_element(By.ID, "service")).select_by_value(str(service))
    driver.find_element(By.ID, "f-link").send_keys("https://instagram.com/drip")
    driver.find_element(By.ID, "f-quantity").send_keys("100")
    driver.find_element(By.ID, "dripfeed").click()
    driver.find_element(By.ID, "f-runs").send_keys("3")
    driver.find_element(By.ID, "f-interval").send_keys("30")
    driver.find_element(By.ID, "place-order").click()
    wait(driver).until(ready.visibility_of_element_located((By.ID, "placed")))

    async with ctx.db.session() as session:
        parent = await session.scalar(
            select(Order).where(Order.user_id == customer.user_id, Order.parent_id.is_(None))
        )
        assert parent is not None
        assert (parent.runs, parent.interval_minutes, parent.quantity) == (3, 30, 300)
        runs = list(await session.scalars(select(Order.id).where(Order.parent_id == parent.id)))
    assert len(runs) == 3
    # The first run is due now and goes upstream; the provider completes it.
    await run_jobs(settings, ctx)
    async with ctx.db.transaction() as session:
        await session.execute(update(Order).where(Order.id == runs[0]).values(status=COMPLETED))

    seen = look_at(driver, base, f"/web/orders/{parent.id}", "drip-order", "drip-feed")
    assert "30 min" in seen["en"] and "30 мин" in seen["ru"]
    assert driver.find_element(By.ID, "drip-runs").text == "3"
    assert driver.find_element(By.ID, "drip-per-run").text == "100"
    assert driver.find_element(By.ID, "drip-interval").text == "30 min"
    rows = driver.find_elements(By.CSS_SELECTOR, "#runs tbody tr")
    assert [r.get_attribute("data-status") for r in rows] == [COMPLETED, "Pending", "Pending"]
    assert [r.find_elements(By.TAG_NAME, "td")[2].text for r in rows] == ["100"] * 3
    # Each run is due one interval after the one before.
    starts = [r.find_elements(By.TAG_NAME, "td")[1].text for r in rows]
    assert [s[-5:] for s in starts] == [
        (parent.created_at + timedelta(minutes=30 * i)).astimezone(UTC).strftime("%H:%M")
        for i in range(3)
    ]
    # No subscription section here; refills only where the service offers them.
    assert driver.find_elements(By.ID, "subscription") == []

    seen = look_at(driver, base, "/web/drip-feed", "drip-feed", "drip-feed")
    row = driver.find_element(By.ID, f"drip-{parent.id}")
    assert row.find_element(By.CLASS_NAME, "runs").text == "1 of 3"
    assert "1 из 3" in seen["ru"] and "Постепенн" not in seen["en"]


async def test_subscriptions_and_refills_have_their_pages(
    storefront: str,
    browser: WebDriver,
    ctx: AppContext,
    api: Api,
    make_customer: MakeCustomer,
    make_service: MakeService,
) -> None:
    base, driver = storefront, browser
    customer = await make_customer("100")
    sign_in_by_cookie(driver, base, customer.token)
    for path, name in (
        ("/web/subscriptions", "subscriptions-empty"),
        ("/web/refills", "refills-empty"),
    ):
        seen = look_at(driver, base, path, name, "none")
        assert seen["en"].startswith("No ") and seen["ru"].endswith("пока нет.")

    auto = await make_service(
        category="Auto likes", name="Auto likes", type="Subscriptions", min_quantity=10
    )
    made = await api(
        customer.key,
        "add",
        service=auto,
        username="brand",
        min="20",
        max="50",
        posts="4",
        expiry="01/01/2099",
    )
    likes = await make_service(category="Likes", name="Likes", refill=True, min_quantity=10)
    delivered = await api(
        customer.key, "add", service=likes, link="https://x.com/p/1", quantity="100"
    )
    async with ctx.db.transaction() as session:
        await session.execute(
            update(Order).where(Order.id == delivered["order"]).values(status=COMPLETED, remains=0)
        )
    refill = await api(customer.key, "refill", order=str(delivered["order"]))

    look_at(driver, base, "/web/subscriptions", "subscriptions", "subscriptions")
    cells = driver.find_elements(By.CSS_SELECTOR, f"#subscription-{made['order']} td")
    assert [c.text for c in cells[3:7]] == ["brand", "20–50", "4", "01/01/2099"]
    seen = look_at(
        driver, base, f"/web/orders/{made['order']}", "subscription-order", "subscription"
    )
    assert "Per post" in seen["en"] and "На публикацию" in seen["ru"]
    assert driver.find_elements(By.ID, "drip-feed") == []

    seen = look_at(driver, base, "/web/refills", "refills", "refills")
    row = driver.find_element(By.ID, f"refill-{refill['refill']}")
    assert row.get_attribute("data-status") == "Pending"
    assert "Ожидает" in seen["ru"] or "Pending" not in seen["ru"]
    seen = look_at(
        driver, base, f"/web/orders/{delivered['order']}", "refill-order", "order-refills"
    )
    assert f"#{refill['refill']}" in seen["en"]


def console_sign_in(driver: WebDriver, base: str, member: Member) -> None:
    driver.delete_all_cookies()
    driver.get(f"{base}/web/admin/login")
    driver.find_element(By.ID, "login-email").send_keys(member.staff.email)
    driver.find_element(By.ID, "login-password").send_keys(PASSWORD)
    driver.find_element(By.ID, "login-code").send_keys(member.code())
    driver.find_element(By.ID, "login-submit").click()
    wait(driver).until(ready.visibility_of_element_located((By.ID, "welcome")))


async def test_news_published_in_the_console_reaches_the_dashboard_unread(
    storefront: str, browser: WebDriver, ctx: AppContext, make_customer: MakeCustomer
) -> None:
    base, driver = storefront, browser
    member = await enrolled(ctx, "manager")
    console_sign_in(driver, base, member)
    driver.get(f"{base}/web/admin/news")
    for field, text in (
        ("n-title-en", "New Telegram services"),
        ("n-body-en", "Views and reactions for channels."),
        ("n-title-ru", "Новые услуги Telegram"),
        ("n-body-ru", "Просмотры и реакции для каналов."),
    ):
        driver.find_element(By.ID, field).send_keys(text)
    driver.find_element(By.ID, "news-publish").click()
    assert (
        "Published" in wait(driver).until(ready.visibility_of_element_located((By.ID, "done"))).text
    )
    async with ctx.db.session() as session:
        (item,) = await session.scalars(select(News))
    assert (item.author, item.title_ru) == (member.staff.email, "Новые услуги Telegram")

    customer = await make_customer("0")
    sign_in_by_cookie(driver, base, customer.token)
    seen = look_at(driver, base, "/web/orders/new", "dashboard-news", "latest-news")
    assert "1 unread" in seen["en"] and "непрочитанных: 1" in seen["ru"]
    assert "Новые услуги Telegram" in seen["ru"] and "New Telegram services" in seen["en"]
    seen = look_at(driver, base, "/web/news", "news", "news")
    assert "Просмотры и реакции для каналов." in seen["ru"]
    driver.get(f"{base}/web/orders/new")
    panel = driver.find_element(By.ID, "latest-news")
    assert panel.find_elements(By.CSS_SELECTOR, ".unread") == []


async def test_a_payout_request_is_reviewed_and_credited(
    storefront: str, browser: WebDriver, ctx: AppContext, make_customer: MakeCustomer
) -> None:
    base, driver = storefront, browser
    referrer = await make_customer("0")
    async with httpx.AsyncClient(base_url=base, headers=AUTH) as admin:
        code = (await admin.get(f"/admin/v1/users/{referrer.user_id}")).json()["referral_code"]
        body = {"email": "friend@example.com", "referral_code": code, "initial_balance": "20"}
        assert (await admin.post("/admin/v1/users", json=body)).status_code == 201
    sign_in_by_cookie(driver, base, referrer.token)
    seen = look_at(driver, base, "/web/affiliates", "affiliates", "commission")
    assert seen["en"].startswith("5% of every deposit")
    assert seen["ru"].startswith("5 % от каждого пополнения")  # the browser's text: a space
    assert driver.find_element(By.ID, "available").text == "$1.00"
    assert driver.find_element(By.ID, "min-payout").text == "$0.50"
    page = driver.find_element(By.TAG_NAME, "html")
    driver.find_element(By.ID, "request-payout").click()
    wait(driver).until(ready.staleness_of(page))
    assert "sent for review" in driver.find_element(By.ID, "done").text
    (row,) = driver.find_elements(By.CSS_SELECTOR, "#payouts tbody tr")
    assert row.get_attribute("data-status") == "pending"
    payout_id = int(str(row.get_attribute("id")).removeprefix("payout-"))
    look_at(driver, base, "/web/affiliates", "affiliates-pending", "payouts")

    member = await enrolled(ctx, "finance")
    console_sign_in(driver, base, member)
    driver.get(f"{base}/web/admin/referral-payouts?status=pending")
    driver.find_element(By.ID, f"approve-{payout_id}").click()
    assert (
        "Approved" in wait(driver).until(ready.visibility_of_element_located((By.ID, "done"))).text
    )

    sign_in_by_cookie(driver, base, referrer.token)
    driver.get(f"{base}/web/affiliates")
    row = driver.find_element(By.ID, f"payout-{payout_id}")
    assert (row.get_attribute("data-status"), driver.find_element(By.ID, "balance").text) == (
        "paid",
        "Balance: $1.00",
    )


async def test_a_customer_links_telegram_and_is_told_of_a_completed_order(
    database_url: str,
    browser: WebDriver,
    ctx: AppContext,
    api: Api,
    make_customer: MakeCustomer,
    make_service: MakeService,
) -> None:
    driver = browser
    before = ctx.settings.telegram_bot_token, ctx.settings.telegram_api_url
    async with fake_bot_api() as bot:
        ctx.settings.telegram_bot_token, ctx.settings.telegram_api_url = TOKEN, bot.url
        env = {"TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_API_URL": bot.url}
        try:
            with panel_server(database_url, **env) as base:
                jobs = {"db": ctx.db, "settings": ctx.settings}
                await poll_telegram(jobs)  # the worker has read the bot's name
                customer = await make_customer("10")
                sign_in_by_cookie(driver, base, customer.token)
                seen = look_at(
                    driver, base, "/web/account", "account-notifications", "notifications"
                )
                assert "Link Telegram" in seen["en"] and "Привязать Telegram" in seen["ru"]
                driver.get(f"{base}/web/account")
                driver.find_element(By.ID, "n-completed").click()
                page = driver.find_element(By.TAG_NAME, "html")
                driver.find_element(By.ID, "notify-save").click()
                wait(driver).until(ready.staleness_of(page))
                assert driver.find_element(By.ID, "n-completed").is_selected()

                driver.find_element(By.ID, "telegram-link").click()
                code = (
                    wait(driver)
                    .until(ready.visibility_of_element_located((By.ID, "telegram-code")))
                    .text
                )
                opener = driver.find_element(By.ID, "telegram-open").get_attribute("href")
                assert opener == f"https://t.me/{BOT_NAME}?start={code.removeprefix('/start ')}"
                bot.say(9001, code)
                assert await poll_telegram(jobs) == 1
                seen = look_at(driver, base, "/web/account", "account-telegram", "telegram-linked")
                assert seen["en"].startswith("Linked since") and seen["ru"].startswith("Привязан с")

                service = await make_service(name="Views")
                placed = await api(
                    customer.key, "add", service=service, link="https://t.me/c/1", quantity=100
                )
                async with httpx.AsyncClient(base_url=base, headers=AUTH) as admin:
                    done = await admin.post(
                        f"/admin/v1/orders/{placed['order']}/status", json={"status": "Completed"}
                    )
                    assert done.status_code == 200
                assert await deliver_notifications(jobs) == {"mailed": 1, "sent": 1, "failed": 0}
        finally:
            ctx.settings.telegram_bot_token, ctx.settings.telegram_api_url = before
    assert bot.to(9001)[0].startswith("Linked: ")
    assert bot.to(9001)[1].startswith(f"Your order {placed['order']} (Views) is completed.")


def dark(driver: WebDriver, on: bool) -> None:
    """The system's colour scheme as the page sees it (prefers-color-scheme)."""
    value = "dark" if on else "light"
    features = [{"name": "prefers-color-scheme", "value": value}]
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": features})


async def test_the_dark_theme_follows_the_system_setting(
    storefront: str,
    browser: WebDriver,
    api: Api,
    make_customer: MakeCustomer,
    make_service: MakeService,
) -> None:
    base, driver = storefront, browser
    customer = await make_customer("10")
    service = await make_service(category="Likes", name="Likes", dripfeed=True)
    await api(customer.key, "add", service=service, link="https://x.com/d", quantity=100)
    sign_in_by_cookie(driver, base, customer.token)
    driver.get(f"{base}/web/services")
    background = "return getComputedStyle(document.querySelector('main')).backgroundColor"
    assert driver.execute_script(background) == "rgb(255, 255, 255)"
    dark(driver, True)
    try:
        assert driver.execute_script(background) == "rgb(23, 29, 43)"
        for path in (
            "/web/services",
            "/web/orders/new",
            "/web/orders",
            "/web/account",
            "/web/affiliates",
            "/web/news",
            "/web/drip-feed",
        ):
            name = "dark" + path.replace("/web", "").replace("/", "-")
            look_at(driver, base, path, name, "main")
            for language in ("en", "ru"):
                switch_language(driver, language)
                assert violations(driver) == [], (path, language)
            switch_language(driver, "en")
    finally:
        dark(driver, False)
