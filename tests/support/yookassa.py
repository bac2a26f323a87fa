"""A stand-in for YooKassa's API (payments create/read), served over real HTTP in tests."""

from __future__ import annotations

import base64
import uuid
from typing import Any

from fastapi import FastAPI, Header, HTTPException, Request

SHOP_ID = "123456"
SECRET = "test_secret_key"


def create_yookassa_app() -> FastAPI:
    app = FastAPI()
    payments: dict[str, dict[str, Any]] = {}
    by_key: dict[str, str] = {}
    app.state.payments = payments
    app.state.up = True

    def check(authorization: str | None) -> None:
        expected = "Basic " + base64.b64encode(f"{SHOP_ID}:{SECRET}".encode()).decode()
        if authorization != expected:
            raise HTTPException(401, "unauthorized")
        if not app.state.up:
            raise HTTPException(500, "internal error")

    @app.post("/v3/payments")
    async def create(
        request: Request,
        authorization: str | None = Header(None),
        idempotence_key: str | None = Header(None),
    ) -> dict[str, Any]:
        check(authorization)
        if idempotence_key is None:
            raise HTTPException(400, "Idempotence-Key is required")
        if idempotence_key in by_key:
            return payments[by_key[idempotence_key]]
        body = await request.json()
        payment_id = str(uuid.uuid4())
        payments[payment_id] = {
            "id": payment_id,
            "status": "pending",
            "paid": False,
            "amount": body["amount"],
            "metadata": body.get("metadata", {}),
            "receipt": body.get("receipt"),
            "confirmation": {
                "type": "redirect",
                "confirmation_url": f"https://checkout.example/?orderId={payment_id}",
            },
        }
        by_key[idempotence_key] = payment_id
        return payments[payment_id]

    refunds: dict[str, dict[str, Any]] = {}
    app.state.refunds = refunds

    @app.get("/v3/refunds/{refund_id}")
    async def read_refund(refund_id: str, authorization: str | None = Header(None)) -> Any:
        check(authorization)
        if refund_id not in refunds:
            raise HTTPException(404, "not found")
        return refunds[refund_id]

    @app.get("/v3/payments/{payment_id}")
    async def read(payment_id: str, authorization: str | None = Header(None)) -> dict[str, Any]:
        check(authorization)
        if payment_id not in payments:
            raise HTTPException(404, "not found")
        return payments[payment_id]

    return app


def succeed(app: FastAPI, payment_id: str, **changes: Any) -> None:
    """What happens at YooKassa when the user pays (optionally with other figures)."""
    app.state.payments[payment_id].update(status="succeeded", paid=True, **changes)


def refund(app: FastAPI, payment_id: str, status: str = "succeeded") -> str:
    """A refund of a payment made at YooKassa (by the shop, or a reversal); its id."""
    refund_id = str(uuid.uuid4())
    amount = app.state.payments[payment_id]["amount"]
    app.state.refunds[refund_id] = {
        "id": refund_id,
        "payment_id": payment_id,
        "status": status,
        "amount": amount,
    }
    return refund_id
