"""Domain errors know how they are rendered: every class declares its HTTP status (and its
message, and the storefront field it belongs to where it has one), each front end renders
from that alone, and the status and problem `type` of every class are a contract clients
rely on."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from collections.abc import Iterator
from pathlib import Path

import httpx
from fastapi import FastAPI

import app
from app.customers.errors import TooManyAttempts
from app.errors import DomainError, InvalidField, NotEnoughFunds, problem_type_of
from app.http.problems import install

APP = Path(app.__file__).parent
FRONT_ENDS = ("api_v2", "client", "web", "admin")

# What the JSON APIs answer for each refusal: (status, problem type). Changing a line is
# changing what clients see.
CONTRACT: dict[str, tuple[int, str]] = {
    "AccountBlocked": (403, "/errors/account-blocked"),
    "AlertNotFound": (404, "/errors/alert-not-found"),
    "AlreadyUnderReview": (409, "/errors/already-under-review"),
    "AnalyticsIdRefused": (422, "/errors/analytics-id-refused"),
    "CancelAlreadyRequested": (422, "/errors/cancel-already-requested"),
    "CancelDisabled": (422, "/errors/cancel-disabled"),
    "CannedAnswerNotFound": (404, "/errors/canned-answer-not-found"),
    "CannotResend": (409, "/errors/cannot-resend"),
    "CatalogRefused": (422, "/errors/catalog-refused"),
    "CategoryNotEmpty": (409, "/errors/category-not-empty"),
    "ChargebackInvoiceNotFound": (404, "/errors/chargeback-invoice-not-found"),
    "Conflict": (409, "/errors/conflict"),
    "CustomerError": (422, "/errors/invalid-request"),
    "DepositTooSmall": (422, "/errors/deposit-too-small"),
    "DomainError": (422, "/errors/invalid-request"),
    "DuplicateActiveOrder": (422, "/errors/duplicate-active-order"),
    "EmailNotVerified": (403, "/errors/email-not-verified"),
    "EmailTaken": (409, "/errors/email-taken"),
    "GatewayUnavailable": (422, "/errors/gateway-unavailable"),
    "IncorrectAmount": (422, "/errors/incorrect-amount"),
    "IncorrectCategory": (422, "/errors/incorrect-request"),
    "IncorrectLink": (422, "/errors/incorrect-link"),
    "IncorrectOrderId": (422, "/errors/incorrect-order-id"),
    "IncorrectRequest": (422, "/errors/incorrect-request"),
    "IncorrectRequestId": (422, "/errors/incorrect-request-id"),
    "IncorrectServiceId": (422, "/errors/incorrect-service-id"),
    "InvalidApiKey": (422, "/errors/invalid-api-key"),
    "InvalidCredentials": (401, "/errors/invalid-credentials"),
    "InvalidEmail": (422, "/errors/invalid-email"),
    "InvalidField": (422, "/errors/invalid-field"),
    "InvalidToken": (400, "/errors/invalid-token"),
    "InvalidTwoFactorCode": (401, "/errors/invalid-two-factor-code"),
    "LastOwner": (409, "/errors/last-owner"),
    "LegalTextRefused": (422, "/errors/legal-text-refused"),
    "LegalVersionNotFound": (404, "/errors/legal-version-not-found"),
    "LinkUnderReview": (409, "/errors/link-under-review"),
    "LogoTooLarge": (413, "/errors/logo-too-large"),
    "LogoTypeRefused": (415, "/errors/logo-type-refused"),
    "LogoUnreadable": (422, "/errors/logo-unreadable"),
    "MarkupNeedsProvider": (422, "/errors/markup-needs-provider"),
    "NameRefused": (422, "/errors/name-refused"),
    "NewsNotFound": (404, "/errors/news-not-found"),
    "NoConversionRate": (422, "/errors/no-conversion-rate"),
    "NoOperatorRate": (404, "/errors/no-operator-rate"),
    "NoReferrer": (404, "/errors/no-referrer"),
    "NotEnoughFunds": (409, "/errors/insufficient-funds"),
    "PayoutDecided": (409, "/errors/payout-decided"),
    "PayoutNotFound": (404, "/errors/payout-not-found"),
    "PayoutPending": (409, "/errors/payout-pending"),
    "PayoutTooSmall": (422, "/errors/payout-too-small"),
    "PayoutsOff": (422, "/errors/payouts-off"),
    "NotFound": (404, "/errors/not-found"),
    "NotInReviewQueue": (409, "/errors/not-in-review-queue"),
    "NotSignedIn": (401, "/errors/not-signed-in"),
    "NotUnderReview": (409, "/errors/not-under-review"),
    "OrderFinished": (409, "/errors/order-finished"),
    "OrderNotCancelable": (422, "/errors/order-not-cancelable"),
    "OrderNotFound": (404, "/errors/order-not-found"),
    "OrderUnderReview": (409, "/errors/order-under-review"),
    "OwnCurrency": (409, "/errors/own-currency"),
    "PaymentNotFound": (404, "/errors/payment-not-found"),
    "PaymentRefUsed": (409, "/errors/payment-ref-used"),
    "PermissionDenied": (403, "/errors/permission-denied"),
    "ProviderMappingRefused": (422, "/errors/provider-mapping-refused"),
    "ProviderNotFound": (404, "/errors/provider-not-found"),
    "ProviderUrlPrivate": (422, "/errors/provider-url-private"),
    "ProviderUrlRefused": (422, "/errors/provider-url-refused"),
    "QuantityBoundsRefused": (422, "/errors/quantity-bounds-refused"),
    "QuantityTooLarge": (422, "/errors/quantity-too-large"),
    "QuantityTooSmall": (422, "/errors/quantity-too-small"),
    "RefillAlreadyActive": (422, "/errors/refill-already-active"),
    "RefillDisabled": (422, "/errors/refill-disabled"),
    "RefillExpired": (422, "/errors/refill-expired"),
    "RefillFinished": (409, "/errors/refill-finished"),
    "RefillNotEligible": (422, "/errors/refill-not-eligible"),
    "RefillNotFound": (422, "/errors/refill-not-found"),
    "RefundAboveLimit": (403, "/errors/permission-denied"),
    "RefundRefused": (409, "/errors/refund-refused"),
    "RequestIdReused": (422, "/errors/request-id-reused"),
    "RequestTooLarge": (422, "/errors/request-too-large"),
    "RewardInPayout": (409, "/errors/reward-in-payout"),
    "ReviewsPending": (409, "/errors/reviews-pending"),
    "SelfReferral": (422, "/errors/self-referral"),
    "ServiceRemoved": (409, "/errors/service-removed"),
    "StaffDisabled": (403, "/errors/staff-disabled"),
    "StaffEmailTaken": (409, "/errors/email-taken"),
    "StaffNotFound": (404, "/errors/staff-not-found"),
    "StatusFollowsRuns": (409, "/errors/status-follows-runs"),
    "StorefrontRefused": (422, "/errors/storefront-refused"),
    "TermsNotAccepted": (409, "/errors/terms-not-accepted"),
    "TermsRequired": (422, "/errors/terms-required"),
    "TextRefused": (422, "/errors/text-refused"),
    "TicketClosedForGood": (409, "/errors/ticket-closed-for-good"),
    "TicketNotFound": (404, "/errors/ticket-not-found"),
    "TooManyAttempts": (429, "/errors/too-many-attempts"),
    "TooManyIds": (422, "/errors/too-many-ids"),
    "TooManyLines": (422, "/errors/too-many-lines"),
    "TwoFactorCodeUsed": (401, "/errors/invalid-two-factor-code"),
    "TwoFactorRequired": (401, "/errors/two-factor-required"),
    "TwoFactorState": (409, "/errors/two-factor-state"),
    "UnknownDocument": (404, "/errors/unknown-document"),
    "UnknownRole": (422, "/errors/unknown-role"),
    "WeakPassword": (422, "/errors/weak-password"),
    "WebhookUrlPrivate": (422, "/errors/webhook-url-private"),
    "WebhookUrlRefused": (422, "/errors/webhook-url-refused"),
    "WrongPassword": (401, "/errors/wrong-password"),
}


def every_module() -> Iterator[str]:
    for found in pkgutil.walk_packages(app.__path__, "app."):
        yield found.name


def domain_errors() -> list[type[DomainError]]:
    """Every DomainError class of the application (each module imported)."""
    for name in every_module():
        importlib.import_module(name)
    found: list[type[DomainError]] = []
    pending: list[type[DomainError]] = [DomainError]
    while pending:
        kind = pending.pop()
        found.append(kind)
        pending += kind.__subclasses__()
    return sorted(set(found), key=lambda k: k.__name__)


def test_every_domain_error_declares_how_it_is_rendered() -> None:
    for kind in domain_errors():
        assert "http_status" in vars(kind), f"{kind.__qualname__} declares no http_status"
        assert 400 <= kind.http_status < 600, kind
        assert isinstance(kind.message, str) and kind.message, kind
        assert kind.field is None or kind.field.isidentifier(), kind


def test_problem_types_and_statuses_are_the_contract() -> None:
    shown = {kind.__name__: (kind.http_status, problem_type_of(kind)) for kind in domain_errors()}
    assert shown == CONTRACT


def test_a_field_error_names_its_field() -> None:
    assert InvalidField("answer_number").field == "answer_number"
    assert InvalidField("answer_number").message == "Incorrect answer_number"
    refused = InvalidField("runs", "Drip-feed is disabled for this service")
    assert (refused.field, refused.message) == ("runs", "Drip-feed is disabled for this service")


async def test_the_json_apis_answer_a_refusal_with_what_its_class_declares() -> None:
    api = FastAPI()
    install(api)

    @api.get("/funds")
    async def funds() -> None:
        raise NotEnoughFunds()

    @api.get("/attempts")
    async def attempts() -> None:
        raise TooManyAttempts(30)

    transport = httpx.ASGITransport(app=api)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        poor = await client.get("/funds")
        locked = await client.get("/attempts")
    assert poor.status_code == 409
    assert poor.headers["content-type"] == "application/problem+json"
    assert poor.json() == {
        "type": "/errors/insufficient-funds",
        "title": "Conflict",
        "status": 409,
        "detail": "Not enough funds on balance",
    }
    assert locked.status_code == 429
    assert locked.headers["retry-after"] == "30"
    assert locked.json()["type"] == "/errors/too-many-attempts"


def _is_a_message(node: ast.AST) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr == "message") or (
        isinstance(node, ast.Name) and node.id == "message"
    )


def _compares_a_message(node: ast.AST) -> bool:
    """`x.message == …`, `message in (…)`, `x.message.startswith(…)`."""
    if isinstance(node, ast.Compare):
        return any(_is_a_message(side) for side in (node.left, *node.comparators))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        matching = node.func.attr in ("startswith", "endswith", "find", "count")
        return matching and _is_a_message(node.func.value)
    return False


def test_no_front_end_tells_errors_apart_by_their_words() -> None:
    """A front end renders what an error declares; it never matches its message (the
    storefront's translations look messages up by their English words, as gettext does:
    that is the one place words are keys)."""
    offending = []
    for front_end in (*FRONT_ENDS, "http"):
        for path in (APP / front_end).rglob("*.py"):
            if path == APP / "web" / "i18n.py":
                continue
            tree = ast.parse(path.read_text())
            offending += [
                f"{path.relative_to(APP)}:{getattr(node, 'lineno', 0)}"
                for node in ast.walk(tree)
                if _compares_a_message(node)
            ]
    assert offending == []
