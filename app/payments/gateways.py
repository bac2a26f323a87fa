"""The three gateways' signature schemes and calls, as their public documentation describes.

- Robokassa: the ResultURL notification carries OutSum, InvId and SignatureValue =
  hash("OutSum:InvId:Password#2[:Shp_key=value…]") with the Shp_ parameters sorted by name,
  in the hash algorithm chosen in the shop's settings (MD5 by default). The shop answers
  "OK<InvId>". The payment link is signed with Password#1 over "MerchantLogin:OutSum:InvId".
- Free-Kassa: the notification carries MERCHANT_ID, AMOUNT, MERCHANT_ORDER_ID, intid and
  SIGN = md5("MERCHANT_ID:AMOUNT:secret word 2:MERCHANT_ORDER_ID"); the shop answers "YES".
  The payment link is signed md5("m:oa:secret word 1:currency:o").
- YooKassa: notifications are not signed. The panel trusts only YooKassa's API: for a
  `payment.succeeded` notification it reads the payment by its id (GET /payments/{id}, Basic
  auth with the shop id and secret key) and credits what that answer says.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote, urlencode

import httpx

from app.settings import Settings

ROBOKASSA_HASHES = ("md5", "sha1", "sha256", "sha384", "sha512")

# How a customer knows each gateway: its brand (the pages translate it: ЮKassa in
# Russian) and the ways of paying it offers.
TITLES = {"yookassa": "YooKassa", "robokassa": "Robokassa", "freekassa": "Free-Kassa"}
METHODS = {
    "yookassa": ("bank cards", "SBP", "YooMoney"),
    "robokassa": ("bank cards", "SBP"),
    "freekassa": ("bank cards", "SBP"),
}


class Rejected(Exception):
    """A notification the panel refuses; `outcome` is what the notification log records."""

    def __init__(self, outcome: str, detail: str = "") -> None:
        super().__init__(detail or outcome)
        self.outcome = outcome


class Unavailable(Exception):
    """The gateway could not be asked: answer so that it notifies again later."""


@dataclass(frozen=True)
class Confirmed:
    """What a verified notification says was paid."""

    payment_id: int
    amount: Decimal
    currency: str | None  # None when the gateway's notification does not carry it
    external_id: str | None


def money_text(amount: Decimal) -> str:
    return f"{amount:.2f}"


def _decimal(value: str | None) -> Decimal:
    try:
        amount = Decimal((value or "").strip())
    except InvalidOperation:
        raise Rejected("malformed", "amount is not a number") from None
    if not amount.is_finite() or amount <= 0:
        raise Rejected("malformed", "amount must be positive")
    return amount


def _payment_id(value: str | None) -> int:
    text = (value or "").strip()
    if not text.isdigit() or len(text) > 18:
        raise Rejected("unknown_payment", "no such invoice")
    return int(text)


def _same(expected: str, given: str | None) -> bool:
    return hmac.compare_digest(expected.lower().encode(), (given or "").strip().lower().encode())


# Robokassa ----------------------------------------------------------------------------------


def robokassa_configured(settings: Settings) -> bool:
    return bool(
        settings.robokassa_login and settings.robokassa_password1 and settings.robokassa_password2
    )


def _robokassa_hash(settings: Settings, base: str) -> str:
    algorithm = settings.robokassa_hash.lower()
    if algorithm not in ROBOKASSA_HASHES:
        raise ValueError(f"unsupported ROBOKASSA_HASH {algorithm!r}")
    return hashlib.new(algorithm, base.encode()).hexdigest()


def fiscal_item(settings: Settings, payment_id: int) -> str:
    """The service a gateway's receipt names (FISCAL_ITEM_NAME and the invoice)."""
    return f"{settings.fiscal_item_name} №{payment_id}"


def robokassa_receipt(settings: Settings, payment_id: int, amount: Decimal) -> str | None:
    """The 54-FZ `Receipt` of a payment link, URL-encoded once (as it is signed), when
    FISCAL_BACKEND is `gateway`."""
    if settings.fiscal_backend != "gateway":
        return None
    receipt = {
        "items": [
            {
                "name": fiscal_item(settings, payment_id)[:128],
                "quantity": 1,
                "sum": float(amount),
                "payment_method": "full_payment",
                "payment_object": "service",
                "tax": "none",
            }
        ]
    }
    return quote(json.dumps(receipt, ensure_ascii=False, separators=(",", ":")), safe="")


def robokassa_pay_url(settings: Settings, payment_id: int, amount: Decimal) -> str:
    out_sum = money_text(amount)
    receipt = robokassa_receipt(settings, payment_id, amount)
    signed = [settings.robokassa_login or "", out_sum, str(payment_id)]
    if receipt is not None:
        signed.append(receipt)
    base = ":".join([*signed, settings.robokassa_password1 or ""])
    params = {
        "MerchantLogin": settings.robokassa_login or "",
        "OutSum": out_sum,
        "InvId": str(payment_id),
        "Description": f"Balance top-up #{payment_id}",
        "SignatureValue": _robokassa_hash(settings, base),
    }
    if receipt is not None:
        params["Receipt"] = receipt
    if settings.robokassa_test:
        params["IsTest"] = "1"
    return f"{settings.robokassa_url}?{urlencode(params)}"


def robokassa_signature(settings: Settings, fields: Mapping[str, str], password: str) -> str:
    shp = sorted(k for k in fields if k.lower().startswith("shp_"))
    base = ":".join(
        [fields.get("OutSum", ""), fields.get("InvId", ""), password]
        + [f"{k}={fields[k]}" for k in shp]
    )
    return _robokassa_hash(settings, base)


def robokassa_verify(settings: Settings, fields: Mapping[str, str]) -> Confirmed:
    if not robokassa_configured(settings):
        raise Rejected("not_configured")
    expected = robokassa_signature(settings, fields, settings.robokassa_password2 or "")
    if not _same(expected, fields.get("SignatureValue")):
        raise Rejected("bad_signature")
    return Confirmed(
        payment_id=_payment_id(fields.get("InvId")),
        amount=_decimal(fields.get("OutSum")),
        currency=None,
        external_id=None,
    )


# Free-Kassa ---------------------------------------------------------------------------------


def _md5(text: str) -> str:
    # MD5 is Free-Kassa's scheme, not a choice of ours.
    return hashlib.md5(text.encode()).hexdigest()  # noqa: S324


def freekassa_configured(settings: Settings) -> bool:
    return bool(
        settings.freekassa_merchant_id and settings.freekassa_secret1 and settings.freekassa_secret2
    )


def freekassa_pay_url(settings: Settings, payment_id: int, amount: Decimal, currency: str) -> str:
    merchant, oa = settings.freekassa_merchant_id or "", money_text(amount)
    sign = _md5(f"{merchant}:{oa}:{settings.freekassa_secret1}:{currency}:{payment_id}")
    params = {"m": merchant, "oa": oa, "o": str(payment_id), "currency": currency, "s": sign}
    return f"{settings.freekassa_url}?{urlencode(params)}"


def freekassa_signature(settings: Settings, fields: Mapping[str, str]) -> str:
    base = ":".join(
        [
            fields.get("MERCHANT_ID", ""),
            fields.get("AMOUNT", ""),
            settings.freekassa_secret2 or "",
            fields.get("MERCHANT_ORDER_ID", ""),
        ]
    )
    return _md5(base)


def freekassa_verify(settings: Settings, fields: Mapping[str, str]) -> Confirmed:
    if not freekassa_configured(settings):
        raise Rejected("not_configured")
    if not _same(freekassa_signature(settings, fields), fields.get("SIGN")):
        raise Rejected("bad_signature")
    if fields.get("MERCHANT_ID", "") != settings.freekassa_merchant_id:
        raise Rejected("bad_signature", "another merchant's notification")
    intid = (fields.get("intid") or "").strip()
    return Confirmed(
        payment_id=_payment_id(fields.get("MERCHANT_ORDER_ID")),
        amount=_decimal(fields.get("AMOUNT")),
        currency=None,
        external_id=intid[:100] or None,
    )


# YooKassa -----------------------------------------------------------------------------------


def yookassa_configured(settings: Settings) -> bool:
    return bool(settings.yookassa_shop_id and settings.yookassa_secret_key)


def _yookassa_auth(settings: Settings) -> httpx.BasicAuth:
    return httpx.BasicAuth(settings.yookassa_shop_id or "", settings.yookassa_secret_key or "")


def yookassa_receipt(
    settings: Settings, payment_id: int, amount: Decimal, currency: str, email: str | None
) -> dict[str, Any] | None:
    """The 54-FZ `receipt` of a payment, when FISCAL_BACKEND is `gateway`."""
    if settings.fiscal_backend != "gateway":
        return None
    item = {
        "description": fiscal_item(settings, payment_id)[:128],
        "quantity": "1.00",
        "amount": {"value": money_text(amount), "currency": currency},
        "vat_code": 1,
        "payment_mode": "full_payment",
        "payment_subject": "service",
    }
    return {"customer": {"email": email} if email else {}, "items": [item]}


async def yookassa_create(
    settings: Settings,
    http: httpx.AsyncClient,
    payment_id: int,
    amount: Decimal,
    currency: str,
    email: str | None = None,
) -> tuple[str, str]:
    """Create the payment at YooKassa; (their payment id, the confirmation URL).

    The idempotence key is derived from the invoice, so asking again after a lost answer
    returns the same payment instead of creating a second one.
    """
    body: dict[str, Any] = {
        "amount": {"value": money_text(amount), "currency": currency},
        "capture": True,
        "confirmation": {"type": "redirect", "return_url": settings.public_url},
        "description": f"Balance top-up #{payment_id}",
        "metadata": {"payment_id": str(payment_id)},
    }
    receipt = yookassa_receipt(settings, payment_id, amount, currency, email)
    if receipt is not None:
        body["receipt"] = receipt
    try:
        response = await http.post(
            f"{settings.yookassa_api_url}/payments",
            json=body,
            auth=_yookassa_auth(settings),
            headers={"Idempotence-Key": f"smm-panel-payment-{payment_id}"},
        )
        data = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise Unavailable(str(exc)) from exc
    if response.status_code != 200 or not isinstance(data, dict):
        raise Unavailable(f"YooKassa answered {response.status_code}")
    confirmation = data.get("confirmation") or {}
    external_id, url = data.get("id"), confirmation.get("confirmation_url")
    if not isinstance(external_id, str) or not isinstance(url, str):
        raise Unavailable("YooKassa answered without a payment id")
    return external_id, url


def yookassa_payment_ref(body: Any) -> tuple[str, str]:
    """(event, payment id) of a notification body, or Rejected."""
    if not isinstance(body, dict) or body.get("type") != "notification":
        raise Rejected("malformed")
    event, obj = body.get("event"), body.get("object")
    if not isinstance(event, str) or not isinstance(obj, dict):
        raise Rejected("malformed")
    external_id = obj.get("id")
    if not isinstance(external_id, str) or not 0 < len(external_id) <= 100:
        raise Rejected("malformed")
    return event, external_id


async def yookassa_confirm(
    settings: Settings, http: httpx.AsyncClient, external_id: str, payment_id: int
) -> Confirmed:
    """Read the payment from YooKassa itself: the notification's body is not trusted."""
    if not yookassa_configured(settings):
        raise Rejected("not_configured")
    try:
        response = await http.get(
            f"{settings.yookassa_api_url}/payments/{external_id}", auth=_yookassa_auth(settings)
        )
    except httpx.HTTPError as exc:
        raise Unavailable(str(exc)) from exc
    if response.status_code == 404:
        raise Rejected("unconfirmed", "YooKassa does not know this payment")
    if response.status_code != 200:
        raise Unavailable(f"YooKassa answered {response.status_code}")
    try:
        data = response.json()
        amount = data["amount"]
        value, currency = str(amount["value"]), str(amount["currency"])
        status, paid = data.get("status"), data.get("paid")
        metadata = data.get("metadata") or {}
    except (ValueError, KeyError, TypeError) as exc:
        raise Unavailable("YooKassa answered an unexpected shape") from exc
    if status != "succeeded" or paid is not True:
        raise Rejected("unconfirmed", f"payment is {status}")
    if str(metadata.get("payment_id", "")) != str(payment_id):
        raise Rejected("unconfirmed", "payment belongs to another invoice")
    return Confirmed(
        payment_id=payment_id,
        amount=_decimal(value),
        currency=currency.upper(),
        external_id=external_id,
    )


async def yookassa_refund(settings: Settings, http: httpx.AsyncClient, refund_id: str) -> str:
    """Read a refund from YooKassa itself (the notification is not trusted): the id of the
    payment it reversed, when the refund succeeded."""
    if not yookassa_configured(settings):
        raise Rejected("not_configured")
    try:
        response = await http.get(
            f"{settings.yookassa_api_url}/refunds/{refund_id}", auth=_yookassa_auth(settings)
        )
    except httpx.HTTPError as exc:
        raise Unavailable(str(exc)) from exc
    if response.status_code == 404:
        raise Rejected("unconfirmed", "YooKassa does not know this refund")
    if response.status_code != 200:
        raise Unavailable(f"YooKassa answered {response.status_code}")
    try:
        data = response.json()
        status, payment = data.get("status"), data.get("payment_id")
    except (ValueError, AttributeError) as exc:
        raise Unavailable("YooKassa answered an unexpected shape") from exc
    if status != "succeeded":
        raise Rejected("unconfirmed", f"refund is {status}")
    if not isinstance(payment, str) or not 0 < len(payment) <= 100:
        raise Rejected("unconfirmed", "refund names no payment")
    return payment
