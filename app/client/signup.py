"""Signing up for /client/v1: the account and its verification mail, by the command of
app/flows/commands/signup.py (the storefront's sign-up form runs the same)."""

from __future__ import annotations

from fastapi import APIRouter, Request, status

from app.customers.schemas import RegisteredOut, RegisterIn
from app.flows.commands import signup
from app.http.context import ServicesDep
from app.http.tx import Tx

router = APIRouter(tags=["client: account"])


@router.post(
    "/register",
    status_code=status.HTTP_201_CREATED,
    summary="Register (a verification mail is sent)",
    description="Email (unique whatever its case), password (8–200 characters), optional "
    "`referral_code` of the user who referred you, `language` of the mails (en, ru); "
    "`accept_terms` must be true "
    "(the customer accepts the legal texts in force; the acceptance is recorded with the "
    "client's address).",
)
async def register(
    request: Request, tx: Tx, services: ServicesDep, body: RegisterIn
) -> RegisteredOut:
    user = await signup.sign_up(
        tx,
        services,
        email=body.email,
        password=body.password,
        referral_code=body.referral_code,
        language=body.language,
        accept_terms=body.accept_terms,
        ip=request.client.host if request.client else None,
    )
    return RegisteredOut(user_id=user.id, email=user.email or "")
