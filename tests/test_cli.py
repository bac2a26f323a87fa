"""The operator's command line: mistakes end in one clear line and a non-zero exit, and
--help explains every command, option and the environment each reads."""

from __future__ import annotations

import json
import subprocess

import pytest

from app.cli import build_parser
from app.context import AppContext
from app.settings import Settings
from tests.support.cli import command_env, smm_panel_async

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
