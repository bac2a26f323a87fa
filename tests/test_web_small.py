"""The storefront's small things: an unknown address answers a page, not JSON; the
favicon; the stylesheet and script under digest names with long caching; pages gzipped,
with a CSRF token masked anew in every response; PUBLIC_URL following HOST and PORT; the
time zone chosen from a list; a hint when the code that just turned two-factor sign-in on
is given again."""

from __future__ import annotations

import re
import struct
from pathlib import Path

import httpx
import pyotp

from app.settings import Settings, listening_url
from app.web.assets import assets
from tests.support.client import MakeCustomer
from tests.support.web import csrf_of, signed_in

STATIC = Path(__file__).resolve().parent.parent / "app" / "web" / "static"


async def test_an_unknown_storefront_address_answers_a_page_in_the_visitors_language(
    client: httpx.AsyncClient,
) -> None:
    english = await client.get("/web/no-such-page")
    assert english.status_code == 404
    assert english.headers["content-type"].startswith("text/html")
    assert "This page does not exist." in english.text and '<html lang="en">' in english.text
    russian = await client.get("/web/orders/x/y/z", headers={"accept-language": "ru"})
    assert russian.status_code == 404 and "Такой страницы нет." in russian.text
    # The JSON APIs keep their problem answers.
    api = await client.get("/client/v1/no-such-thing")
    assert api.status_code == 404 and api.headers["content-type"] != "text/html"


async def test_the_favicon_is_a_32_pixel_icon(client: httpx.AsyncClient) -> None:
    icon = await client.get("/favicon.ico")
    assert icon.status_code == 200
    assert icon.headers["content-type"] == "image/x-icon"
    reserved, kind, count = struct.unpack("<HHH", icon.content[:6])
    assert (reserved, kind, count) == (0, 1, 1)
    assert icon.content[6:8] == bytes([32, 32])
    assert icon.content[22:30] == b"\x89PNG\r\n\x1a\n"
    page = await client.get("/web/")
    assert '<link rel="icon" href="/favicon.ico"' in page.text


async def test_the_stylesheet_and_script_have_digest_names_and_are_kept_for_a_year(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/web/")
    css = re.search(r'href="(/web/assets/web\.[0-9a-f]{16}\.css)"', page.text)
    js = re.search(r'src="(/web/assets/web\.[0-9a-f]{16}\.js)"', page.text)
    assert css is not None and js is not None, page.text[:800]
    for url, name in ((css.group(1), "web.css"), (js.group(1), "web.js")):
        answer = await client.get(url)
        assert answer.status_code == 200
        assert answer.content == (STATIC / name).read_bytes()
        assert answer.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert assets()["web.css"].path == css.group(1)
    stale = await client.get("/web/assets/web.0000000000000000.css")
    assert stale.status_code == 404


async def test_pages_are_gzipped_and_their_csrf_token_is_masked_in_every_response(
    client: httpx.AsyncClient, make_customer: MakeCustomer
) -> None:
    await signed_in(client, make_customer, "0")
    first = await client.get("/web/account", headers={"accept-encoding": "gzip"})
    assert first.headers["content-encoding"] == "gzip"
    raw = await client.get("/web/account", headers={"accept-encoding": "identity"})
    assert "content-encoding" not in raw.headers
    second = await client.get("/web/account")
    tokens = {csrf_of(first), csrf_of(second), csrf_of(raw)}
    assert len(tokens) == 3  # a fresh mask each time, the same secret under it
    for token in tokens:
        answer = await client.post("/web/account/profile", data={"csrf": token, "name": "Ann"})
        assert answer.status_code == 303, answer.text[:300]
    forged = "0" * 128
    refused = await client.post("/web/account/profile", data={"csrf": forged, "name": "Ann"})
    assert refused.status_code == 403
    # API answers are left as they are.
    api = await client.post("/api/v2", data={"key": "x", "action": "balance"})
    assert "content-encoding" not in api.headers


def test_public_url_follows_host_and_port_when_unset() -> None:
    assert Settings(port=9123, public_url="").public_url == "http://127.0.0.1:9123"
    wildcard = "0.0.0.0"  # noqa: S104 - a setting's value, nothing listens here
    assert Settings(host=wildcard, port=81, public_url="").public_url == "http://127.0.0.1:81"
    assert Settings(host="panel.lan", port=8080, public_url="").public_url == (
        "http://panel.lan:8080"
    )
    assert Settings(port=9123, public_url="https://panel.example").public_url == (
        "https://panel.example"
    )
    assert listening_url("::", 8000) == "http://[::1]:8000"


async def test_the_time_zone_is_chosen_from_the_list(
    client: httpx.AsyncClient, make_customer: MakeCustomer
) -> None:
    await signed_in(client, make_customer, "0")
    page = await client.get("/web/account")
    assert '<select id="timezone" name="timezone">' in page.text
    assert '<option value="Europe/Moscow" >Europe/Moscow</option>' in page.text
    saved = await client.post(
        "/web/account/profile",
        data={"csrf": csrf_of(page), "timezone": "Europe/Moscow", "language": "en"},
    )
    assert saved.status_code == 303
    again = await client.get("/web/account")
    assert '<option value="Europe/Moscow" selected>Europe/Moscow</option>' in again.text
    moscow = await client.post(
        "/web/account/profile", data={"csrf": csrf_of(page), "timezone": "Moscow"}
    )
    assert moscow.status_code == 422


async def test_the_code_that_turned_two_factor_on_given_again_gets_its_own_hint(
    client: httpx.AsyncClient, make_customer: MakeCustomer
) -> None:
    await signed_in(client, make_customer, "0")
    page = await client.get("/web/account")
    made = await client.post("/web/account/2fa/setup", data={"csrf": csrf_of(page)})
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', made.text)
    assert secret is not None
    code = pyotp.TOTP(secret.group(1)).now()
    on = await client.post("/web/account/2fa/enable", data={"csrf": csrf_of(page), "code": code})
    assert 'id="recovery-codes"' in on.text
    again = await client.post(
        "/web/account/2fa/disable", data={"csrf": csrf_of(page), "code": code}
    )
    assert again.status_code == 422
    assert "This code was already used; wait for the next code of your app" in again.text
    wrong = await client.post(
        "/web/account/2fa/disable", data={"csrf": csrf_of(page), "code": "000000"}
    )
    assert "Invalid two-factor code" in wrong.text
