"""A stand-in for the tax service's "Мой налог" API (auth/lkfl, income, incomes, cancel),
served over real HTTP in tests. Faults on demand: `fail_next` answers the next incomes
with 500 without registering them; `hang_after_register` registers the next income and
then never answers (a worker killed while waiting)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from fastapi import FastAPI, Header, HTTPException, Request

INN = "500100732259"
PASSWORD = "npd-password"


def create_npd_app() -> FastAPI:
    app = FastAPI()
    incomes: list[dict[str, Any]] = []
    app.state.incomes = incomes
    app.state.fail_next = 0
    app.state.hang_after_register = False
    app.state.posts = 0
    app.state.income_seen = asyncio.Event()  # set once an income is registered
    tokens: set[str] = set()

    def check(authorization: str | None) -> None:
        if authorization is None or authorization.removeprefix("Bearer ") not in tokens:
            raise HTTPException(401, "unauthorized")

    @app.post("/api/v1/auth/lkfl")
    async def auth(request: Request) -> dict[str, Any]:
        body = await request.json()
        if body.get("username") != INN or body.get("password") != PASSWORD:
            raise HTTPException(422, "wrong credentials")
        token = uuid.uuid4().hex
        tokens.add(token)
        return {"token": token, "refreshToken": uuid.uuid4().hex, "profile": {"inn": INN}}

    @app.post("/api/v1/income")
    async def income(request: Request, authorization: str | None = Header(None)) -> Any:
        check(authorization)
        app.state.posts += 1
        if app.state.fail_next > 0:
            app.state.fail_next -= 1
            raise HTTPException(500, "internal error")
        body = await request.json()
        (service,) = body["services"]
        receipt = {
            "approvedReceiptUuid": uuid.uuid4().hex[:10],
            "name": service["name"],
            "totalAmount": body["totalAmount"],
            "operationTime": body["operationTime"],
            "cancellationInfo": None,
        }
        incomes.append(receipt)
        app.state.income_seen.set()
        if app.state.hang_after_register:
            app.state.hang_after_register = False
            await asyncio.Event().wait()  # never answers
        return {"approvedReceiptUuid": receipt["approvedReceiptUuid"]}

    @app.get("/api/v1/incomes")
    async def list_incomes(
        offset: int = 0, limit: int = 50, authorization: str | None = Header(None)
    ) -> dict[str, Any]:
        check(authorization)
        page = incomes[offset : offset + limit]
        return {"content": page, "hasMore": offset + limit < len(incomes)}

    @app.post("/api/v1/cancel")
    async def cancel(request: Request, authorization: str | None = Header(None)) -> Any:
        check(authorization)
        body = await request.json()
        for receipt in incomes:
            if receipt["approvedReceiptUuid"] == body["receiptUuid"]:
                receipt["cancellationInfo"] = {"comment": body["comment"]}
                return {"incomeInfo": receipt}
        raise HTTPException(404, "no such receipt")

    return app


def registered(app: FastAPI) -> list[dict[str, Any]]:
    """The incomes registered and not cancelled."""
    return [r for r in app.state.incomes if r["cancellationInfo"] is None]
