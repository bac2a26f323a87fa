"""A thin client of the tax service's "Мой налог" API (lknpd.nalog.ru/api/v1), as the
self-employed operator's own account uses it: sign in with the INN and password
(`auth/lkfl`), register an income (`income`, answering `approvedReceiptUuid`), list the
incomes of a period (`incomes`), cancel a receipt (`cancel`). The printable receipt is at
`receipt/{inn}/{uuid}/print`.

The API has no idempotency key, so the caller never sends an income twice blindly: after
an attempt whose outcome it does not know, it first looks the income up by its name (which
carries the receipt's own number) and amount (`find`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx

from app.settings import Settings

TIMEOUT = 10.0
PAGE = 50
MAX_PAGES = 20
CANCEL_COMMENT = "Возврат средств"


class NpdError(Exception):
    """The tax service could not be asked or refused: try again later."""


def _time(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


class NpdClient:
    def __init__(self, http: httpx.AsyncClient, settings: Settings) -> None:
        if not settings.npd_inn or not settings.npd_password:
            raise NpdError("NPD_INN and NPD_PASSWORD must be set")
        self.http = http
        self.base = settings.npd_api_url.rstrip("/")
        self.inn = settings.npd_inn
        self.password = settings.npd_password
        self.token: str | None = None

    def receipt_url(self, receipt_uuid: str) -> str:
        return f"{self.base}/receipt/{self.inn}/{receipt_uuid}/print"

    async def _call(self, method: str, path: str, *, signed: bool = True, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {await self._token()}"} if signed else {}
        try:
            response = await self.http.request(
                method, f"{self.base}/{path}", headers=headers, timeout=TIMEOUT, **kwargs
            )
            data = response.json() if response.content else {}
        except (httpx.HTTPError, ValueError) as exc:
            raise NpdError(f"{path}: {type(exc).__name__}: {exc}") from exc
        if response.status_code != 200 or not isinstance(data, dict):
            raise NpdError(f"{path}: the tax service answered {response.status_code}")
        return data

    async def _token(self) -> str:
        if self.token is None:
            body = {
                "username": self.inn,
                "password": self.password,
                "deviceInfo": {
                    "sourceDeviceId": "smm-panel",
                    "sourceType": "WEB",
                    "appVersion": "1.0.0",
                    "metaDetails": {"userAgent": "smm-panel"},
                },
            }
            data = await self._call("POST", "auth/lkfl", signed=False, json=body)
            token = data.get("token")
            if not isinstance(token, str) or not token:
                raise NpdError("auth: no token in the answer")
            self.token = token
        return self.token

    async def register(self, name: str, amount: Decimal, operation_at: datetime) -> str:
        """Register an income from an individual; the receipt's uuid."""
        body = {
            "operationTime": _time(operation_at),
            "requestTime": _time(datetime.now(operation_at.tzinfo)),
            "services": [{"name": name, "amount": f"{amount:.2f}", "quantity": 1}],
            "totalAmount": f"{amount:.2f}",
            "client": {
                "contactPhone": None,
                "displayName": None,
                "inn": None,
                "incomeType": "FROM_INDIVIDUAL",
            },
            "paymentType": "ACCOUNT",
            "ignoreMaxTotalIncomeRestriction": False,
        }
        data = await self._call("POST", "income", json=body)
        found = data.get("approvedReceiptUuid")
        if not isinstance(found, str) or not found:
            raise NpdError("income: no approvedReceiptUuid in the answer")
        return found

    async def find(self, name: str, amount: Decimal, operation_at: datetime) -> str | None:
        """The uuid of a registered (not cancelled) income of this name and amount near
        `operation_at`, if the tax service has one."""
        params = {
            "from": _time(operation_at - timedelta(days=1)),
            "to": _time(operation_at + timedelta(days=1)),
            "sortBy": "operation_time:asc",
            "limit": PAGE,
        }
        for page in range(MAX_PAGES):
            data = await self._call("GET", "incomes", params={**params, "offset": page * PAGE})
            for income in data.get("content") or []:
                if not isinstance(income, dict) or income.get("cancellationInfo"):
                    continue
                try:
                    same_amount = Decimal(str(income.get("totalAmount"))) == amount
                except ArithmeticError:
                    continue
                if income.get("name") == name and same_amount:
                    uuid = income.get("approvedReceiptUuid")
                    if isinstance(uuid, str) and uuid:
                        return uuid
            if not data.get("hasMore"):
                return None
        raise NpdError("incomes: too many pages to look through")

    async def cancel(self, receipt_uuid: str, operation_at: datetime) -> None:
        body = {
            "operationTime": _time(operation_at),
            "requestTime": _time(datetime.now(operation_at.tzinfo)),
            "comment": CANCEL_COMMENT,
            "receiptUuid": receipt_uuid,
            "partnerCode": None,
        }
        await self._call("POST", "cancel", json=body)
