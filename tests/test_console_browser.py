"""The console in a real browser: headless Chromium against a real panel server process.

A staff member signs in for the first time with email and password, is taken to the
enrolment page, scans (here: reads) the key beside the QR code, confirms with a code
computed here and lands on the dashboard; signs out; signs in again with a fresh code. A
support agent opening the audit log gets the page that says which permission is missing.
Screenshots of the enrolment and the dashboard at 360 and 1280 px are kept under
tests/artifacts/."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pyotp
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ready

from app.context import AppContext
from tests.support.browser import ARTIFACTS, chromium, chromium_present, wait
from tests.support.console import PASSWORD, enrolled
from tests.support.server import panel_server
from tests.support.staff import make_staff

pytestmark = pytest.mark.skipif(
    not chromium_present() and not os.environ.get("CI"),
    reason="chromium and chromedriver are not installed (CI installs them)",
)


@pytest.fixture(scope="module")
def console(database_url: str) -> Iterator[str]:
    with panel_server(database_url) as base:
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


def screenshots(driver: WebDriver, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    for width in (360, 1280):
        driver.set_window_size(width, 900)
        driver.save_screenshot(str(ARTIFACTS / f"console-{name}-{width}.png"))
    driver.set_window_size(1280, 900)


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
