"""The `smm-panel` command: run, serve, worker, migrate, sandbox, user helpers."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import sys
from decimal import Decimal
from typing import Any

from app.settings import Settings, get_settings

log = logging.getLogger("smm_panel")


def _configure_logging(settings: Settings) -> None:
    from app.logs import configure_logging

    configure_logging(settings.log_level, json_format=settings.log_json)


def _require_db(settings: Settings) -> str:
    if not settings.database_url:
        sys.exit("DATABASE_URL is not set (use `smm-panel run` for the embedded default)")
    return settings.database_url


def cmd_migrate(settings: Settings, _: argparse.Namespace) -> None:
    from app import migrate

    migrate.upgrade(_require_db(settings))
    print("migrated to head")


def cmd_serve(settings: Settings, args: argparse.Namespace) -> None:
    import uvicorn

    _require_db(settings)
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=args.host or settings.host,
        port=args.port or settings.port,
        workers=args.workers,
        access_log=False,
        log_level=settings.log_level.lower(),
    )


def cmd_worker(settings: Settings, _: argparse.Namespace) -> None:
    from workers.main import run_worker

    _require_db(settings)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_worker(settings))


def cmd_sandbox(settings: Settings, args: argparse.Namespace) -> None:
    from app.providers.sandbox import load_sandbox_config, serve_sandbox

    asyncio.run(serve_sandbox(args.host, args.port, load_sandbox_config(args.config)))


async def _with_session(settings: Settings, work: Any) -> Any:
    from app.db import Database

    db = Database(_require_db(settings), pool_size=2, max_overflow=0)
    try:
        async with db.transaction() as session:
            return await work(session)
    finally:
        await db.dispose()


def cmd_user_create(settings: Settings, args: argparse.Namespace) -> None:
    from app.accounts import service as accounts
    from app.ledger import service as ledger

    async def work(session: Any) -> dict[str, Any]:
        user = await accounts.create_user(session, email=args.email)
        issued = await accounts.issue_key(session, user.id)
        if args.balance and Decimal(args.balance) > 0:
            await ledger.credit(
                session,
                user_id=user.id,
                amount=Decimal(args.balance),
                kind="deposit",
                reason="Initial balance (CLI)",
                operator="cli",
            )
        return {"id": user.id, "email": user.email, "api_key": issued.key}

    print(json.dumps(asyncio.run(_with_session(settings, work))))


def cmd_user_topup(settings: Settings, args: argparse.Namespace) -> None:
    from app.payments import service as payments

    async def work(session: Any) -> dict[str, Any]:
        movement = await payments.manual_topup(
            session,
            settings,
            user_id=args.user_id,
            amount=Decimal(args.amount),
            reason=args.reason,
            operator="cli",
            payment_ref=args.payment_ref,
        )
        if movement is None:
            return {"user_id": args.user_id, "duplicate": True}
        return {"user_id": args.user_id, "balance": str(movement.balance_after)}

    print(json.dumps(asyncio.run(_with_session(settings, work))))


def cmd_user_key(settings: Settings, args: argparse.Namespace) -> None:
    from app.accounts import service as accounts

    async def work(session: Any) -> dict[str, Any]:
        issued = await accounts.rotate_key(session, args.user_id)
        return {"user_id": args.user_id, "api_key": issued.key}

    print(json.dumps(asyncio.run(_with_session(settings, work))))


def cmd_admin_token(_: Settings, __: argparse.Namespace) -> None:
    import secrets

    print(secrets.token_urlsafe(32))


def cmd_run(settings: Settings, args: argparse.Namespace) -> None:
    from app.runner import run_all

    # Ctrl-C is the normal way to stop it; the servers shut down in their finally blocks.
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_all(settings, host=args.host, port=args.port))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="smm-panel", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="everything in one process (embedded Postgres/Redis if unset)")
    p.add_argument("--host", default=None)
    p.add_argument("--port", type=int, default=None)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("serve", help="the HTTP API (uvicorn)")
    p.add_argument("--host", default=None)
    p.add_argument("--port", type=int, default=None)
    p.add_argument("--workers", type=int, default=1)
    p.set_defaults(func=cmd_serve)

    sub.add_parser("worker", help="the background worker (arq)").set_defaults(func=cmd_worker)
    sub.add_parser("migrate", help="apply database migrations").set_defaults(func=cmd_migrate)

    p = sub.add_parser("sandbox", help="the sandbox provider (a real API v2 server)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8001)
    p.add_argument("--config", default=None, help="JSON file with keys, services, behaviours")
    p.set_defaults(func=cmd_sandbox)

    p = sub.add_parser("user", help="user helpers")
    usub = p.add_subparsers(dest="user_command", required=True)
    u = usub.add_parser("create", help="create a user; prints id and API key as JSON")
    u.add_argument("--email", required=True)
    u.add_argument("--balance", default=None)
    u.set_defaults(func=cmd_user_create)
    u = usub.add_parser("topup", help="credit a user's balance")
    u.add_argument("user_id", type=int)
    u.add_argument("amount")
    u.add_argument("--reason", default="Top-up (CLI)")
    u.add_argument("--payment-ref", default=None)
    u.set_defaults(func=cmd_user_topup)
    u = usub.add_parser("rotate-key", help="revoke a user's keys and print a new one")
    u.add_argument("user_id", type=int)
    u.set_defaults(func=cmd_user_key)

    sub.add_parser("admin-token", help="print a random admin token").set_defaults(
        func=cmd_admin_token
    )
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    settings = get_settings()
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    _configure_logging(settings)
    args.func(settings, args)


if __name__ == "__main__":
    main()
