"""`smm-panel rotate-secret`: every stored secret re-encrypted under the current SECRET_KEY.

Each kind of secret at rest is one `StoredSecret` in `STORED_SECRETS` (its column and the
keyring purpose it was written with); a new kind (webhook signing secrets, 2FA seeds) plugs
in with one more entry. The whole rotation is one transaction with one audit entry, so it
either re-encrypts everything or nothing; a row that no key of the ring opens stops it
before anything is written (the operator forgot an old key in SECRET_KEY_PREVIOUS).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cryptography.fernet import InvalidToken
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from app import keyring
from app.audit import service as audit
from app.customers import service as customers
from app.customers.models import CustomerLogin
from app.providers import crypto as provider_crypto
from app.providers.models import WEBHOOK_PURPOSE, Provider
from app.staff import service as staff
from app.staff.models import StaffMember
from app.webhooks import service as webhooks
from app.webhooks.models import WebhookEndpoint


@dataclass(frozen=True)
class StoredSecret:
    kind: str
    id_column: InstrumentedAttribute[Any]
    column: InstrumentedAttribute[Any]
    purpose: str


STORED_SECRETS: tuple[StoredSecret, ...] = (
    StoredSecret(
        "provider.api_key", Provider.id, Provider.api_key_encrypted, provider_crypto.PURPOSE
    ),
    StoredSecret(
        "customer.totp", CustomerLogin.user_id, CustomerLogin.totp_secret, customers.TOTP_PURPOSE
    ),
    StoredSecret("staff.totp", StaffMember.id, StaffMember.totp_secret, staff.TOTP_PURPOSE),
    StoredSecret(
        "provider.webhook_secret",
        Provider.id,
        Provider.webhook_secret_encrypted,
        WEBHOOK_PURPOSE,
    ),
    StoredSecret(
        "webhook.secret",
        WebhookEndpoint.user_id,
        WebhookEndpoint.secret_encrypted,
        webhooks.PURPOSE,
    ),
)


class UnreadableSecret(Exception):
    def __init__(self, kind: str, row_id: object) -> None:
        super().__init__(
            f"{kind} of id {row_id} opens with none of the configured keys "
            "(is the old key in SECRET_KEY_PREVIOUS?)"
        )


@dataclass
class RotationReport:
    reencrypted: dict[str, int]
    already_current: dict[str, int]


async def rotate_secrets(
    session: AsyncSession,
    secret_keyring: str,
    *,
    actor: str = "cli",
    stored: tuple[StoredSecret, ...] = STORED_SECRETS,
) -> RotationReport:
    report = RotationReport({}, {})
    for item in stored:
        rows = (
            await session.execute(
                select(item.id_column, item.column)
                .where(item.column.is_not(None))
                .with_for_update()
            )
        ).all()
        changed = current = 0
        for row_id, token in rows:
            if keyring.is_current(secret_keyring, item.purpose, token):
                current += 1
                continue
            try:
                fresh = keyring.reencrypt(secret_keyring, item.purpose, token)
            except InvalidToken:
                raise UnreadableSecret(item.kind, row_id) from None
            await session.execute(
                update(item.id_column.class_)
                .where(item.id_column == row_id)
                .values({item.column.key: fresh})
            )
            changed += 1
        report.reencrypted[item.kind] = changed
        report.already_current[item.kind] = current
    await audit.record(
        session,
        actor=actor,
        action="secrets.rotate",
        entity="secrets",
        after={"reencrypted": report.reencrypted, "already_current": report.already_current},
    )
    return report
