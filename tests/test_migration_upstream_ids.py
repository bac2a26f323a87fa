"""The migration that makes an upstream order id name one order of its provider, on a
database where some orders already share one: it settles them, then the index holds."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal

import asyncpg
import pytest
from alembic import command
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from app.accounts import service as accounts
from app.alerts.models import Alert
from app.catalog.models import Category, Service
from app.db import Database
from app.migrate import alembic_config
from app.orders.models import Order, UpstreamEvent
from app.providers.service import create_provider
from tests.support.cli import plain_url
from tests.support.env import BASE_DB, SECRET_KEY

BEFORE = "a34d523aaf04"  # the revision before the unique index


@pytest.fixture
async def old_database() -> AsyncIterator[str]:
    """A fresh database migrated up to the revision before the index; dropped after."""
    name = f"smm_scratch_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(plain_url(BASE_DB))
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    url = plain_url(BASE_DB).rsplit("/", 1)[0] + "/" + name
    try:
        await asyncio.to_thread(command.upgrade, alembic_config(url), BEFORE)
        yield url
    finally:
        admin = await asyncpg.connect(plain_url(BASE_DB))
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def an_order(user_id: int, service_id: int, provider_id: int, n: int, **values: object) -> Order:
    columns: dict[str, object] = {
        "user_id": user_id,
        "service_id": service_id,
        "type": "Default",
        "link": f"https://x.y/{n}",
        "link_normalized": f"https://x.y/{n}",
        "quantity": 100,
        "rate": Decimal("0.9"),
        "charge": Decimal("0.09"),
        "status": "In progress",
        "upstream_state": "sent",
        "provider_id": provider_id,
        "provider_service_id": "1",
    }
    columns.update(values)
    return Order(**columns)


async def test_orders_already_sharing_an_upstream_id_are_settled_then_refused(
    old_database: str,
) -> None:
    db = Database(old_database, pool_size=1, max_overflow=0, listen=False)
    try:
        async with db.transaction() as session:
            user = await accounts.create_user(session, email="m@example.com")
            provider = await create_provider(
                session, secret=SECRET_KEY, name="P", url="http://127.0.0.1:9/api/v2", api_key="k"
            )
            other = await create_provider(
                session, secret=SECRET_KEY, name="Q", url="http://127.0.0.1:9/api/v2", api_key="k"
            )
            category = Category(name="C")
            session.add(category)
            await session.flush()
            # Only the columns the old schema has (columns added later are left out).
            service_id = await session.scalar(
                insert(Service)
                .values(
                    category_id=category.id,
                    name="S",
                    type="Default",
                    rate=Decimal("0.9"),
                    min_quantity=10,
                    max_quantity=1000,
                )
                .returning(Service.id)
            )
            assert service_id is not None
            rows = [
                an_order(user.id, service_id, provider.id, 0, provider_order_id="7"),
                an_order(user.id, service_id, provider.id, 1, provider_order_id="7"),
                an_order(
                    user.id, service_id, provider.id, 2, provider_order_id="7", status="Completed"
                ),
                an_order(user.id, service_id, other.id, 3, provider_order_id="7"),
                an_order(user.id, service_id, provider.id, 4, provider_order_id="8"),
            ]
            session.add_all(rows)
            await session.flush()
            ids = [o.id for o in rows]
        await asyncio.to_thread(command.upgrade, alembic_config(old_database), "head")

        async with db.session() as session:
            orders = {o.id: o for o in await session.scalars(select(Order))}
            events = (
                await session.execute(
                    select(UpstreamEvent.order_id, UpstreamEvent.outcome, UpstreamEvent.detail)
                )
            ).all()
            alerts = (await session.execute(select(Alert.kind, Alert.subject_id))).all()
        seen = [
            (orders[i].provider_order_id, orders[i].upstream_state, orders[i].status) for i in ids
        ]
        assert seen == [
            ("7", "sent", "In progress"),  # the first keeps it
            (None, "review", "In progress"),  # held for the operator
            (None, "sent", "Completed"),  # finished: keeps its state
            ("7", "sent", "In progress"),  # another provider's 7
            ("8", "sent", "In progress"),
        ]
        flag = [{"kind": "duplicate_order_id", "field": "order", "value": "7"}]
        assert [i for i in ids if orders[i].anomaly is not None] == ids[1:3]
        assert {str(orders[i].anomaly) for i in ids[1:3]} == {str(flag)}
        assert orders[ids[1]].last_error == f"provider order id 7 already belongs to order {ids[0]}"
        assert sorted((e.order_id, e.outcome, e.detail["bound_to"]) for e in events) == [
            (ids[1], "anomaly", ids[0]),
            (ids[2], "anomaly", ids[0]),
        ]
        assert sorted(alerts) == [("order_anomaly", ids[1]), ("order_anomaly", ids[2])]
        # From now on the database refuses a second order on one upstream id.
        with pytest.raises(IntegrityError):
            async with db.transaction() as session:
                session.add(an_order(user.id, service_id, provider.id, 5, provider_order_id="8"))
    finally:
        await db.dispose()
