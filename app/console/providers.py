"""The console's providers and alerts: every provider with its last balance (and its
alert threshold), capabilities and last sync; one provider with the services mapped to
it, the catalog changes its imports and syncs found, and what an operator does: read the
balance now, sync the catalog now, change its settings, disable it. Alerts newest first,
open ones apart, each acknowledged by an operator.

A live call to a provider is never made inside a transaction (app/providers/service.py
read_balance, app/providers/catalog.py sync_provider); every change is audited as
/admin/v1 audits it, naming the member."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from app.alerts import service as alerts
from app.alerts.models import Alert
from app.alerts.router import alert_out
from app.catalog import service as catalog
from app.console.listing import as_choice, shown, window
from app.console.render import (
    CONSOLE,
    N_,
    Failure,
    Permit,
    Who,
    csv_download,
    page,
    posted,
    redirect,
)
from app.errors import DomainError
from app.http.paths import PathId
from app.http.problems import Problem
from app.pages.export import Cell
from app.providers import catalog as syncing
from app.providers import service as providers
from app.providers.client import ProviderError
from app.providers.router import provider_out
from app.providers.schemas import ProviderPatch, SyncOut

router = APIRouter()
Reader = Annotated[Who, Depends(Permit("providers:read"))]
Writer = Annotated[Who, Depends(Permit("providers:write"))]
Refusals = (DomainError, Problem, ValueError)
CHANGE_ROWS = 50

DONE = {
    "balance": N_("The balance is read from the provider."),
    "synced": N_("The catalog is synced."),
    "saved": N_("The provider is saved."),
    "disabled": N_("The provider is disabled."),
    "acknowledged": N_("The alert is acknowledged."),
}


@router.get("/providers")
async def provider_list(who: Reader) -> Response:
    async with who.services.db.session() as session:
        found = await providers.list_providers(session)
    return page(who, "providers.html", providers=found)


async def provider_page(
    who: Who, provider_id: int, failure: Failure | None = None, done: str = ""
) -> Response:
    q = who.request.query_params
    at = window(q.get("page"), None)
    kind = q.get("kind", "")[:20] or None
    async with who.services.db.session() as session:
        provider = await providers.get_provider(session, provider_id)
        changes = await providers.catalog_changes(
            session, provider_id, kind=kind, limit=CHANGE_ROWS + 1, offset=(at.page - 1) * 50
        )
        mapped = await catalog.search_services(
            session, catalog.ServiceSearch(provider_id=provider_id), limit=200, offset=0
        )
        open_alerts = await alerts.list_alerts(
            session, subject="provider", subject_id=provider_id, open_only=True, limit=20
        )
    return page(
        who,
        "provider.html",
        failure.status if failure else 200,
        provider=provider,
        changes=shown(changes, at),
        kind=kind or "",
        mapped=mapped,
        alerts=open_alerts,
        error=failure.message if failure else "",
        done=who._(DONE[done]) if done in DONE else "",
    )


@router.get("/providers/{provider_id}")
async def provider_detail(who: Reader, provider_id: PathId, done: str = "") -> Response:
    return await provider_page(who, provider_id, done=done)


def back(who: Who, provider_id: int, done: str) -> Response:
    return redirect(who, f"{CONSOLE}/providers/{provider_id}?done={done}")


@router.post("/providers/{provider_id}/balance")
async def read_balance(who: Reader, provider_id: PathId) -> Response:
    """Ask the provider now (no transaction held across the call); the balance is kept
    with its alert, as the scheduled sync keeps it."""
    await posted(who)
    services = who.services
    try:
        await providers.read_balance(
            services.db, services.http, services.settings.secret_key, provider_id
        )
    except ProviderError as exc:
        message = who._("The provider did not answer: %(error)s", error=exc.message)
        return await provider_page(who, provider_id, Failure(502, message))
    except Refusals as exc:
        return await provider_page(who, provider_id, who.error(exc))
    return back(who, provider_id, "balance")


@router.post("/providers/{provider_id}/sync")
async def sync_now(who: Writer, provider_id: PathId) -> Response:
    """What the scheduled sync does, now; a failed sync changes nothing and says why."""
    await posted(who)
    services = who.services
    try:
        async with services.db.session() as session:
            await providers.get_provider(session, provider_id)
        outcome = await syncing.sync_provider(
            services.db, services.http, services.settings, provider_id
        )
        async with who.acting() as (_tx, audit):
            await audit(
                "provider.sync", "provider", provider_id, after=SyncOut.model_validate(outcome)
            )
    except Refusals as exc:
        return await provider_page(who, provider_id, who.error(exc))
    if not outcome.ok:
        message = who._("The sync failed and changed nothing: %(error)s", error=outcome.error or "")
        return await provider_page(who, provider_id, Failure(502, message))
    return back(who, provider_id, "synced")


def changes_of(fields: dict[str, str]) -> tuple[ProviderPatch, bool]:
    """The settings form read by /admin/v1's own input model; and whether the balance
    alert is removed (an empty threshold)."""
    values: dict[str, object] = {
        "name": fields.get("name", "").strip(),
        "url": fields.get("url", "").strip(),
        "enabled": fields.get("enabled") == "1",
        "sync_minutes": fields.get("sync_minutes", "").strip() or None,
    }
    threshold = fields.get("balance_threshold", "").strip()
    if threshold:
        values["balance_threshold"] = threshold
    if fields.get("api_key", "").strip():
        values["api_key"] = fields["api_key"].strip()
    return ProviderPatch.model_validate(values), not threshold


@router.post("/providers/{provider_id}")
async def save_provider(who: Writer, provider_id: PathId) -> Response:
    fields = await posted(who)
    try:
        body, no_threshold = changes_of(fields)
        changes = body.model_dump(exclude_unset=True, exclude_none=True)
        if no_threshold:
            changes["balance_threshold"] = None
        async with who.acting() as (tx, audit):
            provider = await providers.get_provider(tx, provider_id)
            before = provider_out(provider)
            await providers.change_provider(tx, who.services.settings, provider, changes)
            after = provider_out(provider)
            await audit("provider.update", "provider", provider_id, before=before, after=after)
    except Refusals as exc:
        return await provider_page(who, provider_id, who.error(exc))
    return back(who, provider_id, "saved")


@router.post("/providers/{provider_id}/disable")
async def disable(who: Writer, provider_id: PathId) -> Response:
    await posted(who)
    try:
        async with who.acting() as (tx, audit):
            provider = await providers.get_provider(tx, provider_id)
            before = provider_out(provider)
            after = provider_out(await providers.disable_provider(tx, provider))
            await audit("provider.disable", "provider", provider_id, before=before, after=after)
    except Refusals as exc:
        return await provider_page(who, provider_id, who.error(exc))
    return back(who, provider_id, "disabled")


# Alerts -----------------------------------------------------------------------------------

ALERT_HEADER = ["ID", "Kind", "Subject", "Subject ID", "Message", "Created", "Acknowledged by"]


def alert_rows(found: list[Alert]) -> list[list[Cell]]:
    return [
        [a.id, a.kind, a.subject, a.subject_id, a.message, a.created_at, a.acknowledged_by]
        for a in found
    ]


async def alert_page(who: Who, failure: Failure | None = None, done: str = "") -> Response:
    q = who.request.query_params
    at = window(q.get("page"), q.get("format"))
    kind = as_choice(q.get("kind"), alerts.KINDS)
    open_only = q.get("open") == "1"
    async with who.services.db.session() as session:
        found = await alerts.list_alerts(
            session, kind=kind, open_only=open_only, limit=at.limit, offset=at.offset
        )
    if at.csv:
        return csv_download(who, "alerts", ALERT_HEADER, alert_rows(found))
    return page(
        who,
        "alerts.html",
        failure.status if failure else 200,
        listed=shown(found, at),
        kinds=alerts.KINDS,
        kind=kind or "",
        open_only=open_only,
        error=failure.message if failure else "",
        done=who._(DONE[done]) if done in DONE else "",
    )


@router.get("/alerts")
async def alert_list(who: Reader, done: str = "") -> Response:
    return await alert_page(who, done=done)


@router.post("/alerts/{alert_id}/acknowledge")
async def acknowledge(who: Writer, alert_id: PathId) -> Response:
    await posted(who)
    try:
        async with who.acting() as (tx, audit):
            before = alert_out(await alerts.get_alert(tx, alert_id))
            after = alert_out(await alerts.acknowledge(tx, alert_id, audit.actor))
            await audit("alert.acknowledge", "alert", alert_id, before=before, after=after)
    except Refusals as exc:
        return await alert_page(who, who.error(exc))
    return redirect(who, f"{CONSOLE}/alerts?open=1&done=acknowledged")
