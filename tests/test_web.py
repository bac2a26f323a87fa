"""The storefront (/web) over HTTP: every page renders in both languages, references no
other host and carries its own strict CSP; forms need their CSRF token; the words of the
pages all have their Russian text; the mails' links lead to the pages."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import httpx
from fastapi.routing import APIRoute
from sqlalchemy import func, select

from app.context import AppContext
from app.orders.models import Order
from app.web import account, i18n, public, shop
from app.web.session import CSRF_COOKIE, SESSION_COOKIE
from tests.support.api import Api, MakeService, order_id_of
from tests.support.client import MakeCustomer
from tests.support.mail import Mailbox

WEB = Path(__file__).resolve().parent.parent / "app" / "web"


class References(HTMLParser):
    """Every address a page makes the browser load or go to."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.csrf: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for name in ("href", "src", "action", "formaction", "srcset", "poster", "data"):
            if values.get(name):
                self.urls.append(values[name] or "")
        if tag == "input" and values.get("name") == "csrf" and self.csrf is None:
            self.csrf = values.get("value")


def refs(html: str) -> References:
    parser = References()
    parser.feed(html)
    return parser


def local(url: str) -> bool:
    return url.startswith(("/", "#")) and not url.startswith("//")


async def signed_in(client: httpx.AsyncClient, make_customer: MakeCustomer, balance: str) -> None:
    customer = await make_customer(balance)
    client.cookies.set(SESSION_COOKIE, customer.token)


def page_paths(order_id: int) -> list[str]:
    """Every GET route of the storefront, with a real order id in its path."""
    paths = []
    for part in (public.router, shop.router, account.router):
        for route in part.routes:
            if isinstance(route, APIRoute) and "GET" in (route.methods or ()):
                paths.append("/web" + route.path.replace("{order_id}", str(order_id)))
    return paths


async def test_every_page_renders_in_both_languages_and_references_no_other_host(
    ctx: AppContext,
    client: httpx.AsyncClient,
    make_customer: MakeCustomer,
    make_service: MakeService,
    api: Api,
) -> None:
    await signed_in(client, make_customer, "10")
    service = await make_service(description="Real followers", dripfeed=True)
    key_page = await client.get("/web/api")
    assert key_page.status_code == 200
    customer_key = await client.post(
        "/web/account/api-key", data={"csrf": refs(key_page.text).csrf or ""}
    )
    key = re.search(r'id="new-key">[^<]*<code>([^<]+)</code>', customer_key.text)
    assert key is not None, customer_key.text
    order_id = order_id_of(
        await api(key.group(1), "add", service=service, link="https://x.com/a", quantity=100)
    )
    paths = page_paths(order_id)
    own = ctx.settings.public_url.rstrip("/") + "/"
    assert len(paths) >= 20, paths
    csrf = refs(key_page.text).csrf or ""
    for language in ("en", "ru"):
        await client.post("/web/language", data={"csrf": csrf, "language": language})
        for path in paths:
            response = await client.get(path)
            if path.endswith("/logo"):
                assert response.status_code == 404  # no logo configured
                continue
            assert response.status_code == 200, (path, response.text[:300])
            if path.endswith("/export"):
                assert response.headers["content-type"] == "application/json"
                continue
            csp = response.headers["content-security-policy"]
            assert "script-src 'self';" in csp and "unsafe" not in csp, csp
            outside = [u for u in refs(response.text).urls if not local(u)]
            assert outside == [], (path, outside)
            # Absolute addresses in the text are the panel's own (PUBLIC_URL), apart from
            # the sample arguments of the API page's curl lines and the orders' own links.
            text = re.sub(
                r"<pre>.*?</pre>|<(td|dd) class=\"link\">.*?</(td|dd)>",
                "",
                response.text,
                flags=re.S,
            )
            absolute = re.findall(r"https?://[^\s\"'<]+", text)
            assert all(u.startswith(own) for u in absolute), (path, absolute)
            assert f'<html lang="{language}">' in response.text


async def test_accept_language_picks_russian_and_the_account_language_wins(
    client: httpx.AsyncClient, make_customer: MakeCustomer
) -> None:
    anonymous = await client.get("/web/", headers={"Accept-Language": "ru-RU,ru;q=0.9,en;q=0.5"})
    assert "Регистрация" in anonymous.text
    await signed_in(client, make_customer, "0")
    english = await client.get("/web/orders", headers={"Accept-Language": "ru"})
    assert english.status_code == 200
    # The account (language "en") wins over the browser's wish.
    assert "<h1>Orders</h1>" in english.text
    csrf = refs(english.text).csrf or ""
    switched = await client.post(
        "/web/language", data={"csrf": csrf, "language": "ru", "next": "/web/orders"}
    )
    assert (switched.status_code, switched.headers["location"]) == (303, "/web/orders")
    russian = await client.get("/web/orders")
    assert "<h1>Заказы</h1>" in russian.text


async def test_a_form_without_its_csrf_token_is_refused(
    ctx: AppContext,
    client: httpx.AsyncClient,
    make_customer: MakeCustomer,
    make_service: MakeService,
) -> None:
    await signed_in(client, make_customer, "10")
    service = await make_service()
    form = await client.get("/web/orders/new")
    assert CSRF_COOKIE in client.cookies
    fields = {"service": str(service), "link": "https://x.com/a", "quantity": "100"}
    for token in (None, "", "0" * 64):
        data = fields if token is None else {**fields, "csrf": token}
        refused = await client.post("/web/orders/new", data=data)
        assert refused.status_code == 403
    async with ctx.db.session() as session:
        assert await session.scalar(select(func.count(Order.id))) == 0
    placed = await client.post(
        "/web/orders/new", data={**fields, "csrf": refs(form.text).csrf or ""}
    )
    assert placed.status_code == 303 and placed.headers["location"].startswith(
        "/web/orders?placed="
    )


async def test_an_order_refused_shows_the_reason_next_to_its_field_in_russian(
    client: httpx.AsyncClient, make_customer: MakeCustomer, make_service: MakeService
) -> None:
    await signed_in(client, make_customer, "10")
    service = await make_service(min_quantity=50)
    form = await client.get("/web/orders/new", headers={"Accept-Language": "ru"})
    csrf = refs(form.text).csrf or ""
    await client.post("/web/language", data={"csrf": csrf, "language": "ru"})
    refused = await client.post(
        "/web/orders/new",
        data={"csrf": csrf, "service": str(service), "link": "https://x.com/a", "quantity": "5"},
    )
    assert refused.status_code == 422
    assert 'id="error-quantity">Количество меньше минимального: 50</p>' in refused.text
    # The field says it is wrong and which text explains why.
    assert 'aria-invalid="true" aria-describedby="error-quantity"' in refused.text


async def test_sign_in_cookie_is_httponly_and_samesite_lax(
    client: httpx.AsyncClient, make_customer: MakeCustomer
) -> None:
    customer = await make_customer("0")
    home = await client.get("/web/")
    response = await client.post(
        "/web/signin",
        data={
            "csrf": refs(home.text).csrf or "",
            "email": customer.email,
            "password": customer.password,
        },
    )
    assert response.status_code == 303
    cookie = next(
        c for c in response.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE)
    )
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert (await client.get("/web/account")).status_code == 200


async def test_pages_that_need_sign_in_lead_to_the_sign_in_form(client: httpx.AsyncClient) -> None:
    response = await client.get("/web/orders?status=Pending")
    assert response.status_code == 303
    assert response.headers["location"] == "/web/?next=%2Fweb%2Forders"


async def test_mail_links_and_the_referral_link_lead_to_the_storefront(
    client: httpx.AsyncClient,
) -> None:
    for path, target in (
        ("/verify?token=abc", "/web/verify?token=abc"),
        ("/reset-password?token=abc", "/web/reset-password?token=abc"),
        ("/?ref=CODE", "/web/?ref=CODE"),
    ):
        response = await client.get(path)
        assert (response.status_code, response.headers["location"]) == (303, target)


async def test_legal_pages_show_the_operators_text_or_say_it_is_missing(
    ctx: AppContext, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    placeholder = await client.get("/web/terms")
    assert 'id="legal-placeholder"' in placeholder.text
    text = tmp_path / "terms.txt"
    text.write_text("First rule.\n\nSecond <rule>.", encoding="utf-8")
    before = ctx.settings.terms_file, ctx.settings.panel_name
    ctx.settings.terms_file, ctx.settings.panel_name = str(text), "Boost & Co"
    try:
        page = await client.get("/web/terms")
    finally:
        ctx.settings.terms_file, ctx.settings.panel_name = before
    assert "<p>First rule.</p><p>Second &lt;rule&gt;.</p>" in page.text
    assert "Boost &amp; Co" in page.text


def test_every_text_of_the_pages_has_its_russian_translation() -> None:
    pattern = re.compile(
        r"""_\(\s*"((?:[^"\\]|\\.)*)"|_\(\s*'((?:[^'\\]|\\.)*)'|who\.error\("([^"]+)"\)"""
    )
    found: set[str] = set()
    for path in [*WEB.glob("templates/*.html"), *WEB.glob("*.py")]:
        for match in pattern.finditer(path.read_text(encoding="utf-8")):
            found.add(match.group(1) or match.group(2) or match.group(3))
    from app.orders.models import STATUSES
    from app.web.shop import LABELS

    found |= set(STATUSES) | set(LABELS.values())
    found.discard("kind:")
    russian = i18n.catalog("ru")
    missing = sorted(m for m in found if m not in russian)
    assert missing == []


async def test_password_change_needs_the_current_password_and_ends_the_other_sessions(
    client: httpx.AsyncClient, make_customer: MakeCustomer
) -> None:
    customer = await make_customer("0")
    client.cookies.set(SESSION_COOKIE, customer.token)
    other = await client.post(
        "/client/v1/login", json={"email": customer.email, "password": customer.password}
    )
    other_token = other.json()["token"]
    page = await client.get("/web/account")
    csrf = refs(page.text).csrf or ""
    wrong = await client.post(
        "/web/account/password", data={"csrf": csrf, "current": "nope-nope", "new": "n3w-password"}
    )
    assert wrong.status_code == 422 and "The current password is not correct" in wrong.text
    changed = await client.post(
        "/web/account/password",
        data={"csrf": csrf, "current": customer.password, "new": "n3w-password"},
    )
    assert (changed.status_code, changed.headers["location"]) == (303, "/web/account?done=password")
    # This session goes on; the other one ended; the new password signs in.
    assert (await client.get("/web/account")).status_code == 200
    gone = await client.get("/client/v1/me", headers={"Authorization": f"Bearer {other_token}"})
    assert gone.status_code == 401
    again = await client.post(
        "/client/v1/login", json={"email": customer.email, "password": "n3w-password"}
    )
    assert again.status_code == 200


async def test_sign_up_from_the_russian_page_mails_in_russian(
    client: httpx.AsyncClient, mailbox: Mailbox
) -> None:
    home = await client.get("/web/", headers={"Accept-Language": "ru"})
    response = await client.post(
        "/web/signup",
        data={
            "csrf": refs(home.text).csrf or "",
            "email": "neu@example.com",
            "password": "pa55word!",
        },
        headers={"Accept-Language": "ru"},
    )
    assert response.status_code == 200 and 'id="signed-up"' in response.text
    (mail,) = await mailbox.wait_for("neu@example.com")
    assert mail.subject == "Подтвердите адрес почты"
    taken = await client.post(
        "/web/signup",
        data={
            "csrf": refs(home.text).csrf or "",
            "email": "neu@example.com",
            "password": "pa55word!",
        },
        headers={"Accept-Language": "ru"},
    )
    assert taken.status_code == 422
    assert "Пользователь с таким адресом уже существует" in taken.text


async def test_cookies_are_secure_when_the_panel_is_served_over_https(
    ctx: AppContext, client: httpx.AsyncClient, make_customer: MakeCustomer
) -> None:
    customer = await make_customer("0")
    before = ctx.settings.public_url
    ctx.settings.public_url = "https://panel.example"
    try:
        home = await client.get("/web/")
        # A Secure cookie is not sent back over plain HTTP: hand the seed over as a
        # browser on https would.
        seed = home.cookies[CSRF_COOKIE]
        signed = await client.post(
            "/web/signin",
            data={
                "csrf": refs(home.text).csrf or "",
                "email": customer.email,
                "password": customer.password,
            },
            headers={"cookie": f"{CSRF_COOKIE}={seed}"},
        )
    finally:
        ctx.settings.public_url = before
    cookies = [*home.headers.get_list("set-cookie"), *signed.headers.get_list("set-cookie")]
    assert {c.split("=", 1)[0] for c in cookies} == {CSRF_COOKIE, SESSION_COOKIE}
    assert all("Secure" in c and "HttpOnly" in c for c in cookies), cookies


async def test_refill_and_cancel_buttons_appear_only_where_the_order_allows_them(
    ctx: AppContext,
    client: httpx.AsyncClient,
    make_customer: MakeCustomer,
    make_service: MakeService,
) -> None:
    await signed_in(client, make_customer, "10")
    both = await make_service(refill=True, cancel=True)
    neither = await make_service(refill=False, cancel=False)
    form = await client.get("/web/orders/new")
    csrf = refs(form.text).csrf or ""
    ids = []
    for service, link in (
        (both, "https://x.com/1"),
        (both, "https://x.com/2"),
        (neither, "https://x.com/3"),
    ):
        placed = await client.post(
            "/web/orders/new",
            data={"csrf": csrf, "service": str(service), "link": link, "quantity": "100"},
        )
        ids.append(int(placed.headers["location"].rsplit("=", 1)[1]))
    done, pending, plain = ids
    async with ctx.db.transaction() as session:
        order = await session.get(Order, done)
        assert order is not None
        order.status, order.remains = "Completed", 0
    page = (await client.get("/web/orders")).text
    assert f'id="refill-{done}"' in page and f'id="cancel-{done}"' not in page
    assert f'id="cancel-{pending}"' in page and f'id="refill-{pending}"' not in page
    assert f'id="cancel-{plain}"' not in page and f'id="refill-{plain}"' not in page
    completed = (await client.get("/web/orders?status=Completed")).text
    assert f'id="order-{done}"' in completed and f'id="order-{pending}"' not in completed
    found = (await client.get("/web/orders?q=x.com/3")).text
    assert f'id="order-{plain}"' in found and f'id="order-{done}"' not in found
    refill = await client.post(f"/web/orders/{done}/refill", data={"csrf": csrf})
    assert refill.headers["location"] == f"/web/orders?done=refill&q={done}"
    detail = (await client.get(f"/web/orders/{done}")).text
    assert detail.count("<li>#") == 1  # the refill, listed on the order's page
