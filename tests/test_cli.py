"""The operator's command line: mistakes end in one clear line and a non-zero exit, and
--help explains every command, option and the environment each reads."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from app.cli import build_parser
from app.context import AppContext
from app.preflight import ConfigurationError, check_database_url, check_mail_url, check_redis_url
from app.settings import Settings
from tests.support.cli import command_env, smm_panel_async
from tests.support.env import SECRET_KEY

DOWN = "postgresql+asyncpg://postgres@127.0.0.1:9/nowhere"


def _refused(result: subprocess.CompletedProcess[str], code: int) -> str:
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert result.stdout == ""
    return lines[0]


@pytest.fixture
def db_env(settings: Settings) -> dict[str, str]:
    return command_env(DATABASE_URL=settings.database_url or "")


async def test_user_create_then_duplicate_email_is_one_line(
    ctx: AppContext, db_env: dict[str, str]
) -> None:
    created = await smm_panel_async(
        "user", "create", "--email", "op@example.com", "--balance", "12.50", env=db_env
    )
    assert created.returncode == 0, created.stderr
    user = json.loads(created.stdout)
    assert user["email"] == "op@example.com" and len(user["api_key"]) > 20
    async with ctx.db.session() as session:
        from app.ledger import service as ledger

        entries = await ledger.list_entries(session, user_id=user["id"], limit=10, offset=0)
    assert [(e.kind, str(e.amount)) for e in entries] == [("deposit", "12.50000000")]
    again = await smm_panel_async("user", "create", "--email", "op@example.com", env=db_env)
    assert _refused(again, 1) == "smm-panel: error: A user with this email already exists"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["user", "create", "--email", "a@example.com", "--balance", "abc"],
            "smm-panel user create: error: argument --balance: not a positive amount: 'abc'",
        ),
        (
            ["user", "create", "--email", "a@example.com", "--balance", "-5"],
            "smm-panel user create: error: argument --balance: not a positive amount: '-5'",
        ),
        (
            ["user", "create", "--email", "a@example.com", "--balance", "1E+3"],
            "smm-panel user create: error: argument --balance: not a positive amount: '1E+3'",
        ),
        (
            ["user", "create", "--email", "not-an-email"],
            "smm-panel user create: error: argument --email: not an email address",
        ),
        (
            ["user", "topup", "7", "0"],
            "smm-panel user topup: error: argument amount: the amount must be greater than 0",
        ),
        (
            ["user", "topup", "seven", "5"],
            "smm-panel user topup: error: argument user_id: not a user id: 'seven'",
        ),
        (["serve", "--workers", "0"], "smm-panel serve: error: argument --workers"),
        (["frobnicate"], "smm-panel: error: argument COMMAND: invalid choice: 'frobnicate'"),
    ],
)
async def test_bad_arguments_are_refused_in_one_line(args: list[str], message: str) -> None:
    # Refused before anything connects: the database is not even reachable here.
    line = _refused(await smm_panel_async(*args, env=command_env(DATABASE_URL=DOWN)), 2)
    assert line.startswith(message), line


async def test_unknown_user_is_one_line(ctx: AppContext, db_env: dict[str, str]) -> None:
    rotated = await smm_panel_async("user", "rotate-key", "999999", env=db_env)
    assert _refused(rotated, 1) == "smm-panel: error: User not found"
    topped = await smm_panel_async("user", "topup", "999999", "5", env=db_env)
    assert _refused(topped, 1) == "smm-panel: error: User not found"


@pytest.mark.parametrize(
    "args",
    [["user", "create", "--email", "a@example.com"], ["user", "rotate-key", "1"], ["check"]],
)
async def test_database_down_is_one_line(args: list[str]) -> None:
    line = _refused(await smm_panel_async(*args, env=command_env(DATABASE_URL=DOWN)), 1)
    assert line.startswith("smm-panel: error: database unavailable: "), line
    assert "127.0.0.1" in line


async def test_missing_database_url_is_one_line() -> None:
    line = _refused(await smm_panel_async("check", env=command_env()), 1)
    assert line == (
        "smm-panel: error: DATABASE_URL is not set (`smm-panel run` starts an embedded default)"
    )


async def test_malformed_setting_is_one_line() -> None:
    env = command_env(DATABASE_URL=DOWN, PORT="eighty")
    line = _refused(await smm_panel_async("check", env=env), 1)
    assert line.startswith("smm-panel: error: configuration: "), line
    assert "port" in line


def _commands(parser: object) -> dict[str, object]:
    import argparse

    assert isinstance(parser, argparse.ArgumentParser)
    found: dict[str, object] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found[name] = sub
                found.update({f"{name} {k}": v for k, v in _commands(sub).items()})
    return found


def test_help_explains_every_command_option_and_environment() -> None:
    import argparse

    commands = _commands(build_parser())
    assert {"run", "serve", "worker", "migrate", "check", "secret", "rotate-secret"} <= set(
        commands
    )
    assert {"user create", "user topup", "user rotate-key"} <= set(commands)
    for name, sub in commands.items():
        assert isinstance(sub, argparse.ArgumentParser)
        for action in sub._actions:
            assert action.help, f"{name}: {action.dest} has no help"
        text = sub.format_help()
        if name not in ("user", "secret", "admin-token"):
            assert "Environment:" in text, name
    serve = commands["serve"]
    assert isinstance(serve, argparse.ArgumentParser)
    for variable in ("DATABASE_URL", "SECRET_KEY", "ADMIN_TOKEN", "FORWARDED_ALLOW_IPS"):
        assert variable in serve.format_help()


POSTGRES = "expected postgresql+asyncpg://user:password@host:5432/database"
BAD_DATABASE_URLS = [
    (
        "mysql://panel:secret@db/panel",
        f"DATABASE_URL must be a PostgreSQL URL, not mysql://…: {POSTGRES}",
    ),
    ("garbage", f"DATABASE_URL is not a URL: {POSTGRES}"),
    (
        "postgresql://panel@db:99999/panel",
        f"DATABASE_URL is not a valid URL (Port out of range 0-65535): {POSTGRES}",
    ),
    ("postgresql:///panel", f"DATABASE_URL names no host: {POSTGRES}"),
    (
        "postgresql+asyncpg://panel:secret@127.0.0.1:9/panel",
        "database unavailable: [Errno 111] Connect call failed ('127.0.0.1', 9) "
        "(DATABASE_URL postgresql+asyncpg://127.0.0.1:9/panel)",
    ),
]
REDIS = "expected redis://host:6379/0"
BAD_REDIS_URLS = [
    ("garbage", f"REDIS_URL is not a URL: {REDIS}"),
    (
        "http://cache:6379",
        f"REDIS_URL must be a Redis URL (redis://, rediss:// or unix://), not http://…: {REDIS}",
    ),
    (
        "redis://cache/zero",
        f"REDIS_URL names database 'zero': a Redis database is a number, {REDIS}",
    ),
    (
        "redis://:secret@127.0.0.1:9/0",
        "Redis unavailable: Error 111 connecting to 127.0.0.1:9. Connect call failed "
        "('127.0.0.1', 9). (REDIS_URL redis://127.0.0.1:9/0)",
    ),
]


def _refused_at_start(result: subprocess.CompletedProcess[str], command: str) -> str:
    """The one error line of a command refused at start. `run` may have logged its progress
    before (embedded secrets generated, migrations applied): info lines, never a traceback."""
    if command != "run":
        return _refused(result, 1)
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    *progress, last = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr
    assert all(json.loads(line)["level"] == "info" for line in progress), progress
    return last


def _started_env(tmp_path: Path, **settings: str) -> dict[str, str]:
    return command_env(
        SECRET_KEY=SECRET_KEY, DATA_DIR=str(tmp_path / "data"), LOG_JSON="true", **settings
    )


@pytest.mark.parametrize(("url", "message"), BAD_DATABASE_URLS)
def test_database_url_mistakes_are_named(url: str, message: str) -> None:
    if message.startswith("database unavailable"):
        assert check_database_url(url) == url  # well formed: refused when it does not answer
    else:
        with pytest.raises(ConfigurationError) as refused:
            check_database_url(url)
        assert str(refused.value) == message


@pytest.mark.parametrize(("url", "message"), BAD_REDIS_URLS)
def test_redis_url_mistakes_are_named(url: str, message: str) -> None:
    if message.startswith("Redis unavailable"):
        assert check_redis_url(url) == url
    else:
        with pytest.raises(ConfigurationError) as refused:
            check_redis_url(url)
        assert str(refused.value) == message


@pytest.mark.parametrize(("url", "message"), [BAD_DATABASE_URLS[0], BAD_DATABASE_URLS[-1]])
@pytest.mark.parametrize("command", ["serve", "worker", "migrate", "run"])
async def test_a_bad_database_url_is_one_line(
    command: str, url: str, message: str, settings: Settings, tmp_path: Path
) -> None:
    env = _started_env(tmp_path, DATABASE_URL=url, REDIS_URL=settings.redis_url or "")
    line = _refused_at_start(await smm_panel_async(command, env=env), command)
    assert line == f"smm-panel: error: {message}"
    assert "secret" not in line


@pytest.mark.parametrize(("url", "message"), [BAD_REDIS_URLS[0], BAD_REDIS_URLS[-1]])
@pytest.mark.parametrize("command", ["serve", "worker", "run"])
async def test_a_bad_redis_url_is_one_line(
    command: str, url: str, message: str, settings: Settings, tmp_path: Path
) -> None:
    env = _started_env(tmp_path, DATABASE_URL=settings.database_url or "", REDIS_URL=url)
    line = _refused_at_start(await smm_panel_async(command, env=env), command)
    assert line == f"smm-panel: error: {message}"
    assert "secret" not in line


@pytest.mark.parametrize("command", ["serve", "run"])
async def test_a_gateway_that_cannot_price_refuses_to_start(
    command: str, settings: Settings, tmp_path: Path
) -> None:
    env = _started_env(
        tmp_path,
        DATABASE_URL=settings.database_url or "",
        REDIS_URL=settings.redis_url or "",
        QUEUE_NAME=settings.queue_name,
        YOOKASSA_SHOP_ID="123456",
        YOOKASSA_SECRET_KEY="test_secret_key",
    )
    line = _refused_at_start(await smm_panel_async(command, env=env), command)
    assert line == (
        "smm-panel: error: payment gateway yookassa takes RUB, which has no conversion rate "
        "into USD: set CURRENCY_RATES (USD per unit, e.g. "
        """CURRENCY_RATES='{"RUB": "0.011"}') or PUT /admin/v1/currencies/RUB"""
    )


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "http://mail.example",
            "MAIL_URL must be console or smtp://user:pass@host:port (smtps:// for TLS), not http://…",
        ),
        (
            "smtp://",
            "MAIL_URL names no host: expected console or smtp://user:pass@host:port (smtps:// for TLS)",
        ),
    ],
)
def test_mail_url_mistakes_are_named(url: str, message: str) -> None:
    with pytest.raises(ConfigurationError) as refused:
        check_mail_url(url)
    assert str(refused.value) == message
    assert check_mail_url("console") == "console"
    assert check_mail_url("smtps://u:p@mail.example:465") == "smtps://u:p@mail.example:465"


async def test_a_bad_sandbox_config_is_one_line(tmp_path: Path) -> None:
    config = tmp_path / "sandbox.json"
    config.write_text('{"servces": []}')
    line = _refused(await smm_panel_async("sandbox", "--config", str(config), env=command_env()), 1)
    assert line == (
        f"smm-panel: error: --config {config}: SandboxConfig.__init__() got an unexpected "
        "keyword argument 'servces'"
    )
