"""The operator API under /admin/v1: users, ledger, catalog, orders, refills, audit.

Every route needs the admin bearer token; every change writes an audit entry in the same
transaction as the change itself.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, status
from pydantic import BaseModel
from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts import service as accounts
from app.accounts.blocking import block_user
from app.accounts.models import USER_ACTIVE, User
from app.admin.auth import require_admin
from app.admin.problems import Problem, get_or_404, problem_from
from app.admin.schemas import (
    AdjustIn,
    AuditOut,
    BlockIn,
    BlockOut,
    CategoryIn,
    CategoryOut,
    CategoryPatch,
    EventOut,
    InvariantOut,
    KeyOut,
    LedgerEntryOut,
    MovementOut,
    OrderDetail,
    OrderOut,
    OrderStatusIn,
    RateIn,
    RateOut,
    RefillOut,
    RefillStatusIn,
    ServiceIn,
    ServiceOut,
    ServicePatch,
    TopupIn,
    UserCreated,
    UserIn,
    UserOut,
    UserPatch,
)
from app.audit.models import AuditEntry
from app.audit.service import record
from app.catalog.models import Category, Service, UserRate
from app.context import get_context
from app.db import utcnow
from app.errors import DomainError
from app.ledger import service as ledger
from app.ledger.models import LedgerEntry
from app.orders.models import Order, UpstreamEvent
from app.orders.service import StatusReport, apply_status
from app.referrals.service import reward_deposit
from app.refills.models import REFILL_ACTIVE, Refill

router = APIRouter(prefix="/admin/v1", dependencies=[Depends(require_admin)])
Operator = Annotated[str, Depends(require_admin)]
Limit = Annotated[int, Query(ge=1, le=1000, description="page size")]
MAX_ID = 2**63 - 1
PathId = Annotated[int, Path(ge=1, le=MAX_ID, description="id")]
QueryId = Annotated[int, Query(ge=1, le=MAX_ID)]
Offset = Annotated[int, Query(ge=0, description="rows to skip")]


NULLABLE_SERVICE_FIELDS = {
    "description",
    "link_pattern",
    "provider_id",
    "provider_service_id",
    "provider_rate",
}


async def live_user(session: AsyncSession, user_id: int) -> User:
    """The user, unless missing (404) or erased (409: nothing new may be attached)."""
    user: User = await get_or_404(session, User, user_id, "User")
    if user.deleted_at is not None:
        raise Problem(409, "This user's data was erased")
    return user


def snapshot(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json")


# Users ------------------------------------------------------------------------------------


@router.post(
    "/users",
    tags=["users"],
    summary="Create a user",
    description="Returns the user and an API key, shown this once (only its hash is stored).",
    status_code=status.HTTP_201_CREATED,
)
async def create_user(request: Request, body: UserIn, operator: Operator) -> UserCreated:
    async with get_context(request).db.transaction() as session:
        try:
            user = await accounts.create_user(
                session,
                email=body.email,
                name=body.name,
                currency=body.currency.upper(),
                credit_limit=body.credit_limit,
                referral_code=body.referral_code,
            )
        except DomainError as exc:
            raise problem_from(exc) from exc
        issued = await accounts.issue_key(session, user.id)
        if body.initial_balance > 0:
            movement = await ledger.credit(
                session,
                user_id=user.id,
                amount=body.initial_balance,
                kind="deposit",
                reason="Initial balance",
                operator=operator,
            )
            assert movement is not None
            await reward_deposit(
                session,
                share=get_context(request).settings.referral_share,
                user_id=user.id,
                deposit_entry_id=movement.entry_id,
                amount=body.initial_balance,
            )
        await session.refresh(user)
        out = UserOut.model_validate(user)
        await record(
            session,
            actor=operator,
            action="user.create",
            entity="user",
            entity_id=user.id,
            after=snapshot(out),
        )
        return UserCreated(**out.model_dump(), api_key=issued.key)


@router.get("/users", tags=["users"], summary="List users")
async def list_users(
    request: Request,
    limit: Limit = 100,
    offset: Offset = 0,
    status_filter: Annotated[str | None, Query(alias="status")] = None,
    email: str | None = None,
) -> list[UserOut]:
    stmt = select(User).order_by(User.id).limit(limit).offset(offset)
    if status_filter:
        stmt = stmt.where(User.status == status_filter)
    if email:
        stmt = stmt.where(User.email.ilike(f"%{email}%"))
    async with get_context(request).db.session() as session:
        return [UserOut.model_validate(u) for u in await session.scalars(stmt)]


@router.patch(
    "/users/{user_id}",
    tags=["users"],
    summary="Change a user's details, credit limit or discount",
    description="`discount_percent` lowers the rate of every service the user has no custom "
    "rate for, in `services` and in charges, from the next call on.",
)
async def patch_user(
    request: Request, user_id: PathId, body: UserPatch, operator: Operator
) -> UserOut:
    changes = body.model_dump(exclude_unset=True)
    if any(changes.get(name, "") is None for name in ("email", "credit_limit", "discount_percent")):
        raise Problem(422, "email, credit_limit and discount_percent cannot be null")
    async with get_context(request).db.transaction() as session:
        user = await live_user(session, user_id)
        before = UserOut.model_validate(user)
        if "email" in changes and changes["email"] != user.email:
            taken = await session.scalar(select(User.id).where(User.email == changes["email"]))
            if taken is not None:
                raise Problem(409, "A user with this email already exists")
        for name, value in changes.items():
            setattr(user, name, value)
        await session.flush()
        out = UserOut.model_validate(user)
        await record(
            session,
            actor=operator,
            action="user.update",
            entity="user",
            entity_id=user_id,
            before=snapshot(before),
            after=snapshot(out),
        )
        return out


@router.get("/users/{user_id}", tags=["users"], summary="Show a user")
async def get_user(request: Request, user_id: PathId) -> UserOut:
    async with get_context(request).db.session() as session:
        return UserOut.model_validate(await get_or_404(session, User, user_id, "User"))


async def _key_action(request: Request, user_id: int, operator: str, rotate: bool) -> KeyOut:
    async with get_context(request).db.transaction() as session:
        await live_user(session, user_id)
        issued = await (accounts.rotate_key if rotate else accounts.issue_key)(session, user_id)
        await record(
            session,
            actor=operator,
            action="user.key_rotate" if rotate else "user.key_issue",
            entity="user",
            entity_id=user_id,
            after={"prefix": issued.prefix},
        )
        return KeyOut(user_id=user_id, api_key=issued.key, prefix=issued.prefix)


@router.post(
    "/users/{user_id}/keys",
    tags=["users"],
    summary="Issue an extra API key",
    description="Earlier keys keep working. The key is shown this once.",
)
async def issue_key(request: Request, user_id: PathId, operator: Operator) -> KeyOut:
    return await _key_action(request, user_id, operator, rotate=False)


@router.post(
    "/users/{user_id}/keys/rotate",
    tags=["users"],
    summary="Rotate API keys",
    description="Revokes every key of the user and issues a new one, shown this once.",
)
async def rotate_key(request: Request, user_id: PathId, operator: Operator) -> KeyOut:
    return await _key_action(request, user_id, operator, rotate=True)


@router.post(
    "/users/{user_id}/topup",
    tags=["users"],
    summary="Top up a balance",
    description="With `payment_ref`, a replay of the same top-up credits nothing.",
)
async def topup(
    request: Request, user_id: PathId, body: TopupIn, operator: Operator
) -> MovementOut:
    async with get_context(request).db.transaction() as session:
        user = await live_user(session, user_id)
        movement = await ledger.credit(
            session,
            user_id=user_id,
            amount=body.amount,
            kind="deposit",
            reason=body.reason,
            payment_ref=body.payment_ref,
            operator=operator,
            idempotency_key=f"deposit:manual:{body.payment_ref}" if body.payment_ref else None,
        )
        if movement is None:
            await session.refresh(user)
            return MovementOut(user_id=user_id, balance=user.balance, duplicate=True)
        await reward_deposit(
            session,
            share=get_context(request).settings.referral_share,
            user_id=user_id,
            deposit_entry_id=movement.entry_id,
            amount=body.amount,
        )
        await record(
            session,
            actor=operator,
            action="user.topup",
            entity="user",
            entity_id=user_id,
            after=snapshot(body),
        )
        return MovementOut(user_id=user_id, balance=movement.balance_after)


@router.post(
    "/users/{user_id}/adjust",
    tags=["users"],
    summary="Adjust a balance",
    description="A signed correction with a reason; recorded as an adjustment entry.",
)
async def adjust(
    request: Request, user_id: PathId, body: AdjustIn, operator: Operator
) -> MovementOut:
    async with get_context(request).db.transaction() as session:
        await get_or_404(session, User, user_id, "User")
        try:
            movement = await ledger.adjust(
                session,
                user_id=user_id,
                amount=body.amount,
                kind="adjustment",
                reason=body.reason,
                operator=operator,
                allow_negative=body.allow_negative,
            )
        except DomainError as exc:
            raise problem_from(exc) from exc
        await record(
            session,
            actor=operator,
            action="user.adjust",
            entity="user",
            entity_id=user_id,
            after=snapshot(body),
        )
        return MovementOut(user_id=user_id, balance=movement.balance_after)


@router.post(
    "/users/{user_id}/block",
    tags=["users"],
    summary="Block an account",
    description="Keys stop working, active orders are canceled, the balance is "
    "forfeited with a ledger entry (chargeback, fraud).",
)
async def block(request: Request, user_id: PathId, body: BlockIn, operator: Operator) -> BlockOut:
    ctx = get_context(request)
    async with ctx.db.transaction() as session:
        before = UserOut.model_validate(await get_or_404(session, User, user_id, "User"))
        try:
            result = await block_user(session, user_id, operator=operator, reason=body.reason)
        except DomainError as exc:
            raise problem_from(exc) from exc
        out = BlockOut(
            user_id=user_id,
            withdrawn=result.withdrawn,
            cancel_requested=result.cancel_requested,
            forfeited=result.forfeited,
        )
        await record(
            session,
            actor=operator,
            action="user.block",
            entity="user",
            entity_id=user_id,
            before=snapshot(before),
            after={**snapshot(out), "reason": body.reason},
        )
    for order_id in result.cancel_requested:
        await ctx.jobs.relay_cancel(order_id)
    return out


@router.post(
    "/users/{user_id}/unblock",
    tags=["users"],
    summary="Unblock an account",
    description="Keys work again; forfeited money stays forfeited.",
)
async def unblock(request: Request, user_id: PathId, operator: Operator) -> UserOut:
    async with get_context(request).db.transaction() as session:
        user = await get_or_404(session, User, user_id, "User")
        before = UserOut.model_validate(user)
        user.status = USER_ACTIVE
        user.blocked_at = None
        await session.flush()
        out = UserOut.model_validate(user)
        await record(
            session,
            actor=operator,
            action="user.unblock",
            entity="user",
            entity_id=user_id,
            before=snapshot(before),
            after=snapshot(out),
        )
        return out


@router.get("/users/{user_id}/rates", tags=["users"], summary="Custom rates of a user")
async def list_rates(request: Request, user_id: PathId) -> list[RateOut]:
    async with get_context(request).db.session() as session:
        rows = await session.scalars(select(UserRate).where(UserRate.user_id == user_id))
        return [RateOut(user_id=r.user_id, service_id=r.service_id, rate=r.rate) for r in rows]


@router.put(
    "/users/{user_id}/rates/{service_id}",
    tags=["users"],
    summary="Set a custom rate",
    description="Shown by `services` and used for charges.",
)
async def set_rate(
    request: Request, user_id: PathId, service_id: PathId, body: RateIn, operator: Operator
) -> RateOut:
    async with get_context(request).db.transaction() as session:
        await get_or_404(session, User, user_id, "User")
        await get_or_404(session, Service, service_id, "Service")
        await session.execute(
            pg_insert(UserRate)
            .values(user_id=user_id, service_id=service_id, rate=body.rate)
            .on_conflict_do_update(
                index_elements=["user_id", "service_id"], set_={"rate": body.rate}
            )
        )
        out = RateOut(user_id=user_id, service_id=service_id, rate=body.rate)
        await record(
            session,
            actor=operator,
            action="rate.set",
            entity="user",
            entity_id=user_id,
            after=snapshot(out),
        )
        return out


@router.delete(
    "/users/{user_id}/rates/{service_id}",
    tags=["users"],
    summary="Remove a custom rate",
    status_code=status.HTTP_204_NO_CONTENT,
)
async def delete_rate(
    request: Request, user_id: PathId, service_id: PathId, operator: Operator
) -> None:
    async with get_context(request).db.transaction() as session:
        await session.execute(
            delete(UserRate).where(UserRate.user_id == user_id, UserRate.service_id == service_id)
        )
        await record(
            session,
            actor=operator,
            action="rate.delete",
            entity="user",
            entity_id=user_id,
            before={"service_id": service_id},
        )


# Ledger -----------------------------------------------------------------------------------


@router.get("/ledger", tags=["ledger"], summary="Ledger entries, newest first")
async def list_ledger(
    request: Request,
    limit: Limit = 100,
    offset: Offset = 0,
    user_id: QueryId | None = None,
    kind: str | None = None,
    order_id: QueryId | None = None,
) -> list[LedgerEntryOut]:
    stmt = select(LedgerEntry).order_by(LedgerEntry.id.desc()).limit(limit).offset(offset)
    if user_id is not None:
        stmt = stmt.where(LedgerEntry.user_id == user_id)
    if kind:
        stmt = stmt.where(LedgerEntry.kind == kind)
    if order_id is not None:
        stmt = stmt.where(LedgerEntry.order_id == order_id)
    async with get_context(request).db.session() as session:
        return [LedgerEntryOut.model_validate(e) for e in await session.scalars(stmt)]


@router.get(
    "/ledger/check",
    tags=["ledger"],
    summary="Check the ledger invariants",
    description="balance = sum of entries, balances above their floor, per-order "
    "charged − refunded ≥ 0 and matching the ledger. 200 with ok=false on violations.",
)
async def check_ledger(request: Request) -> InvariantOut:
    async with get_context(request).db.session() as session:
        report = await ledger.check_invariants(session)
    return InvariantOut(
        ok=report.ok,
        checked_users=report.checked_users,
        checked_orders=report.checked_orders,
        violations=report.violations,
    )


# Catalog ----------------------------------------------------------------------------------


@router.get("/categories", tags=["catalog"], summary="List categories")
async def list_categories(request: Request) -> list[CategoryOut]:
    async with get_context(request).db.session() as session:
        rows = await session.scalars(select(Category).order_by(Category.position, Category.id))
        return [CategoryOut.model_validate(c) for c in rows]


@router.post(
    "/categories",
    tags=["catalog"],
    summary="Create a category",
    status_code=status.HTTP_201_CREATED,
)
async def create_category(request: Request, body: CategoryIn, operator: Operator) -> CategoryOut:
    async with get_context(request).db.transaction() as session:
        category = Category(**body.model_dump())
        session.add(category)
        await session.flush()
        out = CategoryOut.model_validate(category)
        await record(
            session,
            actor=operator,
            action="category.create",
            entity="category",
            entity_id=category.id,
            after=snapshot(out),
        )
        return out


@router.get("/categories/{category_id}", tags=["catalog"], summary="Show a category")
async def get_category(request: Request, category_id: PathId) -> CategoryOut:
    async with get_context(request).db.session() as session:
        return CategoryOut.model_validate(
            await get_or_404(session, Category, category_id, "Category")
        )


@router.patch("/categories/{category_id}", tags=["catalog"], summary="Change a category")
async def patch_category(
    request: Request, category_id: PathId, body: CategoryPatch, operator: Operator
) -> CategoryOut:
    async with get_context(request).db.transaction() as session:
        category = await get_or_404(session, Category, category_id, "Category")
        before = CategoryOut.model_validate(category)
        for name, value in body.model_dump(exclude_unset=True, exclude_none=True).items():
            setattr(category, name, value)
        await session.flush()
        out = CategoryOut.model_validate(category)
        await record(
            session,
            actor=operator,
            action="category.update",
            entity="category",
            entity_id=category_id,
            before=snapshot(before),
            after=snapshot(out),
        )
        return out


@router.delete(
    "/categories/{category_id}",
    tags=["catalog"],
    summary="Delete an empty category",
    status_code=status.HTTP_204_NO_CONTENT,
)
async def delete_category(request: Request, category_id: PathId, operator: Operator) -> None:
    async with get_context(request).db.transaction() as session:
        category = await get_or_404(session, Category, category_id, "Category")
        used = await session.scalar(
            select(func.count(Service.id)).where(Service.category_id == category_id)
        )
        if used:
            raise Problem(409, "Category still has services")
        before = CategoryOut.model_validate(category)
        await session.delete(category)
        await record(
            session,
            actor=operator,
            action="category.delete",
            entity="category",
            entity_id=category_id,
            before=snapshot(before),
        )


@router.get("/services", tags=["catalog"], summary="List services (deleted ones included)")
async def list_services(
    request: Request,
    limit: Limit = 500,
    offset: Offset = 0,
    category_id: int | None = None,
    provider_id: int | None = None,
) -> list[ServiceOut]:
    stmt = select(Service).order_by(Service.id).limit(limit).offset(offset)
    if category_id is not None:
        stmt = stmt.where(Service.category_id == category_id)
    if provider_id is not None:
        stmt = stmt.where(Service.provider_id == provider_id)
    async with get_context(request).db.session() as session:
        return [ServiceOut.model_validate(s) for s in await session.scalars(stmt)]


@router.post(
    "/services", tags=["catalog"], summary="Create a service", status_code=status.HTTP_201_CREATED
)
async def create_service(request: Request, body: ServiceIn, operator: Operator) -> ServiceOut:
    async with get_context(request).db.transaction() as session:
        await get_or_404(session, Category, body.category_id, "Category")
        service = Service(**body.model_dump(exclude_none=True))
        session.add(service)
        await session.flush()
        await session.refresh(service)
        out = ServiceOut.model_validate(service)
        await record(
            session,
            actor=operator,
            action="service.create",
            entity="service",
            entity_id=service.id,
            after=snapshot(out),
        )
        return out


@router.get("/services/{service_id}", tags=["catalog"], summary="Show a service")
async def get_service(request: Request, service_id: PathId) -> ServiceOut:
    async with get_context(request).db.session() as session:
        return ServiceOut.model_validate(await get_or_404(session, Service, service_id, "Service"))


@router.patch(
    "/services/{service_id}",
    tags=["catalog"],
    summary="Change a service",
    description="Existing orders keep the terms they were placed with.",
)
async def patch_service(
    request: Request, service_id: PathId, body: ServicePatch, operator: Operator
) -> ServiceOut:
    async with get_context(request).db.transaction() as session:
        service = await get_or_404(session, Service, service_id, "Service")
        before = ServiceOut.model_validate(service)
        for name, value in body.model_dump(exclude_unset=True).items():
            if value is None and name not in NULLABLE_SERVICE_FIELDS:
                continue  # null cannot clear a required field: leave it as it is
            setattr(service, name, value)
        if service.min_quantity > service.max_quantity:
            raise Problem(422, "min_quantity must not exceed max_quantity")
        await session.flush()
        await session.refresh(service)
        out = ServiceOut.model_validate(service)
        await record(
            session,
            actor=operator,
            action="service.update",
            entity="service",
            entity_id=service_id,
            before=snapshot(before),
            after=snapshot(out),
        )
        return out


@router.delete(
    "/services/{service_id}",
    tags=["catalog"],
    summary="Remove a service",
    description="Soft delete: it disappears from `services` and refuses new "
    "orders; existing orders continue.",
)
async def delete_service(request: Request, service_id: PathId, operator: Operator) -> ServiceOut:
    async with get_context(request).db.transaction() as session:
        service = await get_or_404(session, Service, service_id, "Service")
        before = ServiceOut.model_validate(service)
        service.enabled = False
        service.deleted_at = utcnow()
        await session.flush()
        await session.refresh(service)
        out = ServiceOut.model_validate(service)
        await record(
            session,
            actor=operator,
            action="service.delete",
            entity="service",
            entity_id=service_id,
            before=snapshot(before),
            after=snapshot(out),
        )
        return out


# Orders -----------------------------------------------------------------------------------


@router.get("/orders", tags=["orders"], summary="Search orders, newest first")
async def list_orders(
    request: Request,
    limit: Limit = 100,
    offset: Offset = 0,
    user_id: QueryId | None = None,
    service_id: QueryId | None = None,
    status_filter: Annotated[str | None, Query(alias="status")] = None,
    upstream_state: str | None = None,
    link: Annotated[str | None, Query(description="part of the link")] = None,
    created_from: datetime | None = None,
    created_to: datetime | None = None,
) -> list[OrderOut]:
    stmt = select(Order).order_by(Order.id.desc()).limit(limit).offset(offset)
    filters = {
        Order.user_id: user_id,
        Order.service_id: service_id,
        Order.status: status_filter,
        Order.upstream_state: upstream_state,
    }
    for column, value in filters.items():
        if value is not None:
            stmt = stmt.where(column == value)
    if link:
        stmt = stmt.where(Order.link.contains(link, autoescape=True))
    if created_from is not None:
        stmt = stmt.where(Order.created_at >= created_from)
    if created_to is not None:
        stmt = stmt.where(Order.created_at < created_to)
    async with get_context(request).db.session() as session:
        return [OrderOut.model_validate(o) for o in await session.scalars(stmt)]


async def _detail(session: AsyncSession, order_id: PathId) -> OrderDetail:
    order = await get_or_404(session, Order, order_id, "Order")
    events = await session.scalars(
        select(UpstreamEvent).where(UpstreamEvent.order_id == order_id).order_by(UpstreamEvent.id)
    )
    runs = list(
        await session.scalars(select(Order).where(Order.parent_id == order_id).order_by(Order.id))
    )
    family = [order_id, *(r.id for r in runs)]
    entries = await session.scalars(
        select(LedgerEntry).where(LedgerEntry.order_id.in_(family)).order_by(LedgerEntry.id)
    )
    return OrderDetail(
        **OrderOut.model_validate(order).model_dump(),
        params=order.params,
        upstream_history=[EventOut.model_validate(e) for e in events],
        ledger=[LedgerEntryOut.model_validate(e) for e in entries],
        runs_of=[OrderOut.model_validate(r) for r in runs],
    )


@router.get(
    "/orders/{order_id}",
    tags=["orders"],
    summary="Order detail",
    description="With its upstream history, its ledger entries and drip-feed runs.",
)
async def get_order(request: Request, order_id: PathId) -> OrderDetail:
    async with get_context(request).db.session() as session:
        return await _detail(session, order_id)


@router.post(
    "/orders/{order_id}/status",
    tags=["orders"],
    summary="Set an order's status",
    description="For orders fulfilled by hand. Partial and Canceled refund by rule, "
    "exactly once; a final order does not move.",
)
async def set_order_status(
    request: Request, order_id: PathId, body: OrderStatusIn, operator: Operator
) -> OrderDetail:
    async with get_context(request).db.transaction() as session:
        before = OrderOut.model_validate(await get_or_404(session, Order, order_id, "Order"))
        changed = await apply_status(
            session,
            order_id,
            StatusReport(body.status, body.start_count, body.remains),
            source=f"operator:{operator}",
        )
        detail = await _detail(session, order_id)
        if changed:
            await record(
                session,
                actor=operator,
                action="order.status",
                entity="order",
                entity_id=order_id,
                before=snapshot(before),
                after=snapshot(
                    OrderOut(
                        **detail.model_dump(
                            exclude={"params", "upstream_history", "ledger", "runs_of"}
                        )
                    )
                ),
            )
        return detail


# Refills ----------------------------------------------------------------------------------


@router.get("/refills", tags=["refills"], summary="List refills, newest first")
async def list_refills(
    request: Request,
    limit: Limit = 100,
    offset: Offset = 0,
    user_id: QueryId | None = None,
    status_filter: Annotated[str | None, Query(alias="status")] = None,
) -> list[RefillOut]:
    stmt = select(Refill).order_by(Refill.id.desc()).limit(limit).offset(offset)
    if user_id is not None:
        stmt = stmt.where(Refill.user_id == user_id)
    if status_filter:
        stmt = stmt.where(Refill.status == status_filter)
    async with get_context(request).db.session() as session:
        return [RefillOut.model_validate(r) for r in await session.scalars(stmt)]


@router.post(
    "/refills/{refill_id}/status",
    tags=["refills"],
    summary="Set a refill's status",
    description="For refills handled by hand; a finished refill does not move.",
)
async def set_refill_status(
    request: Request, refill_id: PathId, body: RefillStatusIn, operator: Operator
) -> RefillOut:
    async with get_context(request).db.transaction() as session:
        refill = await get_or_404(session, Refill, refill_id, "Refill")
        if refill.status not in REFILL_ACTIVE:
            raise Problem(409, "Refill already finished")
        before = RefillOut.model_validate(refill)
        refill.status = body.status
        await session.flush()
        out = RefillOut.model_validate(refill)
        await record(
            session,
            actor=operator,
            action="refill.status",
            entity="refill",
            entity_id=refill_id,
            before=snapshot(before),
            after=snapshot(out),
        )
        return out


# Audit ------------------------------------------------------------------------------------


@router.get("/audit", tags=["audit"], summary="The audit log, newest first")
async def list_audit(
    request: Request,
    limit: Limit = 100,
    offset: Offset = 0,
    entity: str | None = None,
    entity_id: str | None = None,
) -> list[AuditOut]:
    stmt = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit).offset(offset)
    if entity:
        stmt = stmt.where(AuditEntry.entity == entity)
    if entity_id:
        stmt = stmt.where(AuditEntry.entity_id == entity_id)
    async with get_context(request).db.session() as session:
        return [AuditOut.model_validate(a) for a in await session.scalars(stmt)]
