"""The storefront (/web) over HTTP: every page renders in both languages, references no
other host and carries its own strict CSP; forms need their CSRF token; the words of the
pages all have their Russian text; the mails' links lead to the pages."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app import errors, keyring
from app.audit.models import AuditEntry
from app.context import AppContext
from app.db import utcnow
from app.orders.models import Order
from app.pages.csrf import CSRF_COOKIE
from app.payments.gateways import METHODS, TITLES
from app.payments.models import Payment
from app.referrals import service as referrals
from app.storefront import service as storefront
from app.storefront.models import Storefront
from app.tickets import service as tickets
from app.tickets.models import Ticket, TicketMessage
from app.web import i18n
from app.web.render import CONVERSION_NOTE, KIND_WORDS
from app.web.session import DEVICE_COOKIE, SESSION_COOKIE
from app.webhooks import service as webhooks
from app.webhooks.models import WebhookEndpoint, WebhookEvent
from tests.support.api import Api, MakeService, order_id_of
from tests.support.client import MakeCustomer
from tests.support.env import ADMIN_TOKEN, AUTH
from tests.support.mail import Mailbox
from tests.support.web import local, refs, signed_in, storefront_routes, unlabelled

WEB = Path(__file__).resolve().parent.parent / "app" / "web"
# The storefront's legal pages and the documents they show.
LEGAL_PAGES = {"terms": "terms", "privacy-policy": "privacy", "terms-of-use": "terms-of-use"}
# Service refusals the tickets, webhook and operator pages show in the page's language.
SHOWN_ERRORS: tuple[type[errors.DomainError], ...] = (
    tickets.TicketNotFound,
    tickets.TicketClosedForGood,
    tickets.AlreadyUnderReview,
    errors.OrderUnderReview,
    errors.LinkUnderReview,
    webhooks.WebhookUrlRefused,
    webhooks.WebhookUrlPrivate,
    storefront.NameRefused,
    storefront.TextRefused,
    storefront.LogoTypeRefused,
    storefront.LogoTooLarge,
    storefront.LogoUnreadable,
    referrals.PayoutsOff,
    referrals.PayoutTooSmall,
    referrals.PayoutPending,
)


async def test_every_page_renders_in_both_languages_and_references_no_other_host(
    ctx: AppContext,
    client: httpx.AsyncClient,
    make_customer: MakeCustomer,
    make_service: MakeService,
    api: Api,
) -> None:
    customer = await signed_in(client, make_customer, "10")
    service = await make_service(description="Real followers", dripfeed=True)
    key_page = await client.get("/web/api")
    assert key_page.status_code == 200
    csrf = refs(key_page.text).csrf or ""
    customer_key = await client.post("/web/account/api-key", data={"csrf": csrf})
    key = re.search(r'id="new-key">[^<]*<code>([^<]+)</code>', customer_key.text)
    assert key is not None, customer_key.text
    order_id = order_id_of(
        await api(key.group(1), "add", service=service, link="https://x.com/a", quantity=100)
    )
    opened = await client.post(
        "/web/tickets/new",
        data={
            "csrf": csrf,
            "subject": "Where is it?",
            "category": "other",
            "orders": str(order_id),
            "message": "Hello",
        },
    )
    ticket_id = int(opened.headers["location"].split("/")[-1].split("?")[0])
    # The operator page, signed in, shows its forms too.
    signed = await client.post("/web/operator/signin", data={"csrf": csrf, "token": ADMIN_TOKEN})
    assert signed.status_code == 303
    async with ctx.db.transaction() as session:  # a pending invoice, as a gateway priced it
        invoice = Payment(
            user_id=customer.user_id,
            gateway="robokassa",
            amount=Decimal("909.10"),
            currency="RUB",
            credit_amount=Decimal("10"),
            pay_url="https://auth.robokassa.ru/Merchant/Index.aspx?InvId=1",
        )
        session.add(invoice)
    # A published version of each legal text, at its own address.
    versions = {}
    for page_slug, document in LEGAL_PAGES.items():
        made = await client.post(
            f"/admin/v1/legal/{document}/versions",
            json={"language": "en", "text": f"The {document} text."},
            headers=AUTH,
        )
        versions[page_slug] = str(made.json()["id"])
    paths = [
        re.sub(r"^/web/([a-z-]+)/versions/VID$", lambda m: m.group(0)[:-3] + versions[m[1]], p)
        for p in storefront_routes(
            "GET",
            order_id=order_id,
            ticket_id=ticket_id,
            payment_id=invoice.id,
            version_id="VID",
        )
    ]
    own = ctx.settings.public_url.rstrip("/") + "/"
    assert len(paths) >= 25, paths
    assert {
        "/web/tickets",
        f"/web/tickets/{ticket_id}",
        "/web/tickets/new",
        f"/web/orders/{order_id}/review",
        "/web/operator",
    } <= set(paths)
    for language in ("en", "ru"):
        await client.post("/web/language", data={"csrf": csrf, "language": language})
        for path in paths:
            response = await client.get(path)
            if path.endswith("/logo"):
                assert response.status_code == 404  # no logo configured
                continue
            if path.endswith("/pay"):  # the one step out: to the gateway's page
                assert response.status_code == 303, path
                assert response.headers["location"] == invoice.pay_url
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
                r"<pre[^>]*>.*?</pre>|<(td|dd) class=\"link\">.*?</(td|dd)>",
                "",
                response.text,
                flags=re.S,
            )
            absolute = re.findall(r"https?://[^\s\"'<]+", text)
            assert all(u.startswith(own) for u in absolute), (path, absolute)
            assert f'<html lang="{language}">' in response.text
            # Every form field has its label.
            assert unlabelled(response.text) == [], (path, unlabelled(response.text))


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


async def test_every_form_of_the_storefront_is_refused_without_its_csrf_token(
    ctx: AppContext,
    client: httpx.AsyncClient,
    make_customer: MakeCustomer,
    make_service: MakeService,
) -> None:
    """Every POST route of every part of the storefront, the operator's included, needs
    the form's CSRF token; a refused form changes nothing."""
    customer = await signed_in(client, make_customer, "10")
    service = await make_service()
    page = await client.get("/web/orders/new")
    csrf = refs(page.text).csrf or ""
    placed = await client.post(
        "/web/orders/new",
        data={"csrf": csrf, "service": str(service), "link": "https://x.com/a", "quantity": "100"},
    )
    order_id = int(placed.headers["location"].rsplit("=", 1)[1])
    opened = await client.post(
        "/web/tickets/new",
        data={"csrf": csrf, "subject": "S", "category": "other", "message": "M"},
    )
    ticket_id = int(opened.headers["location"].split("/")[-1].split("?")[0])
    await client.post("/web/operator/signin", data={"csrf": csrf, "token": ADMIN_TOKEN})
    async with ctx.db.session() as session:
        before = await counts(session)
    posts = storefront_routes(
        "POST", order_id=order_id, ticket_id=ticket_id, session_id=1, field="name"
    )
    assert {
        "/web/tickets/new",
        f"/web/tickets/{ticket_id}/messages",
        f"/web/tickets/{ticket_id}/close",
        f"/web/orders/{order_id}/review",
        "/web/account/webhook",
        "/web/operator/signin",
        "/web/operator/signout",
        "/web/operator/storefront/name",
        "/web/operator/logo",
        "/web/operator/logo/remove",
    } <= set(posts)
    for path in posts:
        for token in (None, "0" * 64):
            data = {
                "message": "m",
                "subject": "s",
                "category": "other",
                "value": "X",
                "url": "https://example.com/hook",
                "token": ADMIN_TOKEN,
            }
            if token is not None:
                data["csrf"] = token
            refused = await client.post(path, data=data)
            assert refused.status_code == 403, (path, refused.status_code)
            assert 'role="alert">The form has expired; please try again.</p>' in refused.text
    async with ctx.db.session() as session:
        assert await counts(session) == before
    # Still signed in, and nothing was changed for this customer.
    assert (await client.get("/web/account")).status_code == 200
    assert customer.user_id > 0


async def counts(session: AsyncSession) -> tuple[int, ...]:
    """Rows a refused form could have written."""
    tables = (Order, Ticket, TicketMessage, WebhookEndpoint, Storefront, AuditEntry)
    found = []
    for table in tables:
        found.append(await session.scalar(select(func.count()).select_from(table)) or 0)
    return tuple(found)


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
    from app.web.support import FIELD_HINTS

    found |= set(STATUSES) | set(LABELS.values()) | set(FIELD_HINTS.values())
    found |= {
        CONVERSION_NOTE,
        *KIND_WORDS.values(),
        *TITLES.values(),
        *(m for ms in METHODS.values() for m in ms),
    }
    # The refusals the new pages show next to their fields, from the services.
    found |= {error.message for error in SHOWN_ERRORS}
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
    russian = {"Accept-Language": "ru"}
    home = await client.get("/web/", headers=russian)
    form = {
        "csrf": refs(home.text).csrf or "",
        "email": "neu@example.com",
        "password": "pa55word!",
        "accept_terms": "1",
    }
    response = await client.post("/web/signup", data=form, headers=russian)
    assert response.status_code == 200 and 'id="signed-up"' in response.text
    (mail,) = await mailbox.wait_for("neu@example.com")
    assert mail.subject == "Подтвердите адрес почты"
    taken = await client.post("/web/signup", data=form, headers=russian)
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
    assert {c.split("=", 1)[0] for c in cookies} == {CSRF_COOKIE, SESSION_COOKIE, DEVICE_COOKIE}
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


async def test_the_account_page_sets_shows_and_removes_the_status_webhook(
    ctx: AppContext,
    client: httpx.AsyncClient,
    make_customer: MakeCustomer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    customer = await signed_in(client, make_customer, "0")
    page = await client.get("/web/account")
    assert 'id="webhook-none"' in page.text
    csrf = refs(page.text).csrf or ""

    # The service's refusals, next to the field (a loopback target by default).
    refused = await client.post(
        "/web/account/webhook", data={"csrf": csrf, "url": "http://127.0.0.1:9/hook"}
    )
    assert refused.status_code == 422
    assert (
        'role="alert" id="webhook-error">'
        "Webhook URL must not point to a private or loopback address</p>"
    ) in refused.text
    assert 'aria-describedby="webhook-hint webhook-error" aria-invalid="true"' in refused.text
    assert 'value="http://127.0.0.1:9/hook"' in refused.text  # what was typed stays
    await client.post("/web/language", data={"csrf": csrf, "language": "ru"})
    russian = await client.post("/web/account/webhook", data={"csrf": csrf, "url": "ftp://x"})
    assert 'id="webhook-error">Неверный адрес вебхука</p>' in russian.text
    await client.post("/web/language", data={"csrf": csrf, "language": "en"})
    assert (await client.get("/client/v1/webhook", headers=customer.auth)).json()["webhook"] == ""

    # Allowed (as on one network): set, with the signing secret shown once.
    monkeypatch.setattr(ctx.settings, "webhook_allow_private", True)
    done = await client.post(
        "/web/account/webhook", data={"csrf": csrf, "url": "http://127.0.0.1:9/hook"}
    )
    assert done.status_code == 200
    secret = re.search(r'id="webhook-secret">[^<]*<code>(whsec_[^<]+)</code>', done.text)
    assert secret is not None, done.text
    async with ctx.db.session() as session:
        endpoint = await webhooks.get_endpoint(session, customer.user_id)
        assert endpoint is not None
        kept = keyring.decrypt(ctx.settings.secret_key, webhooks.PURPOSE, endpoint.secret_encrypted)
    assert kept == secret.group(1)
    api_view = (await client.get("/client/v1/webhook", headers=customer.auth)).json()
    assert (api_view["webhook"], api_view["enabled"]) == ("http://127.0.0.1:9/hook", True)

    # The delivery log; the secret is never shown again.
    async with ctx.db.transaction() as session:
        session.add(
            WebhookEvent(
                user_id=customer.user_id,
                order_id=77,
                type="order.status",
                payload={"order": 77},
                attempts=1,
                delivered_at=utcnow(),
            )
        )
    again = await client.get("/web/account")
    assert '<code id="webhook-current">http://127.0.0.1:9/hook</code>' in again.text
    assert "whsec_" not in again.text
    row = re.search(r'<tr id="delivery-\d+">(.*?)</tr>', again.text, flags=re.S)
    assert row is not None and "order.status" in row.group(1) and "Delivered" in row.group(1)

    removed = await client.post("/web/account/webhook", data={"csrf": csrf, "url": ""})
    assert (removed.status_code, removed.headers["location"]) == (
        303,
        "/web/account?done=webhook-removed#webhook-h",
    )
    assert 'id="webhook-none"' in (await client.get("/web/account")).text
    assert (await client.get("/client/v1/webhook", headers=customer.auth)).json()["webhook"] == ""
