"""The console's catalog: services (filtered by name, category, provider and whether on
sale; pages; CSV) and one service with its edit form, its backup providers in the order
they are tried (failover), the type the provider changed to, and removal; bulk actions on
the services ticked in the list (on sale, off sale, a markup pricing rule repricing them
now); categories with their order, created, renamed, reordered and deleted when empty.

The rules are the catalog's (app/catalog/service.py: a removed service stays removed, the
provider mapping is whole or absent, bounds in order) and the sync's pricing
(app/providers/catalog.py: no service stays on sale below its cost); every change is
audited as /admin/v1 audits it, naming the member."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from app.catalog import service as catalog
from app.catalog import upstream
from app.catalog.models import MARKUP, SERVICE_TYPES, Service
from app.catalog.pricing import DEFAULT_STEP, PricingRule
from app.catalog.schemas import (
    BackupOut,
    BackupsIn,
    CategoryIn,
    CategoryOut,
    CategoryPatch,
    ServiceOut,
    ServicePatch,
)
from app.console.listing import as_decimal, as_id, shown, window
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
from app.errors import DomainError, IncorrectRequest
from app.http.paths import PathId
from app.http.problems import Problem
from app.pages.export import Cell
from app.providers import catalog as syncing
from app.providers import service as providers

router = APIRouter()
Reader = Annotated[Who, Depends(Permit("catalog:read"))]
Writer = Annotated[Who, Depends(Permit("catalog:write"))]
Refusals = (DomainError, Problem, ValueError)
BACKUP_ROWS = 5
BULK_MAX = 500

DONE = {
    "saved": N_("The service is saved."),
    "removed": N_("The service is removed: it left the catalog for good."),
    "type": N_("The new type is confirmed; the service is on sale again."),
    "backups": N_("The backup providers are saved."),
    "bulk": N_("The ticked services are changed."),
    "category": N_("The category is saved."),
    "category-removed": N_("The category is deleted."),
}
LIST_HEADER = [
    "ID",
    "Name",
    "Category",
    "Type",
    "Rate",
    "Min",
    "Max",
    "Provider",
    "Provider service",
    "Provider rate",
    "Pricing",
    "Enabled",
]
# The edit form's fields: the text ones (empty clears a field that may be empty) and the
# ticked ones.
TEXT_FIELDS = (
    "name",
    "category_id",
    "type",
    "description",
    "name_ru",
    "description_ru",
    "rate",
    "min_quantity",
    "max_quantity",
    "step",
    "refill_days",
    "link_pattern",
    "position",
    "provider_id",
    "provider_service_id",
    "provider_rate",
    "pricing",
    "price_multiplier",
    "price_fixed",
    "price_step",
    "stuck_after_seconds",
)
TICKED_FIELDS = ("enabled", "refill", "cancel", "dripfeed", "provider_dripfeed")


def csv_rows(found: list[Service]) -> list[list[Cell]]:
    return [
        [
            s.id,
            s.name,
            s.category_id,
            s.type,
            s.rate,
            s.min_quantity,
            s.max_quantity,
            s.provider_id,
            s.provider_service_id,
            s.provider_rate,
            s.pricing,
            s.enabled,
        ]
        for s in found
    ]


async def service_list_page(who: Who, failure: Failure | None = None, done: str = "") -> Response:
    q = who.request.query_params
    at = window(q.get("page"), q.get("format"))
    given = {k: q.get(k, "")[:300] for k in ("name", "category_id", "provider_id", "enabled")}
    where = catalog.ServiceSearch(
        category_id=as_id(given["category_id"]),
        provider_id=as_id(given["provider_id"]),
        enabled={"1": True, "0": False}.get(given["enabled"]),
        name=given["name"].strip() or None,
    )
    async with who.services.db.session() as session:
        found = await catalog.search_services(session, where, limit=at.limit, offset=at.offset)
        categories = await catalog.list_categories(session)
        known = await providers.list_providers(session)
    if at.csv:
        return csv_download(who, "services", LIST_HEADER, csv_rows(found))
    return page(
        who,
        "services.html",
        failure.status if failure else 200,
        listed=shown(found, at),
        given=given,
        categories=categories,
        category_names={c.id: c.name for c in categories},
        providers=known,
        error=failure.message if failure else "",
        done=who._(DONE[done]) if done in DONE else "",
    )


@router.get("/services")
async def service_list(who: Reader, done: str = "") -> Response:
    return await service_list_page(who, done=done)


def picked_ids(picked: list[str]) -> list[int]:
    ids = list(dict.fromkeys(i for i in (as_id(p) for p in picked) if i is not None))
    if not ids:
        raise IncorrectRequest(N_("Tick the services to change first."))
    if len(ids) > BULK_MAX:
        raise IncorrectRequest(N_("At most 500 services at a time."))
    return ids


def rule_of(fields: dict[str, str]) -> PricingRule:
    multiplier = as_decimal(fields.get("multiplier"))
    fixed = as_decimal(fields.get("fixed") or "0")
    step = as_decimal(fields.get("step") or str(DEFAULT_STEP))
    if multiplier is None or multiplier <= 0:
        raise ValueError(N_("Enter a multiplier above 0."))
    if fixed is None or fixed < 0 or step is None or step <= 0:
        raise ValueError(N_("Enter an added amount of at least 0 and a rounding step above 0."))
    return PricingRule(MARKUP, multiplier, fixed, step)


@router.post("/services/bulk")
async def bulk(who: Writer) -> Response:
    """The ticked services put on sale, taken off sale, or given a markup rule (repriced
    now); each service audited on its own; all or nothing."""
    fields = await posted(who)
    picked = [str(p) for p in (await who.request.form()).getlist("service")]
    action = fields.get("action", "")
    try:
        ids = picked_ids(picked)
        if action not in ("enable", "disable", "pricing"):
            raise IncorrectRequest(N_("Choose what to do with the ticked services."))
        async with who.acting() as (tx, audit):
            rows = [await catalog.get_service(tx, i) for i in ids]
            before = [ServiceOut.model_validate(s) for s in rows]
            if action == "pricing":
                await syncing.apply_rule(tx, who.services.settings, rows, rule_of(fields))
            else:
                for row in rows:
                    await syncing.change_service(
                        tx, who.services.settings, row, {"enabled": action == "enable"}
                    )
            for old, row in zip(before, rows, strict=True):
                await tx.refresh(row)
                new = ServiceOut.model_validate(row)
                await audit("service.update", "service", row.id, before=old, after=new)
    except Refusals as exc:
        return await service_list_page(who, who.error(exc))
    return redirect(who, f"{CONSOLE}/services?done=bulk")


async def service_page(
    who: Who, service_id: int, failure: Failure | None = None, done: str = ""
) -> Response:
    async with who.services.db.session() as session:
        service = await catalog.get_service(session, service_id)
        backups = await upstream.backups_of(session, service_id)
        categories = await catalog.list_categories(session)
        known = await providers.list_providers(session)
    return page(
        who,
        "service.html",
        failure.status if failure else 200,
        service=service,
        backups=backups,
        backup_rows=max(BACKUP_ROWS, len(backups) + 1),
        categories=categories,
        providers=known,
        types=SERVICE_TYPES,
        error=failure.message if failure else "",
        done=who._(DONE[done]) if done in DONE else "",
    )


@router.get("/services/{service_id}")
async def service_detail(who: Reader, service_id: PathId, done: str = "") -> Response:
    return await service_page(who, service_id, done=done)


def back(who: Who, service_id: int, done: str) -> Response:
    return redirect(who, f"{CONSOLE}/services/{service_id}?done={done}")


def edited(fields: dict[str, str]) -> ServicePatch:
    """The edit form read by /admin/v1's own input model: every field is set (an empty
    one is null: it clears a field that may be empty and leaves a required one)."""
    values: dict[str, object] = {k: fields.get(k, "").strip() or None for k in TEXT_FIELDS}
    values["description"] = fields.get("description", "").strip() or None
    values["description_ru"] = fields.get("description_ru", "").strip() or None
    values.update({k: fields.get(k) == "1" for k in TICKED_FIELDS})
    return ServicePatch.model_validate(values)


@router.post("/services/{service_id}")
async def save_service(who: Writer, service_id: PathId) -> Response:
    fields = await posted(who)
    try:
        body = edited(fields)
        async with who.acting() as (tx, audit):
            service = await catalog.get_service(tx, service_id)
            before = ServiceOut.model_validate(service)
            changes = body.model_dump(exclude_unset=True)
            await syncing.change_service(tx, who.services.settings, service, changes)
            after = ServiceOut.model_validate(service)
            await audit("service.update", "service", service_id, before=before, after=after)
    except Refusals as exc:
        return await service_page(who, service_id, who.error(exc))
    return back(who, service_id, "saved")


@router.post("/services/{service_id}/remove")
async def remove_service(who: Writer, service_id: PathId) -> Response:
    fields = await posted(who)
    try:
        if fields.get("confirm") != "1":
            raise ValueError(N_("Tick the box to confirm: a removed service cannot come back."))
        async with who.acting() as (tx, audit):
            service = await catalog.get_service(tx, service_id)
            before = ServiceOut.model_validate(service)
            after = ServiceOut.model_validate(await catalog.remove_service(tx, service))
            await audit("service.delete", "service", service_id, before=before, after=after)
    except Refusals as exc:
        return await service_page(who, service_id, who.error(exc))
    return back(who, service_id, "removed")


@router.post("/services/{service_id}/confirm-type")
async def confirm_type(who: Writer, service_id: PathId) -> Response:
    await posted(who)
    try:
        async with who.acting() as (tx, audit):
            service = await catalog.get_service(tx, service_id)
            before = ServiceOut.model_validate(service)
            await upstream.confirm_type(tx, service)
            await tx.refresh(service)
            after = ServiceOut.model_validate(service)
            await audit("service.confirm_type", "service", service_id, before=before, after=after)
    except Refusals as exc:
        return await service_page(who, service_id, who.error(exc))
    return back(who, service_id, "type")


def backups_of(fields: dict[str, str]) -> BackupsIn:
    """The filled rows of the backups form, in the order they are tried."""
    rows = []
    for n in range(BACKUP_ROWS * 4):
        provider_id = fields.get(f"backup-{n}-provider", "").strip()
        if not provider_id:
            continue
        rows.append(
            {
                "provider_id": provider_id,
                "provider_service_id": fields.get(f"backup-{n}-service", "").strip(),
                "provider_rate": fields.get(f"backup-{n}-rate", "").strip() or None,
            }
        )
    return BackupsIn.model_validate({"backups": rows})


@router.post("/services/{service_id}/backups")
async def save_backups(who: Writer, service_id: PathId) -> Response:
    """The backup providers tried, in this order, when the ones before refuse an order for
    good before accepting it."""
    fields = await posted(who)
    try:
        body = backups_of(fields)
        async with who.acting() as (tx, audit):
            service = await catalog.get_service(tx, service_id)
            before = [
                BackupOut.model_validate(b) for b in await upstream.backups_of(tx, service_id)
            ]
            rows = await upstream.set_backups(
                tx,
                service,
                [
                    upstream.Backup(b.provider_id, b.provider_service_id, b.provider_rate)
                    for b in body.backups
                ],
            )
            for row in rows:
                await tx.refresh(row)
            after = [BackupOut.model_validate(b) for b in rows]
            await audit(
                "service.backups",
                "service",
                service_id,
                before={"backups": [b.model_dump(mode="json") for b in before]},
                after={"backups": [b.model_dump(mode="json") for b in after]},
            )
    except Refusals as exc:
        return await service_page(who, service_id, who.error(exc))
    return back(who, service_id, "backups")


# Categories -------------------------------------------------------------------------------


async def category_page(who: Who, failure: Failure | None = None, done: str = "") -> Response:
    async with who.services.db.session() as session:
        categories = await catalog.list_categories(session)
    return page(
        who,
        "categories.html",
        failure.status if failure else 200,
        categories=categories,
        error=failure.message if failure else "",
        done=who._(DONE[done]) if done in DONE else "",
    )


@router.get("/categories")
async def category_list(who: Reader, done: str = "") -> Response:
    return await category_page(who, done=done)


def category_fields(fields: dict[str, str]) -> dict[str, object]:
    return {
        "name": fields.get("name", "").strip(),
        "position": fields.get("position", "").strip() or "0",
        "enabled": fields.get("enabled") == "1",
    }


@router.post("/categories")
async def add_category(who: Writer) -> Response:
    fields = await posted(who)
    try:
        body = CategoryIn.model_validate(category_fields(fields))
        async with who.acting() as (tx, audit):
            category = await catalog.create_category(tx, body.model_dump())
            out = CategoryOut.model_validate(category)
            await audit("category.create", "category", category.id, after=out)
    except Refusals as exc:
        return await category_page(who, who.error(exc))
    return redirect(who, f"{CONSOLE}/categories?done=category")


@router.post("/categories/{category_id}")
async def save_category(who: Writer, category_id: PathId) -> Response:
    fields = await posted(who)
    try:
        body = CategoryPatch.model_validate(category_fields(fields))
        async with who.acting() as (tx, audit):
            category = await catalog.get_category(tx, category_id)
            before = CategoryOut.model_validate(category)
            await catalog.change_category(tx, category, body.model_dump(exclude_unset=True))
            after = CategoryOut.model_validate(category)
            await audit("category.update", "category", category_id, before=before, after=after)
    except Refusals as exc:
        return await category_page(who, who.error(exc))
    return redirect(who, f"{CONSOLE}/categories?done=category")


@router.post("/categories/{category_id}/remove")
async def remove_category(who: Writer, category_id: PathId) -> Response:
    await posted(who)
    try:
        async with who.acting() as (tx, audit):
            category = await catalog.get_category(tx, category_id)
            before = CategoryOut.model_validate(category)
            await catalog.delete_category(tx, category)
            await audit("category.delete", "category", category_id, before=before)
    except Refusals as exc:
        return await category_page(who, who.error(exc))
    return redirect(who, f"{CONSOLE}/categories?done=category-removed")
