"""The demo catalog and demo user that `smm-panel run` sets up (idempotent)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts import service as accounts
from app.accounts.models import User
from app.catalog.models import Category, Service
from app.ledger import service as ledger

DEMO_EMAIL = "demo@smm-panel.local"


def _typed(
    name: str, type_name: str, rate: str, low: int, high: int, upstream_id: str
) -> dict[str, Any]:
    return dict(
        name=name,
        type=type_name,
        rate=rate,
        min_quantity=low,
        max_quantity=high,
        cancel=True,
        provider_service_id=upstream_id,
    )


DEMO_CATALOG: list[tuple[str, list[dict[str, Any]]]] = [
    (
        "Instagram",
        [
            dict(
                name="Instagram Followers",
                rate="0.90",
                min_quantity=50,
                max_quantity=10000,
                refill=True,
                refill_days=30,
                cancel=True,
                dripfeed=True,
                provider_service_id="1",
            ),
            dict(
                name="Instagram Likes",
                rate="0.30",
                min_quantity=20,
                max_quantity=50000,
                cancel=True,
                provider_service_id="2",
            ),
        ],
    ),
    (
        "YouTube",
        [
            dict(
                name="YouTube Views",
                rate="1.20",
                min_quantity=100,
                max_quantity=1000000,
                refill=True,
                refill_days=30,
                provider_service_id="3",
            ),
            dict(
                name="YouTube Channel Package",
                type="Package",
                rate="4.99",
                min_quantity=1,
                max_quantity=1,
                provider_service_id="4",
            ),
        ],
    ),
    # One service of every other type, so each `add` example of /docs runs as it stands.
    # Listed after the first four in the sandbox's id order: on a fresh database the panel's
    # service ids equal the sandbox's (1-16), the ids the examples use.
    (
        "Instagram Comments & Mentions",
        [
            _typed("Instagram Custom Comments", "Custom Comments", "20", 1, 1000, "5"),
            _typed("Instagram Comments Package", "Custom Comments Package", "10", 1, 1, "6"),
            _typed(
                "Instagram Mentions with Hashtags", "Mentions with Hashtags", "4", 100, 10000, "7"
            ),
            _typed("Instagram Mentions Custom List", "Mentions Custom List", "6", 1, 1000, "8"),
            _typed("Instagram Mentions Hashtag", "Mentions Hashtag", "4", 100, 10000, "9"),
            _typed(
                "Instagram Mentions User Followers",
                "Mentions User Followers",
                "4",
                100,
                10000,
                "10",
            ),
            _typed(
                "Instagram Mentions Media Likers", "Mentions Media Likers", "4", 100, 10000, "11"
            ),
            _typed("Instagram Comment Likes", "Comment Likes", "2", 10, 10000, "12"),
        ],
    ),
    ("Twitter", [_typed("Twitter Poll Votes", "Poll", "2", 10, 10000, "13")]),
    (
        "Telegram",
        [_typed("Telegram Invites from Groups", "Invites from Groups", "8", 10, 10000, "14")],
    ),
    ("Instagram Auto", [_typed("Instagram Auto Likes", "Subscriptions", "0.40", 50, 10000, "15")]),
    ("Traffic", [_typed("Website Traffic", "Web Traffic", "0.20", 100, 1000000, "16")]),
]


async def seed_catalog(session: AsyncSession, provider_id: int | None = None) -> None:
    """Create the demo categories and services once."""
    if await session.scalar(select(Service.id).limit(1)) is not None:
        return
    for position, (category_name, services) in enumerate(DEMO_CATALOG):
        category = Category(name=category_name, position=position)
        session.add(category)
        await session.flush()
        for index, spec in enumerate(services):
            values = dict(spec)
            values["rate"] = Decimal(values["rate"])
            if provider_id is None:
                values.pop("provider_service_id", None)
            else:
                values["provider_id"] = provider_id
                values["provider_rate"] = values["rate"] * Decimal("0.5")
            session.add(Service(category_id=category.id, position=index, **values))
    await session.flush()


async def ensure_demo_user(session: AsyncSession, balance: Decimal) -> tuple[int, str]:
    """The demo user (created with `balance` the first time) and a freshly rotated key:
    keys are stored only as hashes, so a new one is issued to be shown."""
    user_id = await session.scalar(select(User.id).where(User.email == DEMO_EMAIL))
    if user_id is None:
        user = await accounts.create_user(session, email=DEMO_EMAIL, name="Demo reseller")
        user_id = user.id
        if balance > 0:
            await ledger.credit(
                session,
                user_id=user_id,
                amount=balance,
                kind="deposit",
                reason="Demo balance",
                idempotency_key=f"deposit:demo:{user_id}",
            )
    issued = await accounts.rotate_key(session, user_id)
    return user_id, issued.key
