"""The storefront's pages in a real browser: a customer signed in by their session
cookie, the language switch, and each page looked at on a 360 px phone and a 1280 px
desktop in both languages (the page itself never scrolls sideways at 360 px; a wide
table scrolls in its own box) and without an axe-core violation, with screenshots kept
under tests/artifacts/."""

from __future__ import annotations

from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ready
from selenium.webdriver.support.ui import Select

from app.web.session import SESSION_COOKIE
from tests.support.axe import violations
from tests.support.browser import ARTIFACTS, wait

WIDTHS = (360, 1280)
LANGUAGES = ("en", "ru")


def sign_in_by_cookie(driver: WebDriver, base: str, token: str) -> None:
    driver.get(f"{base}/web/services")
    driver.delete_all_cookies()
    driver.add_cookie({"name": SESSION_COOKIE, "value": token, "path": "/"})


def switch_language(driver: WebDriver, language: str) -> None:
    if driver.execute_script("return document.documentElement.lang") == language:
        return
    Select(driver.find_element(By.ID, "language-switch")).select_by_value(language)
    driver.find_element(By.ID, "language-apply").click()
    wait(driver).until(
        lambda d: d.execute_script("return document.documentElement.lang") == language
    )


def page_width(driver: WebDriver) -> int:
    return int(driver.execute_script("return document.documentElement.scrollWidth"))


def look_at(driver: WebDriver, base: str, path: str, name: str, ready_id: str) -> dict[str, str]:
    """Open `path` in each language at each width; the text of `ready_id` per language."""
    seen: dict[str, str] = {}
    ARTIFACTS.mkdir(exist_ok=True)
    for language in LANGUAGES:
        driver.set_window_size(1280, 900)
        driver.get(f"{base}{path}")
        switch_language(driver, language)
        driver.get(f"{base}{path}")
        seen[language] = str(
            wait(driver).until(ready.visibility_of_element_located((By.ID, ready_id))).text
        )
        assert violations(driver) == [], (path, language)
        for width in WIDTHS:
            driver.set_window_size(width, 900)
            if width == 360:
                assert page_width(driver) <= 360, (path, language, page_width(driver))
            driver.save_screenshot(str(ARTIFACTS / f"web-{name}-{language}-{width}.png"))
    switch_language(driver, "en")
    driver.set_window_size(1280, 900)
    return seen
