"""Production you can trust: no start on weak secrets, key rotation, the embedded default's
kept secrets, readiness against the schema, and a backup that restores and checks clean."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import psutil
import pytest
from sqlalchemy import select

from app import keyring, migrate
from app.audit.models import AuditEntry
from app.context import AppContext
from app.embedded import EXTRA_HINT, free_port, kept_secret
from app.main import create_app
from app.providers import crypto
from app.providers.models import WEBHOOK_PURPOSE, Provider
from app.providers.service import create_provider
from app.rotation import UnreadableSecret, rotate_secrets
from app.settings import Settings, new_secret, weak_secret
from app.webhooks import service as webhooks
from app.webhooks.models import WebhookEndpoint
from tests.support.api import Api, MakeService, MakeUser
from tests.support.cli import ROOT, command_env, plain_url, run_tool, smm_panel, smm_panel_async
from tests.support.env import AUTH, BASE_DB, SECRET_KEY

STRONG = "k" * 20 + "-strong-enough-0123456789"
LINK = "https://instagram.com/backup"


def _one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("smm-panel: error: ")
    return lines[0]


@pytest.mark.parametrize(
    ("secret_key", "admin_token", "message"),
    [
        (None, None, "SECRET_KEY is not set (generate one with `smm-panel secret`)"),
        ("change-me-in-production", None, "SECRET_KEY is a known placeholder"),
        ("change-me", STRONG, "SECRET_KEY is a known placeholder"),
        ("short-secret-0123456789", None, "SECRET_KEY is shorter than 32 characters"),
        (STRONG, "change-me", "ADMIN_TOKEN is a known placeholder"),
        (STRONG, "tiny-token", "ADMIN_TOKEN is shorter than 32 characters"),
    ],
)
@pytest.mark.parametrize("command", ["serve", "worker", "migrate"])
def test_weak_secrets_refuse_to_start(
    command: str, secret_key: str | None, admin_token: str | None, message: str
) -> None:
    env = command_env(
        DATABASE_URL="postgresql+asyncpg://postgres@127.0.0.1:9/never", REDIS_URL="redis://x"
    )
    if secret_key is not None:
        env["SECRET_KEY"] = secret_key
    if admin_token is not None:
        env["ADMIN_TOKEN"] = admin_token
    line = _one_error_line(smm_panel(command, env=env, timeout=30))
    assert message in line


def test_secret_prints_a_fresh_strong_value() -> None:
    first = smm_panel("secret", env=command_env())
    second = smm_panel("secret", env=command_env())
    assert first.returncode == second.returncode == 0
    value = first.stdout.strip()
    assert weak_secret(value) is None and len(value) == 43
    assert value != second.stdout.strip()
    assert weak_secret(new_secret()) is None


def test_settings_rule_and_keyring_order() -> None:
    settings = Settings(secret_key=STRONG, secret_key_previous=f"old-one, {STRONG},old-two")
    assert settings.secret_key == f"{STRONG},old-one,old-two"
    assert settings.current_secret_key == STRONG
    assert settings.unsafe_secrets() == []
    # An old weak key may stay readable: only the current key must be strong.
    legacy = Settings(secret_key=STRONG, secret_key_previous="change-me-in-production")
    assert legacy.unsafe_secrets() == []
    with pytest.raises(ValueError, match="SECRET_KEY is not set"):
        keyring.encrypt(Settings(secret_key_previous=STRONG).secret_key, "x", "y")


def test_embedded_default_generates_and_keeps_its_secrets(tmp_path: Path) -> None:
    data_dir = str(tmp_path / "data")
    key = kept_secret(data_dir, "secret_key")
    token = kept_secret(data_dir, "admin_token")
    assert weak_secret(key) is None and weak_secret(token) is None and key != token
    # A restart reads the same values back: stored provider keys stay readable.
    assert kept_secret(data_dir, "secret_key") == key
    assert kept_secret(data_dir, "admin_token") == token
    mode = stat.S_IMODE(os.stat(tmp_path / "data" / "secret_key").st_mode)
    assert mode == 0o600


def test_run_without_the_embedded_extra_says_how_to_get_it() -> None:
    # Simulate the plain install: the embedded packages cannot be imported.
    env = command_env(PYTHONPATH=str(Path(__file__).parent / "support" / "no_embedded"))
    line = _one_error_line(smm_panel("run", env=env, timeout=30))
    assert line == f"smm-panel: error: {EXTRA_HINT}"


async def _provider(ctx: AppContext, secret: str, api_key: str) -> int:
    async with ctx.db.transaction() as session:
        provider = await create_provider(
            session,
            secret=secret,
            name=f"p-{api_key}",
            url="http://127.0.0.1:9/api/v2",
            api_key=api_key,
        )
        return provider.id


async def _stored(ctx: AppContext, provider_id: int) -> str:
    async with ctx.db.session() as session:
        token = await session.scalar(
            select(Provider.api_key_encrypted).where(Provider.id == provider_id)
        )
    assert token is not None
    return token


async def test_rotation_reads_old_keys_and_reencrypts_under_the_new_one(
    ctx: AppContext, settings: Settings, make_user: MakeUser
) -> None:
    old, new = SECRET_KEY, new_secret()
    first = await _provider(ctx, old, "upstream-key-1")
    second = await _provider(ctx, old, "upstream-key-2")
    # A user's status webhook and a provider's webhook secret, under the old key too.
    user = await make_user()
    async with ctx.db.transaction() as session:
        hook = await webhooks.set_endpoint(
            session,
            Settings(secret_key=old, webhook_allow_private=True),
            user.user_id,
            "http://127.0.0.1:9/hook",
        )
        listened = await session.get(Provider, first)
        assert listened is not None
        listened.webhook_secret_encrypted = keyring.encrypt(old, WEBHOOK_PURPOSE, "whsec_x")
    rotated = Settings(secret_key=new, secret_key_previous=old)
    # Reading tries every key; writing uses the current one.
    assert crypto.decrypt_key(rotated.secret_key, await _stored(ctx, first)) == "upstream-key-1"
    third = await _provider(ctx, rotated.secret_key, "upstream-key-3")
    assert keyring.is_current(new, crypto.PURPOSE, await _stored(ctx, third))

    async with ctx.db.transaction() as session:
        report = await rotate_secrets(session, rotated.secret_key)
    counts = {"reencrypted": report.reencrypted, "already_current": report.already_current}
    assert counts == {
        "reencrypted": {
            "provider.api_key": 2,
            "customer.totp": 0,
            "staff.totp": 0,
            "provider.webhook_secret": 1,
            "webhook.secret": 1,
        },
        "already_current": {
            "provider.api_key": 1,
            "customer.totp": 0,
            "staff.totp": 0,
            "provider.webhook_secret": 0,
            "webhook.secret": 0,
        },
    }
    async with ctx.db.session() as session:
        endpoint = await session.get(WebhookEndpoint, user.user_id)
        provider_row = await session.get(Provider, first)
    assert endpoint is not None and provider_row is not None
    assert keyring.decrypt(new, webhooks.PURPOSE, endpoint.secret_encrypted) == hook.secret
    assert provider_row.webhook_secret_encrypted is not None
    assert keyring.decrypt(new, WEBHOOK_PURPOSE, provider_row.webhook_secret_encrypted) == "whsec_x"
    # The old key can now be dropped.
    for provider_id, api_key in ((first, "upstream-key-1"), (second, "upstream-key-2")):
        assert crypto.decrypt_key(new, await _stored(ctx, provider_id)) == api_key
    async with ctx.db.session() as session:
        audit = (await session.scalars(select(AuditEntry))).all()
    assert [(a.actor, a.action, a.after) for a in audit] == [
        (
            "cli",
            "secrets.rotate",
            counts,
        )
    ]


async def test_rotation_without_the_old_key_changes_nothing(ctx: AppContext) -> None:
    provider_id = await _provider(ctx, SECRET_KEY, "upstream-key")
    before = await _stored(ctx, provider_id)
    with pytest.raises(UnreadableSecret, match=f"provider.api_key of id {provider_id}"):
        async with ctx.db.transaction() as session:
            await rotate_secrets(session, new_secret())
    assert await _stored(ctx, provider_id) == before


async def test_rotate_secret_command(ctx: AppContext, settings: Settings) -> None:
    provider_id = await _provider(ctx, SECRET_KEY, "upstream-key")
    new = new_secret()
    env = command_env(
        DATABASE_URL=settings.database_url or "", SECRET_KEY=new, SECRET_KEY_PREVIOUS=SECRET_KEY
    )
    done = await smm_panel_async("rotate-secret", env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "reencrypted": {
            "provider.api_key": 1,
            "customer.totp": 0,
            "staff.totp": 0,
            "provider.webhook_secret": 0,
            "webhook.secret": 0,
        },
        "already_current": {
            "provider.api_key": 0,
            "customer.totp": 0,
            "staff.totp": 0,
            "provider.webhook_secret": 0,
            "webhook.secret": 0,
        },
    }
    assert crypto.decrypt_key(new, await _stored(ctx, provider_id)) == "upstream-key"
    # Without the previous key, the command stops with one line and writes nothing.
    env = command_env(DATABASE_URL=settings.database_url or "", SECRET_KEY=new_secret())
    line = _one_error_line(await smm_panel_async("rotate-secret", env=env))
    assert f"provider.api_key of id {provider_id} opens with none of the configured keys" in line


@pytest.fixture
async def scratch_database() -> AsyncIterator[str]:
    """A fresh empty database of its own; dropped afterwards."""
    name = f"smm_scratch_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(plain_url(BASE_DB))
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    try:
        yield plain_url(BASE_DB).rsplit("/", 1)[0] + "/" + name
    finally:
        admin = await asyncpg.connect(plain_url(BASE_DB))
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def test_readiness_is_503_while_the_schema_is_behind_the_code(
    settings: Settings, scratch_database: str
) -> None:
    await asyncio.to_thread(migrate.upgrade, scratch_database)
    (head,) = migrate.expected_revisions()
    conn = await asyncpg.connect(scratch_database)
    await conn.execute("UPDATE alembic_version SET version_num = '8c348850fd69'")
    app = create_app(settings.model_copy(update={"database_url": scratch_database}))
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                behind = await client.get("/readyz")
                assert behind.status_code == 503
                assert behind.json() == {
                    "ready": False,
                    "database": "ok",
                    "schema": f"error: database at 8c348850fd69, code expects {head}",
                    "redis": "ok",
                }
                await conn.execute("UPDATE alembic_version SET version_num = $1", head)
                assert (await client.get("/readyz")).status_code == 200
    finally:
        await conn.close()


async def test_backup_restores_into_a_fresh_database_and_checks_clean(
    client: httpx.AsyncClient,
    api: Api,
    settings: Settings,
    make_user: MakeUser,
    make_service: MakeService,
    scratch_database: str,
    tmp_path: Path,
) -> None:
    # Deposits, orders and a refund.
    user = await make_user(balance="10")
    other = await make_user(balance="3")
    sid = await make_service()
    order = (await api(user.key, "add", service=sid, link=LINK, quantity=309))["order"]
    await api(other.key, "add", service=sid, link=LINK, quantity=100)
    refunded = await client.post(
        f"/admin/v1/orders/{order}/status",
        headers=AUTH,
        json={"status": "Partial", "start_count": 10, "remains": 157},
    )
    assert refunded.status_code == 200 and refunded.json()["refunded"] == "0.14130000"

    dump = tmp_path / "panel.dump"
    source = plain_url(settings.database_url or "")
    await run_tool("pg_dump", "--format=custom", f"--file={dump}", source)
    await run_tool(
        "pg_restore", "--no-owner", "--exit-on-error", f"--dbname={scratch_database}", str(dump)
    )

    env = command_env(DATABASE_URL=scratch_database)
    checked = await smm_panel_async("check", env=env)
    assert checked.returncode == 0, checked.stderr
    assert json.loads(checked.stdout) == {
        "ok": True,
        "checked_users": 2,
        "checked_orders": 2,
        "violations": [],
    }
    conn = await asyncpg.connect(scratch_database)
    try:
        balances = await conn.fetch("SELECT id, balance::text FROM users ORDER BY id")
        assert [(r["id"], r["balance"]) for r in balances] == [
            (user.user_id, "9.86320000"),
            (other.user_id, "2.91000000"),
        ]
        kinds = await conn.fetch("SELECT kind FROM ledger_entries ORDER BY id")
        assert sorted(r["kind"] for r in kinds) == [
            "charge",
            "charge",
            "deposit",
            "deposit",
            "refund",
        ]
        # A damaged restore is caught: non-zero exit, the violation named.
        await conn.execute("UPDATE users SET balance = balance + 1 WHERE id = $1", other.user_id)
    finally:
        await conn.close()
    damaged = await smm_panel_async("check", env=env)
    assert damaged.returncode == 1
    assert damaged.stderr.strip() == "smm-panel: error: ledger check failed: 1 violation(s)"
    report = json.loads(damaged.stdout)
    assert report["ok"] is False
    assert report["violations"][0]["rule"] == "balance_equals_ledger_sum"
    assert report["violations"][0]["user_id"] == other.user_id


def test_the_app_factory_refuses_a_weak_secret_under_plain_uvicorn() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "uvicorn", "app.main:create_app", "--factory", "--port", "9"],
        cwd=ROOT,
        env=command_env(SECRET_KEY="change-me"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "smm-panel: error: SECRET_KEY is a known placeholder (generate one with `smm-panel secret`)"
    )


def test_run_stops_on_sigterm_and_takes_its_embedded_servers_down(tmp_path: Path) -> None:
    """`smm-panel run` under a service manager: SIGTERM stops the panel, the worker and the
    embedded PostgreSQL and Redis it started (nothing left running on DATA_DIR)."""
    data_dir = tmp_path / "data"
    port = free_port()
    env = command_env(
        DATA_DIR=str(data_dir), PORT=str(port), SANDBOX_PORT=str(free_port()), MAIL_URL="console"
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "run"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def ours() -> list[psutil.Process]:
        found = []
        for other in psutil.process_iter(["cmdline"]):
            line = " ".join(other.info["cmdline"] or [])
            if str(data_dir) in line and other.pid != process.pid:
                found.append(other)
        return found

    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        else:
            pytest.fail("smm-panel run did not come up")
        assert ours(), "the embedded servers run under DATA_DIR"
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        deadline = time.monotonic() + 15
        while ours() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert ours() == []
    finally:
        if process.poll() is None:
            process.kill()
        for left in ours():
            left.kill()


def _start_run(data_dir: Path, port: int, sandbox_port: int, log: Path) -> subprocess.Popen[bytes]:
    env = command_env(
        DATA_DIR=str(data_dir),
        PORT=str(port),
        SANDBOX_PORT=str(sandbox_port),
        MAIL_URL="console",
        LOG_JSON="false",
    )
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "app.cli", "run"], cwd=ROOT, env=env, stdout=out, stderr=out
        )


def _wait_ready(url: str, log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    pytest.fail(f"/readyz never answered 200:\n{log.read_text()[-3000:]}")


def _embedded_servers(data_dir: Path) -> list[psutil.Process]:
    """The PostgreSQL and Redis daemons started on `data_dir` (by their pid files)."""
    found = []
    for other in psutil.process_iter(["cmdline", "name"]):
        line = " ".join(other.info["cmdline"] or [])
        if str(data_dir) in line and "postgres" in (other.info["name"] or ""):
            found.append(other)
    settings_file = data_dir / "redis.db.settings"
    if settings_file.exists():
        pidfile = Path(json.loads(settings_file.read_text())["pidfile"])
        if pidfile.exists() and psutil.pid_exists(int(pidfile.read_text().strip())):
            found.append(psutil.Process(int(pidfile.read_text().strip())))
    return found


def test_run_recovers_from_a_killed_run(tmp_path: Path) -> None:
    """`smm-panel run` killed without warning leaves its embedded PostgreSQL and Redis
    running; the next run stops them (saying so in one line), starts afresh, is ready and
    relays an order."""
    data_dir = tmp_path / "data"
    port, sandbox_port = free_port(), free_port()
    url = f"http://127.0.0.1:{port}"
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    first = _start_run(data_dir, port, sandbox_port, first_log)
    second: subprocess.Popen[bytes] | None = None
    try:
        _wait_ready(url, first_log)
        orphans = _embedded_servers(data_dir)
        assert len(orphans) == 2, orphans
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        assert all(p.is_running() for p in orphans), "the daemons outlive a killed run"

        second = _start_run(data_dir, port, sandbox_port, second_log)
        _wait_ready(url, second_log)
        told = [line for line in second_log.read_text().splitlines() if "previous run" in line]
        assert len(told) == 1, second_log.read_text()
        assert f"the previous run (pid {first.pid}) on {data_dir}" in told[0]
        assert "stopped its PostgreSQL (pid " in told[0] and "Redis (pid " in told[0]
        assert not any(p.is_running() for p in orphans)

        key = re.search(r"demo API key: (\S+)", second_log.read_text())
        assert key is not None, second_log.read_text()
        placed = httpx.post(
            f"{url}/api/v2",
            data={
                "key": key.group(1),
                "action": "add",
                "service": "1",
                "link": "https://instagram.com/after-a-crash",
                "quantity": "100",
            },
            timeout=10,
        ).json()
        token = (data_dir / "admin_token").read_text().strip()
        deadline, state = time.monotonic() + 60, None
        while time.monotonic() < deadline and state != "sent":
            order = httpx.get(
                f"{url}/admin/v1/orders/{placed['order']}",
                headers={"Authorization": f"Bearer {token}"},
                timeout=10,
            ).json()
            state = order["upstream_state"]
            time.sleep(0.5)
        assert state == "sent", order

        second.send_signal(signal.SIGTERM)
        second.wait(timeout=60)
        assert not (data_dir / "run.json").exists()
        deadline = time.monotonic() + 15
        while _embedded_servers(data_dir) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _embedded_servers(data_dir) == [], "a clean stop takes both servers down"
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait(timeout=10)
        for left in _embedded_servers(data_dir):
            left.kill()


def test_a_live_run_keeps_its_data_dir(tmp_path: Path) -> None:
    """A second `run` on the DATA_DIR of a live one is refused in one line, and the live
    one is left alone."""
    data_dir = tmp_path / "data"
    port = free_port()
    log = tmp_path / "first.log"
    first = _start_run(data_dir, port, free_port(), log)
    try:
        _wait_ready(f"http://127.0.0.1:{port}", log)
        env = command_env(DATA_DIR=str(data_dir), PORT=str(free_port()))
        line = _one_error_line(smm_panel("run", env=env, timeout=60))
        assert line == (
            f"smm-panel: error: DATA_DIR {data_dir} is in use by another `smm-panel run` "
            f"(pid {first.pid}): stop it first, or set DATA_DIR to another folder"
        )
        assert httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=60)
        for left in _embedded_servers(data_dir):
            left.kill()
