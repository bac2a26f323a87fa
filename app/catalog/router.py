"""Operator endpoints of the catalog: categories, services and per-user custom rates."""

from __future__ import annotations

from fastapi import APIRouter, status

from app.accounts import service as accounts
from app.catalog import service as catalog
from app.catalog import upstream
from app.catalog.schemas import (
    BackupOut,
    BackupsIn,
    CategoryIn,
    CategoryOut,
    CategoryPatch,
    RateIn,
    RateOut,
    ServiceIn,
    ServiceOut,
)
from app.http.audit import Audit
from app.http.auth import require
from app.http.paths import Limit, Offset, PathId
from app.http.tx import Reader, Tx

admin_router = APIRouter(tags=["catalog"])


# Custom rates -----------------------------------------------------------------------------


@admin_router.get(
    "/users/{user_id}/rates",
    dependencies=[require("users:read")],
    tags=["users"],
    summary="Custom rates of a user",
)
async def list_rates(session: Reader, user_id: PathId) -> list[RateOut]:
    rows = await catalog.user_rates(session, user_id)
    return [RateOut(user_id=r.user_id, service_id=r.service_id, rate=r.rate) for r in rows]


@admin_router.put(
    "/users/{user_id}/rates/{service_id}",
    dependencies=[require("users:write")],
    tags=["users"],
    summary="Set a custom rate",
    description="Shown by `services` and used for charges.",
)
async def set_rate(
    tx: Tx, audit: Audit, user_id: PathId, service_id: PathId, body: RateIn
) -> RateOut:
    await accounts.get_user(tx, user_id)
    await catalog.set_user_rate(tx, user_id, service_id, body.rate)
    out = RateOut(user_id=user_id, service_id=service_id, rate=body.rate)
    await audit("rate.set", "user", user_id, after=out)
    return out


@admin_router.delete(
    "/users/{user_id}/rates/{service_id}",
    dependencies=[require("users:write")],
    tags=["users"],
    summary="Remove a custom rate",
    status_code=status.HTTP_204_NO_CONTENT,
)
async def delete_rate(tx: Tx, audit: Audit, user_id: PathId, service_id: PathId) -> None:
    await catalog.remove_user_rate(tx, user_id, service_id)
    await audit("rate.delete", "user", user_id, before={"service_id": service_id})


# Categories -------------------------------------------------------------------------------


@admin_router.get("/categories", dependencies=[require("catalog:read")], summary="List categories")
async def list_categories(session: Reader) -> list[CategoryOut]:
    return [CategoryOut.model_validate(c) for c in await catalog.list_categories(session)]


@admin_router.post(
    "/categories",
    dependencies=[require("catalog:write")],
    summary="Create a category",
    status_code=status.HTTP_201_CREATED,
)
async def create_category(tx: Tx, audit: Audit, body: CategoryIn) -> CategoryOut:
    category = await catalog.create_category(tx, body.model_dump())
    out = CategoryOut.model_validate(category)
    await audit("category.create", "category", category.id, after=out)
    return out


@admin_router.get(
    "/categories/{category_id}", dependencies=[require("catalog:read")], summary="Show a category"
)
async def get_category(session: Reader, category_id: PathId) -> CategoryOut:
    return CategoryOut.model_validate(await catalog.get_category(session, category_id))


@admin_router.patch(
    "/categories/{category_id}",
    dependencies=[require("catalog:write")],
    summary="Change a category",
)
async def patch_category(
    tx: Tx, audit: Audit, category_id: PathId, body: CategoryPatch
) -> CategoryOut:
    category = await catalog.get_category(tx, category_id)
    before = CategoryOut.model_validate(category)
    await catalog.change_category(tx, category, body.model_dump(exclude_unset=True))
    out = CategoryOut.model_validate(category)
    await audit("category.update", "category", category_id, before=before, after=out)
    return out


@admin_router.delete(
    "/categories/{category_id}",
    dependencies=[require("catalog:write")],
    summary="Delete an empty category",
    status_code=status.HTTP_204_NO_CONTENT,
)
async def delete_category(tx: Tx, audit: Audit, category_id: PathId) -> None:
    category = await catalog.get_category(tx, category_id)
    before = CategoryOut.model_validate(category)
    await catalog.delete_category(tx, category)
    await audit("category.delete", "category", category_id, before=before)


# Services ---------------------------------------------------------------------------------


@admin_router.get(
    "/services",
    dependencies=[require("catalog:read")],
    summary="List services (deleted ones included)",
)
async def list_services(
    session: Reader,
    limit: Limit = 500,
    offset: Offset = 0,
    category_id: int | None = None,
    provider_id: int | None = None,
) -> list[ServiceOut]:
    where = catalog.ServiceSearch(category_id=category_id, provider_id=provider_id)
    found = await catalog.search_services(session, where, limit=limit, offset=offset)
    return [ServiceOut.model_validate(s) for s in found]


@admin_router.post(
    "/services",
    dependencies=[require("catalog:write")],
    summary="Create a service",
    status_code=status.HTTP_201_CREATED,
)
async def create_service(tx: Tx, audit: Audit, body: ServiceIn) -> ServiceOut:
    service = await catalog.create_service(tx, body.model_dump())
    out = ServiceOut.model_validate(service)
    await audit("service.create", "service", service.id, after=out)
    return out


@admin_router.get(
    "/services/{service_id}", dependencies=[require("catalog:read")], summary="Show a service"
)
async def get_service(session: Reader, service_id: PathId) -> ServiceOut:
    return ServiceOut.model_validate(await catalog.get_service(session, service_id))


@admin_router.delete(
    "/services/{service_id}",
    dependencies=[require("catalog:write")],
    summary="Remove a service",
    description="Soft delete: it disappears from `services` and refuses new "
    "orders; existing orders continue.",
)
async def delete_service(tx: Tx, audit: Audit, service_id: PathId) -> ServiceOut:
    service = await catalog.get_service(tx, service_id)
    before = ServiceOut.model_validate(service)
    out = ServiceOut.model_validate(await catalog.remove_service(tx, service))
    await audit("service.delete", "service", service_id, before=before, after=out)
    return out


@admin_router.get(
    "/services/{service_id}/backups",
    dependencies=[require("catalog:read")],
    summary="Backup providers of a service",
)
async def list_backups(session: Reader, service_id: PathId) -> list[BackupOut]:
    await catalog.get_service(session, service_id)
    return [BackupOut.model_validate(b) for b in await upstream.backups_of(session, service_id)]


@admin_router.put(
    "/services/{service_id}/backups",
    dependencies=[require("catalog:write")],
    summary="Set the backup providers of a service",
    description=(
        "Tried in this order when the provider before them refuses an order for good "
        "before accepting it (service removed upstream, `Not enough funds`, a permanent "
        "error). An unknown outcome never fails over. `provider_rate` is the backup's cost, "
        "for the margin report."
    ),
)
async def put_backups(tx: Tx, audit: Audit, service_id: PathId, body: BackupsIn) -> list[BackupOut]:
    service = await catalog.get_service(tx, service_id)
    before = [BackupOut.model_validate(b) for b in await upstream.backups_of(tx, service_id)]
    rows = await upstream.set_backups(
        tx,
        service,
        [
            upstream.Backup(b.provider_id, b.provider_service_id, b.provider_rate)
            for b in body.backups
        ],
    )
    for row in rows:
        await tx.refresh(row)  # as stored (money at its column's scale)
    out = [BackupOut.model_validate(b) for b in rows]
    await audit(
        "service.backups",
        "service",
        service_id,
        before={"backups": [b.model_dump(mode="json") for b in before]},
        after={"backups": [b.model_dump(mode="json") for b in out]},
    )
    return out


@admin_router.post(
    "/services/{service_id}/confirm-type",
    dependencies=[require("catalog:write")],
    summary="Confirm the type the provider changed to",
    description=(
        "The catalog sync disables a service whose type changed upstream (its order fields "
        "change with it); this accepts the new type and puts the service back on sale."
    ),
)
async def confirm_type(tx: Tx, audit: Audit, service_id: PathId) -> ServiceOut:
    service = await catalog.get_service(tx, service_id)
    before = ServiceOut.model_validate(service)
    await upstream.confirm_type(tx, service)
    await tx.refresh(service)
    out = ServiceOut.model_validate(service)
    await audit("service.confirm_type", "service", service_id, before=before, after=out)
    return out
