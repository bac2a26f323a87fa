"""Analytics and chat with consent: off by default; once the operator sets a Metrica
counter, a GA measurement id or a Chaport app id, visitors see a cookie notice, and only
after they accept do the pages load the scripts, under a Content-Security-Policy that
allows exactly those services' hosts; sign-in, password, two-factor and payment pages
never load them; the footer withdraws the consent. A real Chromium, whose name lookups
resolve nothing but 127.0.0.1, shows no other host until both said yes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ready

from app.context import AppContext
from app.pages.render import CSP
from app.settings import Settings
from app.web.session import CONSENT_COOKIE
from tests.support.browser import chromium, chromium_present, wait
from tests.support.client import MakeCustomer
from tests.support.env import AUTH
from tests.support.server import panel_server
from tests.support.web import refs, signed_in

IDS = {"metrica_id": "12345678", "ga_id": "G-ABC123XYZ", "chaport_id": "0123456789abcdef01234567"}
TEXTS = {"name": None, "terms": None, "privacy_policy": None, "terms_of_use": None}
HOSTS = ("mc.yandex.ru", "googletagmanager.com", "google-analytics.com", "chaport.com")
# Every name the browser looks up fails, apart from the panel's own address.
OFFLINE = "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"


def external(text: str) -> list[str]:
    return [h for h in HOSTS if h in text]


async def switch_on(client: httpx.AsyncClient, **ids: str | None) -> Any:
    response = await client.put("/admin/v1/storefront", json={**TEXTS, **ids}, headers=AUTH)
    assert response.status_code == 200, response.text
    return response.json()


async def test_off_by_default_then_only_after_consent_with_exactly_those_hosts(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    page = await client.get("/web/services")
    assert page.headers["content-security-policy"] == CSP
    assert 'id="cookie-notice"' not in page.text and external(page.text) == []

    shown = await switch_on(client, metrica_id=IDS["metrica_id"])
    assert (shown["metrica_id"], shown["ga_id"]) == (IDS["metrica_id"], None)
    asked = await client.get("/web/services")
    assert 'id="cookie-notice"' in asked.text  # the operator said yes, the visitor not yet
    assert asked.headers["content-security-policy"] == CSP
    assert 'id="analytics"' not in asked.text

    csrf = refs(asked.text).csrf or ""
    answered = await client.post(
        "/web/consent", data={"csrf": csrf, "choice": "yes", "next": "/web/services"}
    )
    assert answered.status_code == 303
    assert client.cookies.get(CONSENT_COOKIE) == "yes"
    loaded = await client.get("/web/services")
    assert 'id="cookie-notice"' not in loaded.text
    assert f'data-metrica="{IDS["metrica_id"]}"' in loaded.text
    policy = loaded.headers["content-security-policy"]
    assert "script-src 'self' https://mc.yandex.ru;" in policy
    assert external(policy) == ["mc.yandex.ru"]  # exactly the service switched on

    # All three: each one's hosts, and no page of sign-in, password or payment loads them.
    await switch_on(client, **IDS)
    policy = (await client.get("/web/services")).headers["content-security-policy"]
    assert external(policy) == list(HOSTS)
    for path in ("/web/", "/web/forgot", "/web/verify", "/web/reset-password"):
        kept = await client.get(path)
        assert kept.headers["content-security-policy"] == CSP, path
        assert 'id="analytics"' not in kept.text, path

    # Left out of the next PUT, the ids stay; null switches a service off.
    assert (await switch_on(client))["ga_id"] == IDS["ga_id"]
    assert (await switch_on(client, ga_id=None, chaport_id=None))["ga_id"] is None

    # The footer withdraws the consent: nothing loads again.
    withdraw = await client.get("/web/services")
    assert 'id="consent-change"' in withdraw.text
    await client.post("/web/consent", data={"csrf": refs(withdraw.text).csrf or "", "choice": "no"})
    gone = await client.get("/web/services")
    assert gone.headers["content-security-policy"] == CSP and 'id="analytics"' not in gone.text
    assert 'id="cookie-notice"' not in gone.text  # answered: no more notice


async def test_signed_in_money_and_secret_pages_never_load_them(
    client: httpx.AsyncClient, ctx: AppContext, make_customer: MakeCustomer
) -> None:
    await switch_on(client, **IDS)
    await signed_in(client, make_customer, "5")
    client.cookies.set(CONSENT_COOKIE, "yes")
    assert 'id="analytics"' in (await client.get("/web/orders")).text
    for path in ("/web/account", "/web/funds", "/web/funds/return"):
        kept = await client.get(path)
        assert kept.status_code == 200, path
        assert kept.headers["content-security-policy"] == CSP, path
        assert external(kept.text) == [], path


async def test_malformed_ids_are_refused(client: httpx.AsyncClient, ctx: AppContext) -> None:
    for field, value in (
        ("metrica_id", "12ab"),
        ("ga_id", "UA-1234-1"),
        ("chaport_id", "not-hex"),
        ("metrica_id", "1; script-src *"),
    ):
        response = await client.put(
            "/admin/v1/storefront", json={**TEXTS, field: value}, headers=AUTH
        )
        assert response.status_code == 422, (field, value)
        assert response.headers["content-type"] == "application/problem+json"
    assert (await client.get("/admin/v1/storefront", headers=AUTH)).json()["metrica_id"] is None


@pytest.fixture(scope="module")
def panel(database_url: str, settings: Settings) -> Iterator[str]:
    with panel_server(database_url, QUEUE_NAME=settings.queue_name) as base:
        yield base


@pytest.mark.skipif(
    not chromium_present() and not os.environ.get("CI"),
    reason="chromium and chromedriver are not installed (CI installs them)",
)
async def test_a_browser_reaches_no_other_host_until_both_say_yes(
    panel: str, ctx: AppContext
) -> None:
    async with httpx.AsyncClient(base_url=panel) as admin:
        await switch_on(admin, **IDS)

    def requested_hosts(driver: WebDriver) -> list[str]:
        names = driver.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name)"
            ".concat(Array.from(document.scripts).map(s => s.src))"
        )
        return sorted({n for n in names if n and not n.startswith(panel)})

    with chromium(extra=(OFFLINE,)) as driver:
        driver.get(f"{panel}/web/services")
        assert driver.find_element(By.ID, "cookie-notice").is_displayed()
        assert requested_hosts(driver) == []
        driver.find_element(By.ID, "consent-no").click()
        wait(driver).until(ready.invisibility_of_element_located((By.ID, "cookie-notice")))
        assert requested_hosts(driver) == []

        driver.find_element(By.ID, "consent-change").click()  # allow after all
        wait(driver).until(ready.presence_of_element_located((By.ID, "analytics")))
        wait(driver).until(lambda d: len(requested_hosts(d)) == 3)
        hosts = requested_hosts(driver)
        assert [h.split("/")[2] for h in hosts] == [
            "app.chaport.com",
            "mc.yandex.ru",
            "www.googletagmanager.com",
        ]

        driver.get(f"{panel}/web/")  # the sign-in page: never
        assert requested_hosts(driver) == []
        driver.get(f"{panel}/web/services")
        driver.find_element(By.ID, "consent-change").click()  # withdraw
        wait(driver).until(lambda d: d.find_elements(By.ID, "analytics") == [])
        assert requested_hosts(driver) == []
    async with httpx.AsyncClient(base_url=panel) as admin:
        await switch_on(admin, metrica_id=None, ga_id=None, chaport_id=None)
