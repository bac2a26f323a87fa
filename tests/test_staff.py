"""Staff accounts from the command line, as an owner sets up the panel: `smm-panel staff
create` (a password from standard input, or an invitation mailed through the outbox to a
real SMTP server), `staff token` (an /admin/v1 token shown once, stored hashed), `staff
list|disable|enable`; the audit log names who acted and filters by staff member; and the
command's mistakes end in one line."""

from __future__ import annotations

import hashlib
import json
import subprocess
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from app import keyring
from app.context import AppContext
from app.customers.errors import InvalidToken
from app.mail.models import OutgoingMail
from app.rotation import rotate_secrets
from app.settings import Settings, new_secret
from app.staff import service as staff
from app.staff.models import StaffInvitation, StaffToken
from tests.support.cli import command_env, smm_panel_async
from tests.support.console import enrolled
from tests.support.env import AUTH, SECRET_KEY
from tests.support.mail import Mailbox

PASSWORD = "correct horse battery"


@pytest.fixture
def db_env(settings: Settings) -> dict[str, str]:
    return command_env(DATABASE_URL=settings.database_url or "")


def printed(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, (result.returncode, result.stdout, result.stderr)
    return json.loads(result.stdout)


def refused(result: subprocess.CompletedProcess[str], code: int) -> str:
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    return line


async def staff_command(env: dict[str, str], *args: str, stdin: str | None = None) -> Any:
    return printed(await smm_panel_async("staff", *args, env=env, stdin=stdin))


async def test_an_owner_made_on_the_command_line_runs_the_admin_api_with_a_token(
    client: httpx.AsyncClient, ctx: AppContext, db_env: dict[str, str]
) -> None:
    boss = await staff_command(
        db_env,
        "create",
        "--email",
        "Boss@Example.com",
        "--role",
        "owner",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    assert boss == {
        "id": boss["id"],
        "email": "boss@example.com",
        "role": "owner",
        "invitation": None,
    }
    issued = await staff_command(db_env, "token", "--email", "boss@example.com", "--name", "deploy")
    token = issued["token"]
    assert issued["staff_id"] == boss["id"] and token.startswith("stf_") and len(token) > 40
    async with ctx.db.session() as session:
        (row,) = (await session.scalars(select(StaffToken))).all()
        member = await staff.get_member(session, boss["id"])
    # Shown once, kept only as its digest (and a prefix to recognise it by).
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert (row.name, row.prefix) == ("deploy", token[:12])
    assert member.password_hash is not None and member.password_hash.startswith("$argon2id$")

    headers = {"Authorization": f"Bearer {token}"}
    listed = await client.get("/admin/v1/staff", headers=headers)
    assert listed.status_code == 200
    assert [(m["email"], m["role"], m["has_password"], m["two_factor"]) for m in listed.json()] == [
        ("boss@example.com", "owner", True, False)
    ]
    created = await client.post(
        "/admin/v1/staff", headers=headers, json={"email": "ann@example.com", "role": "support"}
    )
    assert created.status_code == 201, created.text
    await client.put("/admin/v1/storefront", headers=AUTH, json=STOREFRONT)

    # Who did what: the staff member (by id and email), the admin token, the command line.
    mine = (await client.get(f"/admin/v1/audit?staff_id={boss['id']}", headers=headers)).json()
    assert [(e["action"], e["actor"], e["staff_id"]) for e in mine] == [
        ("staff.create", "boss@example.com", boss["id"])
    ]
    everyone = (await client.get("/admin/v1/audit", headers=headers)).json()
    assert [(e["action"], e["actor"], e["staff_id"]) for e in everyone] == [
        ("storefront.update", "admin token", None),
        ("staff.create", "boss@example.com", boss["id"]),
        ("staff.token_issue", "cli", None),
        ("staff.create", "cli", None),
    ]
    by_cli = (await client.get("/admin/v1/audit?actor=cli", headers=headers)).json()
    assert [e["action"] for e in by_cli] == ["staff.token_issue", "staff.create"]
    assert all(token not in json.dumps(e) for e in everyone)


STOREFRONT = {"name": "Boost", "terms": None, "privacy_policy": None, "terms_of_use": None}


async def test_a_member_made_without_a_password_is_mailed_an_invitation(
    ctx: AppContext, settings: Settings, smtp_server: Mailbox
) -> None:
    smtp_server.received.clear()
    env = command_env(
        DATABASE_URL=settings.database_url or "",
        MAIL_URL=f"smtp://127.0.0.1:{smtp_server.port}",
        PUBLIC_URL="https://panel.example",
    )
    ann = await staff_command(
        env, "create", "--email", "ann@example.com", "--role", "support", "--language", "ru"
    )
    assert ann["invitation"] == "mailed"
    (mail,) = await smtp_server.wait_for("ann@example.com")
    assert mail.subject == "Ваша учётная запись сотрудника в панели"
    token = mail.token()
    assert f"https://panel.example/web/admin/invite?token={token}" in mail.body
    assert "https://panel.example/web/admin/login" in mail.body
    async with ctx.db.session() as session:
        (invitation,) = (await session.scalars(select(StaffInvitation))).all()
        outbox = (await session.scalars(select(OutgoingMail))).all()
    assert invitation.token_hash == hashlib.sha256(token.encode()).hexdigest()
    # Sent at once by the command (the outbox row is marked sent, its body dropped).
    assert [(m.recipient, m.sent_at is not None, m.body) for m in outbox] == [
        ("ann@example.com", True, "")
    ]
    # The link sets the password once.
    async with ctx.db.transaction() as session:
        member = await staff.accept_invitation(session, token, PASSWORD)
    assert member.password_hash is not None
    with pytest.raises(InvalidToken):
        async with ctx.db.transaction() as session:
            await staff.accept_invitation(session, token, "another password")


async def test_a_disabled_member_is_shut_out_until_enabled(
    client: httpx.AsyncClient, ctx: AppContext, db_env: dict[str, str]
) -> None:
    await staff_command(
        db_env,
        "create",
        "--email",
        "boss@example.com",
        "--role",
        "owner",
        "--password-stdin",
        stdin=PASSWORD,
    )
    await staff_command(
        db_env,
        "create",
        "--email",
        "sam@example.com",
        "--role",
        "support",
        "--password-stdin",
        stdin=PASSWORD,
    )
    token = (await staff_command(db_env, "token", "--email", "sam@example.com"))["token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/admin/v1/tickets", headers=headers)).status_code == 200

    disabled = await staff_command(db_env, "disable", "--email", "sam@example.com")
    assert disabled["disabled"] is True
    assert (await client.get("/admin/v1/tickets", headers=headers)).status_code == 401
    listed = await staff_command(db_env, "list")
    assert [(m["email"], m["role"], m["disabled"]) for m in listed] == [
        ("boss@example.com", "owner", False),
        ("sam@example.com", "support", True),
    ]
    await staff_command(db_env, "enable", "--email", "sam@example.com")
    assert (await client.get("/admin/v1/tickets", headers=headers)).status_code == 200


async def test_staff_command_mistakes_are_one_line(ctx: AppContext, db_env: dict[str, str]) -> None:
    create = ("staff", "create", "--email", "boss@example.com", "--role", "owner")
    await staff_command(db_env, *create[1:], "--password-stdin", stdin=PASSWORD)
    again = await smm_panel_async(*create, "--password-stdin", env=db_env, stdin=PASSWORD)
    assert refused(again, 1) == "smm-panel: error: A staff member with this email already exists"
    short = ("staff", "create", "--email", "x@example.com", "--role", "owner", "--password-stdin")
    weak = await smm_panel_async(*short, env=db_env, stdin="short\n")
    assert refused(weak, 1) == "smm-panel: error: Password must be 8 to 200 characters"
    empty = await smm_panel_async(*short, env=db_env, stdin="")
    assert refused(empty, 1) == "smm-panel: error: --password-stdin: no password on standard input"
    role = await smm_panel_async(
        "staff", "create", "--email", "x@example.com", "--role", "boss", env=db_env
    )
    assert refused(role, 2).startswith(
        "smm-panel staff create: error: argument --role: invalid choice: 'boss'"
    )
    nobody = await smm_panel_async("staff", "token", "--email", "nobody@example.com", env=db_env)
    assert refused(nobody, 1) == "smm-panel: error: Staff member not found"
    last = await smm_panel_async("staff", "disable", "--email", "boss@example.com", env=db_env)
    assert refused(last, 1) == (
        "smm-panel: error: The last active owner cannot be disabled or given another role"
    )


async def test_a_staff_second_factor_survives_the_secret_rotation(ctx: AppContext) -> None:
    member = await enrolled(ctx, "owner")
    new = new_secret()
    async with ctx.db.transaction() as session:
        report = await rotate_secrets(session, f"{new},{SECRET_KEY}")
    assert (report.reencrypted["staff.totp"], report.already_current["staff.totp"]) == (1, 0)
    async with ctx.db.session() as session:
        row = await staff.get_member(session, member.staff.id)
    assert row.totp_secret is not None
    assert keyring.is_current(new, staff.TOTP_PURPOSE, row.totp_secret)
    assert staff.totp_secret_of(new, row) == member.secret
