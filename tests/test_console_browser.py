"""The console in a real browser: headless Chromium against a real panel server process,
with a real sandbox provider and a burst worker where orders travel upstream.

A staff member signs in for the first time with email and password, is taken to the
enrolment page, scans (here: reads) the key beside the QR code, confirms with a code
computed here and lands on the dashboard; signs out; signs in again with a fresh code. A
support agent opening the audit log gets the page that says which permission is missing.
The dashboard draws its charts (a bar per day, the day's figure on it); a finance member
tops up a customer (the ledger entry names them); a support agent resolves a review with
a refund (ledger and audit entry naming them); an operator previews a bulk resend of the
review queue (nothing changes) and runs it (the orders go upstream again); a support agent
is refused a top-up by the console and by the API. Every page stays within a 360 px wide
screen (tables scroll in their own box); screenshots at 360 and 1280 px, in English and
Russian, are kept under tests/artifacts/ (kept by CI as artifacts)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pyotp
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ready
from selenium.webdriver.support.ui import Select
from sqlalchemy import select

from app.audit.models import AuditEntry
from app.context import AppContext
from app.ledger.models import LedgerEntry
from app.mail.service import Mailer
from app.settings import Settings
from app.staff import service as staff
from app.tickets import service as tickets
from tests.support.api import Api, MakeService, MakeUser
from tests.support.browser import ARTIFACTS, chromium, chromium_present, wait
from tests.support.console import PASSWORD, Member, enrolled
from tests.support.review import orders_in_review, review_provider
from tests.support.server import panel_server
from tests.support.staff import make_staff
from tests.support.upstream import run_jobs, sandbox_stats, upstream_states

pytestmark = pytest.mark.skipif(
    not chromium_present() and not os.environ.get("CI"),
    reason="chromium and chromedriver are not installed (CI installs them)",
)


@pytest.fixture(scope="module")
def console(database_url: str, settings: Settings) -> Iterator[str]:
    """The panel as a server process, queueing its jobs where this test's burst worker
    takes them."""
    with panel_server(database_url, QUEUE_NAME=settings.queue_name) as base:
        yield base


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    with chromium(1280, 900) as driver:
        yield driver


def fill(driver: WebDriver, field_id: str, text: str) -> None:
    element = driver.find_element(By.ID, field_id)
    element.clear()
    element.send_keys(text)


def text_of(driver: WebDriver, element_id: str) -> str:
    return str(wait(driver).until(ready.visibility_of_element_located((By.ID, element_id))).text)


def sign_in(driver: WebDriver, email: str, code: str) -> None:
    fill(driver, "login-email", email)
    fill(driver, "login-password", PASSWORD)
    fill(driver, "login-code", code)
    driver.find_element(By.ID, "login-submit").click()


def screenshots(driver: WebDriver, name: str, languages: tuple[str, ...] = ("en",)) -> None:
    """The page at 360 and 1280 px in each language, checking at 360 px that the page
    itself never scrolls sideways (a wide table scrolls in its own box)."""
    ARTIFACTS.mkdir(exist_ok=True)
    for language in languages:
        if language != "en":
            switch_language(driver, language)
        for width in (360, 1280):
            driver.set_window_size(width, 900)
            if width == 360:
                page_width = driver.execute_script("return document.documentElement.scrollWidth")
                assert page_width <= 360, (name, language, page_width)
            driver.save_screenshot(str(ARTIFACTS / f"console-{name}-{language}-{width}.png"))
        if language != "en":
            switch_language(driver, "en")
    driver.set_window_size(1280, 900)


def switch_language(driver: WebDriver, language: str) -> None:
    Select(driver.find_element(By.ID, "language-switch")).select_by_value(language)
    driver.find_element(By.ID, "language-apply").click()
    wait(driver).until(
        # read in the page itself: the element found before the new page loads goes stale
        lambda d: d.execute_script("return document.documentElement.lang") == language
    )


async def signed_in(driver: WebDriver, console: str, ctx: AppContext, role: str) -> Member:
    """A member of the role with an enrolled second factor, signed in through the form."""
    member = await enrolled(ctx, role)
    driver.delete_all_cookies()
    driver.get(f"{console}/web/admin/login")
    sign_in(driver, member.staff.email, member.code())
    wait(driver).until(ready.visibility_of_element_located((By.ID, "welcome")))
    return member


def submit_form(driver: WebDriver, button_id: str) -> None:
    """Submit and wait for the answer's page: an element of the same id on the page before
    it (a preview's summary, say) is never read in its place."""
    page = driver.find_element(By.TAG_NAME, "html")
    driver.find_element(By.ID, button_id).click()
    wait(driver).until(ready.staleness_of(page))


async def test_staff_sign_in_enrols_the_second_factor_then_signs_in_with_a_code(
    ctx: AppContext, console: str, browser: WebDriver
) -> None:
    await make_staff(ctx, "owner", "boss@staff.example", password=PASSWORD)
    driver = browser
    driver.delete_all_cookies()
    driver.get(f"{console}/web/admin/")
    wait(driver).until(ready.url_contains("/web/admin/login"))
    sign_in(driver, "boss@staff.example", "")

    wait(driver).until(ready.url_contains("/web/admin/login/enrol"))
    secret = text_of(driver, "totp-secret")
    assert driver.find_elements(By.CSS_SELECTOR, "#totp-qr svg") != []
    screenshots(driver, "enrol")
    fill(driver, "enrol-code", pyotp.TOTP(secret).now())
    driver.find_element(By.ID, "enrol-submit").click()
    wait(driver).until(ready.visibility_of_element_located((By.ID, "welcome")))
    assert driver.current_url == f"{console}/web/admin/"
    assert text_of(driver, "signed-in-as") == "boss@staff.example owner"
    screenshots(driver, "dashboard")

    driver.find_element(By.ID, "sign-out").click()
    wait(driver).until(ready.url_contains("/web/admin/login"))
    # The code used at enrolment is spent: the next one the app will show.
    sign_in(driver, "boss@staff.example", pyotp.TOTP(secret).at(time.time() + 30))
    wait(driver).until(ready.visibility_of_element_located((By.ID, "welcome")))
    assert driver.current_url == f"{console}/web/admin/"


async def test_a_support_agent_is_shown_the_missing_permission(
    ctx: AppContext, console: str, browser: WebDriver
) -> None:
    agent = await enrolled(ctx, "support", "sam@staff.example")
    driver = browser
    driver.delete_all_cookies()
    driver.get(f"{console}/web/admin/audit")
    wait(driver).until(ready.url_contains("/web/admin/login"))
    sign_in(driver, agent.staff.email, agent.code())
    # Back where the agent was going, which the role does not allow.
    wait(driver).until(ready.visibility_of_element_located((By.ID, "message")))
    assert driver.current_url == f"{console}/web/admin/audit"
    assert text_of(driver, "message") == (
        "Your role (support) does not have the permission audit:read."
    )


async def test_the_dashboard_draws_its_charts_per_day(
    ctx: AppContext,
    console: str,
    browser: WebDriver,
    api: Api,
    make_user: MakeUser,
    make_service: MakeService,
) -> None:
    customer = await make_user("10")
    service = await make_service()
    for n in range(3):
        await api(customer.key, "add", service=service, link=f"https://x.com/{n}", quantity=1000)
    driver = browser
    await signed_in(driver, console, ctx, "owner")
    today = datetime.now(UTC).date().isoformat()
    for chart, value in (("chart-orders", "3"), ("chart-revenue", "2.70000000")):
        bars = driver.find_elements(By.CSS_SELECTOR, f"svg#{chart} rect.bar")
        assert len(bars) == 30  # one per day of the last 30
        last = bars[-1]
        assert (last.get_attribute("data-day"), last.get_attribute("data-value")) == (today, value)
        assert last.size["height"] > 0
    assert driver.find_element(By.CSS_SELECTOR, "svg#chart-margin").is_displayed()
    assert text_of(driver, "open-tickets") == "0"
    screenshots(driver, "dashboard", ("en", "ru"))


async def test_a_finance_member_tops_up_a_customer(
    ctx: AppContext, console: str, browser: WebDriver, make_user: MakeUser
) -> None:
    customer = await make_user("1", "topped@shop.example")
    driver = browser
    member = await signed_in(driver, console, ctx, "finance")
    driver.get(f"{console}/web/admin/users?q=topped")
    driver.find_element(By.LINK_TEXT, "topped@shop.example").click()
    wait(driver).until(ready.visibility_of_element_located((By.ID, "topup-form")))
    screenshots(driver, "customer", ("en", "ru"))
    fill(driver, "topup-amount", "12.5")
    fill(driver, "topup-reason", "Bank transfer 7")
    submit_form(driver, "topup-submit")
    assert text_of(driver, "done") == "The balance is topped up."
    assert text_of(driver, "user-balance") == "$13.50"
    async with ctx.db.session() as session:
        entry = await session.scalar(
            select(LedgerEntry)
            .where(LedgerEntry.user_id == customer.user_id)
            .order_by(LedgerEntry.id.desc())
        )
    assert entry is not None
    assert (entry.kind, entry.amount, entry.reason, entry.operator) == (
        "deposit",
        Decimal("12.50000000"),
        "Bank transfer 7",
        member.staff.email,
    )


async def test_a_support_agent_resolves_a_review_with_a_refund(
    ctx: AppContext,
    console: str,
    browser: WebDriver,
    api: Api,
    make_user: MakeUser,
    make_service: MakeService,
) -> None:
    customer = await make_user("10")
    service = await make_service()
    order = (
        await api(customer.key, "add", service=service, link="https://x.com/r", quantity=1000)
    )["order"]
    async with ctx.db.transaction() as session:
        ticket = await tickets.open_ticket(
            session,
            tickets.Notify(Mailer(ctx.db, "console", "panel"), None),
            customer.user_id,
            subject="Nothing arrived",
            category="order",
            message="Please check",
            order_ids=[order],
        )
        await staff.set_support_refund_limit(session, Decimal("1"))
    driver = browser
    agent = await signed_in(driver, console, ctx, "support")
    driver.get(f"{console}/web/admin/tickets")
    driver.find_element(By.LINK_TEXT, "Nothing arrived").click()
    wait(driver).until(ready.visibility_of_element_located((By.ID, f"resolve-form-{order}")))
    Select(driver.find_element(By.ID, f"resolve-action-{order}")).select_by_value("refund")
    fill(driver, f"resolve-amount-{order}", "0.45")
    fill(driver, f"resolve-message-{order}", "Refunded half of it.")
    screenshots(driver, "ticket", ("en", "ru"))
    Select(driver.find_element(By.ID, f"resolve-action-{order}")).select_by_value("refund")
    fill(driver, f"resolve-amount-{order}", "0.45")
    submit_form(driver, f"resolve-submit-{order}")
    assert text_of(driver, "done") == "The review is resolved and the customer answered."
    async with ctx.db.session() as session:
        refund = await session.scalar(select(LedgerEntry).where(LedgerEntry.kind == "refund"))
        entry = await session.scalar(
            select(AuditEntry).where(AuditEntry.action == "ticket.resolve")
        )
    assert refund is not None and (refund.order_id, refund.amount) == (order, Decimal("0.45000000"))
    assert entry is not None
    assert (entry.actor, entry.staff_id, entry.entity_id) == (
        agent.staff.email,
        agent.staff.id,
        str(ticket.id),
    )


async def test_a_bulk_resend_is_previewed_then_run(
    ctx: AppContext,
    settings: Settings,
    console: str,
    browser: WebDriver,
    api: Api,
    make_user: MakeUser,
    make_service: MakeService,
) -> None:
    async with review_provider(ctx, settings) as upstream:
        _, ids = await orders_in_review(api, ctx, settings, make_user, make_service, upstream, 2)
        driver = browser
        member = await signed_in(driver, console, ctx, "manager")
        driver.get(f"{console}/web/admin/orders?upstream_state=review")
        for order_id in ids:
            driver.find_element(By.ID, f"pick-{order_id}").click()
        screenshots(driver, "orders", ("en", "ru"))
        for order_id in ids:
            if not driver.find_element(By.ID, f"pick-{order_id}").is_selected():
                driver.find_element(By.ID, f"pick-{order_id}").click()
        Select(driver.find_element(By.ID, "bulk-action")).select_by_value("resend")
        submit_form(driver, "bulk-preview")
        assert text_of(driver, "bulk-summary") == (
            "Nothing was changed. 2 orders in the review queue would be taken (resend upstream):"
        )
        screenshots(driver, "bulk-preview")  # a form's answer: English only
        assert await upstream_states(ctx) == ["review", "review"]
        submit_form(driver, "bulk-confirm")
        assert text_of(driver, "bulk-summary") == "Done: 2 orders (resend upstream)."
        await run_jobs(settings, ctx)
        assert await upstream_states(ctx) == ["sent", "sent"]
        assert (await sandbox_stats(upstream.url))["add_calls"] == {"7": 4}
    async with ctx.db.session() as session:
        trail = list(
            await session.execute(
                select(AuditEntry.actor, AuditEntry.action, AuditEntry.entity_id).order_by(
                    AuditEntry.id
                )
            )
        )
    assert [tuple(t) for t in trail] == [(member.staff.email, "review.resend", str(i)) for i in ids]


async def test_a_support_agent_is_refused_a_top_up_by_the_console_and_the_api(
    ctx: AppContext, console: str, browser: WebDriver, make_user: MakeUser
) -> None:
    customer = await make_user("0")
    driver = browser
    agent = await signed_in(driver, console, ctx, "support")
    driver.get(f"{console}/web/admin/users/{customer.user_id}")
    assert text_of(driver, "message") == (
        "Your role (support) does not have the permission users:read."
    )
    assert driver.find_elements(By.ID, "topup-form") == []
    screenshots(driver, "refused", ("en", "ru"))
    async with httpx.AsyncClient(base_url=console) as client:
        refused = await client.post(
            f"/admin/v1/users/{customer.user_id}/topup",
            headers=agent.staff.auth,
            json={"amount": "10"},
        )
    assert refused.status_code == 403
    assert refused.json()["detail"] == (
        "Your role (support) does not have the permission balances:topup"
    )
    async with ctx.db.session() as session:
        assert await session.scalar(select(LedgerEntry.id)) is None
