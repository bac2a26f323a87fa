"""The `smm-panel` command: run, serve, worker, migrate, check, secrets, user and staff helpers.

Operator mistakes end in one line on stderr and a non-zero exit, never a traceback:
arguments are validated before anything connects, and the errors an operator can cause
(a domain refusal, an unreachable database, a secret that is too weak) are caught in
`main` and printed as `smm-panel: error: …`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import re
import sys
from collections.abc import Awaitable, Callable
from decimal import Decimal, InvalidOperation
from typing import Any, NoReturn, TypeVar

from app.settings import Settings, get_settings, new_secret

log = logging.getLogger("smm_panel")
T = TypeVar("T")

EMAIL = re.compile(r"^[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>.]+$")
# Plain decimals only: no exponent, no sign games, at most 8 decimal places.
AMOUNT = re.compile(r"^\d{1,12}(\.\d{1,8})?$")

ENV_DATABASE = "DATABASE_URL (PostgreSQL, postgresql+asyncpg://…)"
ENV_SECRETS = "SECRET_KEY, SECRET_KEY_PREVIOUS, ADMIN_TOKEN"
ENV_LOGS = "LOG_LEVEL, LOG_JSON"


class OperatorError(Exception):
    """A mistake or a condition the operator can fix; printed as one line."""


def fail(message: str) -> NoReturn:
    print(f"smm-panel: error: {message}", file=sys.stderr)
    sys.exit(1)


class Parser(argparse.ArgumentParser):
    """Usage mistakes in one line too (`smm-panel user create --help` shows the usage)."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {message} (see `{self.prog} --help`)", file=sys.stderr)
        sys.exit(2)


# --- argument types: refused by argparse with a one-line usage error (exit 2) ---


def email_arg(text: str) -> str:
    text = text.strip()
    if len(text) > 254 or not EMAIL.match(text):
        raise argparse.ArgumentTypeError(f"not an email address: {text!r}")
    return text


def _amount(text: str, *, allow_zero: bool) -> Decimal:
    if not AMOUNT.match(text.strip()):
        raise argparse.ArgumentTypeError(
            f"not a positive amount: {text!r} (a plain decimal such as 10 or 12.50)"
        )
    value = Decimal(text.strip())
    if value == 0 and not allow_zero:
        raise argparse.ArgumentTypeError("the amount must be greater than 0")
    return value


def balance_arg(text: str) -> Decimal:
    return _amount(text, allow_zero=True)


def amount_arg(text: str) -> Decimal:
    return _amount(text, allow_zero=False)


def user_id_arg(text: str) -> int:
    from app.db import MAX_ID  # the command line imports the database layer when it runs

    if not text.isdigit() or not 0 < int(text) <= MAX_ID:
        raise argparse.ArgumentTypeError(f"not a user id: {text!r}")
    return int(text)


def port_arg(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise argparse.ArgumentTypeError(f"not a port: {text!r}")
    return int(text)


def workers_arg(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) <= 64:
        raise argparse.ArgumentTypeError(f"not a number of workers (1-64): {text!r}")
    return int(text)


# --- preconditions ---


def _configure_logging(settings: Settings) -> None:
    from app.logs import configure_logging

    configure_logging(settings.log_level, json_format=settings.log_json)


def _require_db(settings: Settings) -> str:
    from app.preflight import check_database_url

    if not settings.database_url:
        raise OperatorError("DATABASE_URL is not set (`smm-panel run` starts an embedded default)")
    return check_database_url(settings.database_url)


def _preflight(settings: Settings, *, redis: bool, gateways: bool = False) -> None:
    """The servers answer and the gateways can price (app/preflight.py), before starting."""
    from app.preflight import check_redis_url, check_servers

    _require_db(settings)
    if redis:
        if not settings.redis_url:
            raise OperatorError("REDIS_URL is not set (`smm-panel run` starts an embedded default)")
        check_redis_url(settings.redis_url)
    asyncio.run(check_servers(settings, redis=redis, gateways=gateways))


def _require_safe_secrets(settings: Settings) -> None:
    problems = settings.unsafe_secrets()
    if problems:
        raise OperatorError("; ".join(problems))


def _run(coro: Awaitable[T]) -> T:
    async def wrapper() -> T:
        return await coro

    return asyncio.run(wrapper())


async def _with_session(settings: Settings, work: Callable[[Any], Awaitable[T]]) -> T:
    from app.db import Database

    db = Database(_require_db(settings), pool_size=2, max_overflow=0, pooler=settings.db_pooler)
    try:
        async with db.transaction() as session:
            return await work(session)
    finally:
        await db.dispose()


# --- commands ---


def cmd_migrate(settings: Settings, _: argparse.Namespace) -> None:
    from app import migrate

    _require_safe_secrets(settings)
    url = _require_db(settings)
    _preflight(settings, redis=False)
    log.info("migrating", extra={"expected_revision": migrate.expected_revision()})
    migrate.upgrade(url)
    print("migrated to head")


def cmd_serve(settings: Settings, args: argparse.Namespace) -> None:
    import uvicorn

    from app.metrics import shared_across

    _require_safe_secrets(settings)
    _preflight(settings, redis=True, gateways=True)
    # Every process (the parent and each of --workers) logs through app.logs: uvicorn
    # configures no handlers of its own (log_config=None), the app factory configures ours.
    # The processes' metrics add up in one directory (app/metrics.py).
    # The app of each process reads its settings anew: an address given here is theirs too,
    # and an unset PUBLIC_URL follows it.
    if args.host:
        os.environ["HOST"] = args.host
    if args.port:
        os.environ["PORT"] = str(args.port)
    with shared_across(args.workers, settings.prometheus_multiproc_dir):
        uvicorn.run(
            "app.main:create_app",
            factory=True,
            host=args.host or settings.host,
            port=args.port or settings.port,
            workers=args.workers,
            access_log=False,
            log_config=None,
            log_level=settings.log_level.lower(),
            # app.http.proxy reads X-Forwarded-For and Forwarded from FORWARDED_ALLOW_IPS.
            proxy_headers=False,
        )


def cmd_worker(settings: Settings, _: argparse.Namespace) -> None:
    from app import migrate

    _require_safe_secrets(settings)
    _preflight(settings, redis=True)
    # Imported once the settings are known good: the module builds arq's settings from them.
    from workers.main import run_worker

    log.info(
        "worker starting",
        extra={
            "queue": settings.arq_queue,
            "redis_prefix": settings.redis_namespace,
            "relay_concurrency": settings.relay_concurrency,
            "status_sync_seconds": settings.status_sync_seconds,
            "expected_revision": migrate.expected_revision(),
        },
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_worker(settings))
    log.info("worker stopped")


def cmd_sandbox(settings: Settings, args: argparse.Namespace) -> None:
    from app.sandbox import load_sandbox_config, serve_sandbox

    try:
        config = load_sandbox_config(args.config)
    except (OSError, ValueError, TypeError) as exc:  # unreadable, not JSON, unknown fields
        raise OperatorError(f"--config {args.config}: {' '.join(str(exc).split())}") from None
    asyncio.run(serve_sandbox(args.host, args.port, config))


def cmd_settings(_: Settings, args: argparse.Namespace) -> None:
    from pathlib import Path

    from app.settings import settings_table, with_settings_table

    if args.readme:
        path = Path(args.readme)
        try:
            text = path.read_text(encoding="utf-8")
            path.write_text(with_settings_table(text), encoding="utf-8")
        except (OSError, ValueError) as exc:
            raise OperatorError(f"{path}: {exc}") from None
        print(f"{path}: configuration table written")
        return
    print(settings_table(), end="")


def cmd_check(settings: Settings, _: argparse.Namespace) -> None:
    from app.ledger import service as ledger

    report = _run(_with_session(settings, ledger.check_invariants))
    print(
        json.dumps(
            {
                "ok": report.ok,
                "checked_users": report.checked_users,
                "checked_orders": report.checked_orders,
                "violations": report.violations,
            },
            default=str,
        )
    )
    if not report.ok:
        fail(f"ledger check failed: {len(report.violations)} violation(s)")


def cmd_secret(_: Settings, __: argparse.Namespace) -> None:
    print(new_secret())


def cmd_rotate_secret(settings: Settings, _: argparse.Namespace) -> None:
    from app.rotation import UnreadableSecret, rotate_secrets

    _require_safe_secrets(settings)

    async def work(session: Any) -> dict[str, Any]:
        report = await rotate_secrets(session, settings.secret_key)
        return {"reencrypted": report.reencrypted, "already_current": report.already_current}

    try:
        print(json.dumps(_run(_with_session(settings, work))))
    except UnreadableSecret as exc:
        raise OperatorError(str(exc)) from None


def cmd_user_create(settings: Settings, args: argparse.Namespace) -> None:
    from app.accounts import service as accounts
    from app.ledger import service as ledger

    async def work(session: Any) -> dict[str, Any]:
        user = await accounts.create_user(session, email=args.email)
        issued = await accounts.issue_key(session, user.id)
        if args.balance:
            await ledger.credit(
                session,
                user_id=user.id,
                amount=args.balance,
                kind="deposit",
                reason="Initial balance (CLI)",
                operator="cli",
            )
        return {"id": user.id, "email": user.email, "api_key": issued.key}

    print(json.dumps(_run(_with_session(settings, work))))


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
        await accounts.get_user(session, args.user_id)  # NotFound: "User not found"
        issued = await accounts.rotate_key(session, args.user_id)
        return {"user_id": args.user_id, "api_key": issued.key}

    print(json.dumps(_run(_with_session(settings, work))))


def cmd_run(settings: Settings, args: argparse.Namespace) -> None:
    from app.embedded import EXTRA_HINT, missing_embedded
    from app.preflight import check_database_url, check_mail_url, check_redis_url

    check_mail_url(settings.mail_url)
    need_db, need_redis = not settings.database_url, not settings.redis_url
    if settings.database_url:
        check_database_url(settings.database_url)
    if settings.redis_url:
        check_redis_url(settings.redis_url)
    if missing_embedded(need_db=need_db, need_redis=need_redis):
        raise OperatorError(EXTRA_HINT)
    from app.runner import run_all

    # Ctrl-C is the normal way to stop it; the servers shut down in their finally blocks.
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_all(settings, host=args.host, port=args.port))


# --- staff ---


async def _with_staff_session(settings: Settings, work: Callable[[Any, Any], Awaitable[T]]) -> T:
    """One transaction for a staff command; `work` gets the session and the mailer. Mail
    it queued is sent once the transaction committed (the worker retries what fails)."""
    from app.db import Database
    from app.mail import service as mail

    db = Database(_require_db(settings), pool_size=2, max_overflow=0)
    try:
        async with db.transaction() as session:
            result = await work(session, mail.Mailer(db, settings.mail_url, settings.mail_from))
        await mail.drain()
        return result
    finally:
        await db.dispose()


def _password_from_stdin() -> str:
    password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise OperatorError("--password-stdin: no password on standard input")
    return password


def cmd_staff_create(settings: Settings, args: argparse.Namespace) -> None:
    from app.http.audit import audited
    from app.staff import service as staff
    from app.staff import signin

    password = _password_from_stdin() if args.password_stdin else None

    async def work(session: Any, mailer: Any) -> dict[str, Any]:
        member = await staff.create_member(
            session, email=args.email, role=args.role, password=password, language=args.language
        )
        if password is None:
            await signin.invite(session, mailer, settings, member)
        shown = {"id": member.id, "email": member.email, "role": member.role}
        await audited(session, "cli", "staff.create", "staff", member.id, after=shown)
        return {**shown, "invitation": "mailed" if password is None else None}

    print(json.dumps(_run(_with_staff_session(settings, work))))


def cmd_staff_token(settings: Settings, args: argparse.Namespace) -> None:
    from app.http.audit import audited
    from app.staff import service as staff

    async def work(session: Any, _: Any) -> dict[str, Any]:
        member = await staff.find_member(session, args.email)
        issued = await staff.issue_token(session, member.id, args.name)
        shown = {"id": issued.row.id, "name": issued.row.name, "prefix": issued.row.prefix}
        await audited(session, "cli", "staff.token_issue", "staff", member.id, after=shown)
        return {"staff_id": member.id, "token_id": issued.row.id, "token": issued.token}

    print(json.dumps(_run(_with_staff_session(settings, work))))


def cmd_staff_list(settings: Settings, _: argparse.Namespace) -> None:
    from app.staff import service as staff

    async def work(session: Any, __: Any) -> list[dict[str, Any]]:
        return [
            {
                "id": m.id,
                "email": m.email,
                "role": m.role,
                "two_factor": m.totp_enabled_at is not None,
                "disabled": m.disabled_at is not None,
            }
            for m in await staff.list_members(session)
        ]

    print(json.dumps(_run(_with_staff_session(settings, work))))


def _staff_switch(settings: Settings, email: str, *, enabled: bool) -> None:
    from app.http.audit import audited
    from app.staff import service as staff

    async def work(session: Any, _: Any) -> dict[str, Any]:
        member = await staff.find_member(session, email)
        changed = await (staff.enable if enabled else staff.disable)(session, member.id)
        shown = {"id": changed.id, "email": changed.email, "disabled": not enabled}
        action = "staff.enable" if enabled else "staff.disable"
        await audited(session, "cli", action, "staff", changed.id, after=shown)
        return shown

    print(json.dumps(_run(_with_staff_session(settings, work))))


def cmd_staff_disable(settings: Settings, args: argparse.Namespace) -> None:
    _staff_switch(settings, args.email, enabled=False)


def cmd_staff_enable(settings: Settings, args: argparse.Namespace) -> None:
    _staff_switch(settings, args.email, enabled=True)


def _staff_commands(sub: Any) -> None:
    from app.staff.roles import ROLES

    p = sub.add_parser(
        "staff",
        help="staff accounts (create, token, list, disable, enable)",
        description="Staff accounts of the console and /admin/v1; each prints one JSON value."
        f"\n\nEnvironment: {ENV_DATABASE}, {ENV_LOGS} (and what each action's --help names).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ssub = p.add_subparsers(
        dest="staff_command", required=True, metavar="ACTION", help="what to do with staff"
    )
    env = f"{ENV_DATABASE}, {ENV_LOGS}"
    s = _command(
        ssub,
        "create",
        cmd_staff_create,
        "add a staff member; prints the id as JSON. Without --password-stdin an invitation "
        "link to set the password is mailed",
        f"{env}, MAIL_URL, MAIL_FROM, PUBLIC_URL, STAFF_INVITE_HOURS",
    )
    s.add_argument("--email", required=True, type=email_arg, help="the member's email (unique)")
    s.add_argument("--role", required=True, choices=ROLES, help="the member's role")
    s.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of standard input (no invitation)",
    )
    s.add_argument("--language", choices=("en", "ru"), default="en", help="of the invitation")
    s = _command(
        ssub,
        "token",
        cmd_staff_token,
        "issue an API token of /admin/v1 for a member; printed this once",
        env,
    )
    s.add_argument("--email", required=True, type=email_arg, help="the member's email")
    s.add_argument("--name", default="api", help="what the token is for (shown in listings)")
    _command(ssub, "list", cmd_staff_list, "list staff members", env)
    for name, func, summary in (
        ("disable", cmd_staff_disable, "disable a member: sessions end, tokens stop working"),
        ("enable", cmd_staff_enable, "enable a disabled member"),
    ):
        s = _command(ssub, name, func, summary, env)
        s.add_argument("--email", required=True, type=email_arg, help="the member's email")


# --- the parser ---

EPILOG = """\
Every setting is an environment variable (or a line of ./.env); the README's
configuration table lists them all (`smm-panel settings` prints it). The ones each
command reads are named in its own --help. Exit status: 0 done; 1 an error or a
configuration mistake, in one line on stderr (a malformed or unreachable DATABASE_URL
or REDIS_URL, a weak secret, a payment gateway without a conversion rate); 2 bad
arguments.
"""


def _command(
    sub: Any,
    name: str,
    func: Callable[[Settings, argparse.Namespace], None],
    summary: str,
    env: str,
) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(
        name,
        help=summary,
        description=f"{summary}.\n\nEnvironment: {env}." if env else summary + ".",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.set_defaults(func=func)
    return p


def _host_port(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default=None, help="address to listen on (default: HOST, 127.0.0.1)")
    p.add_argument(
        "--port", type=port_arg, default=None, help="port to listen on (default: PORT, 8000)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="smm-panel",
        description="SMM panel: the reseller API v2, the operator API and the worker.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", help="what to do (COMMAND --help: more)"
    )

    p = _command(
        sub,
        "run",
        cmd_run,
        "everything in one process: embedded PostgreSQL/Redis when DATABASE_URL/REDIS_URL "
        "are unset (the `embedded` extra), migrations, sandbox provider, demo catalog, API "
        "and worker",
        "DATABASE_URL, REDIS_URL, DATA_DIR (embedded data, generated SECRET_KEY and "
        f"ADMIN_TOKEN), {ENV_SECRETS}, HOST, PORT, SANDBOX_PORT, DEMO_BALANCE, {ENV_LOGS}",
    )
    _host_port(p)

    p = _command(
        sub,
        "serve",
        cmd_serve,
        "the HTTP API (uvicorn); refuses a missing or weak SECRET_KEY or a weak ADMIN_TOKEN",
        f"{ENV_DATABASE}, REDIS_URL, REDIS_PREFIX, {ENV_SECRETS}, HOST, PORT, "
        f"FORWARDED_ALLOW_IPS, PUBLIC_URL, RATE_LIMIT_PER_IP, RATE_LIMIT_PER_KEY, MAIL_URL, "
        f"CURRENCY_RATES and the payment gateways' settings (checked at start), {ENV_LOGS}, "
        "LOG_REQUESTS",
    )
    _host_port(p)
    p.add_argument(
        "--workers",
        type=workers_arg,
        default=1,
        help="API processes to run (default 1); each one logs the same way",
    )

    _command(
        sub,
        "worker",
        cmd_worker,
        "the background worker (arq): relays orders, syncs statuses, sweeps",
        f"{ENV_DATABASE}, REDIS_URL, REDIS_PREFIX, {ENV_SECRETS}, QUEUE_NAME, RELAY_CONCURRENCY, "
        f"STATUS_SYNC_SECONDS, WORKER_METRICS_PORT, {ENV_LOGS}",
    )
    _command(
        sub,
        "migrate",
        cmd_migrate,
        "apply the database migrations (to the code's head)",
        f"{ENV_DATABASE}, {ENV_SECRETS}, {ENV_LOGS}",
    )
    _command(
        sub,
        "check",
        cmd_check,
        "check the ledger invariants (balances equal their entries, order money matches); "
        "prints the report as JSON and exits 1 on any violation: run it after a restore",
        f"{ENV_DATABASE}, {ENV_LOGS}",
    )
    p = _command(
        sub,
        "settings",
        cmd_settings,
        "print the configuration table (every setting, its default and meaning) in Markdown, "
        "as the README shows it",
        "none read (it describes every setting, whatever their values)",
    )
    p.add_argument(
        "--markdown",
        action="store_true",
        help="print the table in Markdown (the default, and the only format)",
    )
    p.add_argument(
        "--readme",
        metavar="PATH",
        default=None,
        help="rewrite the table between its markers in this file (`make settings-table`)",
    )
    _command(
        sub,
        "secret",
        cmd_secret,
        "print a fresh strong value for SECRET_KEY or ADMIN_TOKEN",
        "",
    )
    _command(
        sub,
        "admin-token",
        cmd_secret,
        "print a fresh strong value (same as `secret`)",
        "",
    )
    _command(
        sub,
        "rotate-secret",
        cmd_rotate_secret,
        "re-encrypt every stored secret (provider API keys) under the current SECRET_KEY, "
        "reading with the older keys of SECRET_KEY_PREVIOUS; audited",
        f"{ENV_DATABASE}, {ENV_SECRETS}, {ENV_LOGS}",
    )

    p = _command(
        sub, "sandbox", cmd_sandbox, "the sandbox provider (a real API v2 server)", ENV_LOGS
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    p.add_argument("--port", type=port_arg, default=8001, help="port to listen on (8001)")
    p.add_argument("--config", default=None, help="JSON file with keys, services, behaviours")

    p = sub.add_parser(
        "user",
        help="user helpers (create, topup, rotate-key)",
        description="User helpers; each prints its result as one JSON object.",
    )
    usub = p.add_subparsers(
        dest="user_command", required=True, metavar="ACTION", help="what to do with a user"
    )
    env = f"{ENV_DATABASE}, {ENV_LOGS}"
    u = _command(
        usub, "create", cmd_user_create, "create a user; prints id and API key as JSON", env
    )
    u.add_argument("--email", required=True, type=email_arg, help="the user's email (unique)")
    u.add_argument(
        "--balance",
        type=balance_arg,
        default=None,
        help="initial balance credited as a deposit, a plain decimal >= 0",
    )
    u = _command(usub, "topup", cmd_user_topup, "credit a user's balance", env)
    u.add_argument("user_id", type=user_id_arg, help="the user's id")
    u.add_argument("amount", type=amount_arg, help="a plain decimal > 0, e.g. 25.50")
    u.add_argument("--reason", default="Top-up (CLI)", help="shown in the user's ledger")
    u.add_argument(
        "--payment-ref",
        default=None,
        help="your reference for the payment; repeating it credits nothing twice",
    )
    u = _command(
        usub, "rotate-key", cmd_user_key, "revoke a user's API keys and print a new one", env
    )
    u.add_argument("user_id", type=user_id_arg, help="the user's id")
    _staff_commands(sub)
    return parser


def _explain(exc: BaseException) -> str | None:
    """One line for the errors an operator causes or can fix; None for a real bug."""
    from sqlalchemy.exc import DBAPIError, IntegrityError

    from app.embedded import DataDirInUse
    from app.errors import DomainError
    from app.preflight import ConfigurationError

    if isinstance(exc, OperatorError | DomainError | DataDirInUse | ConfigurationError):
        return str(exc)
    if isinstance(exc, IntegrityError):
        return f"refused by the database: {str(exc.orig).splitlines()[0]}"
    if isinstance(exc, OSError | DBAPIError) or type(exc).__module__.startswith("asyncpg"):
        detail = str(getattr(exc, "orig", None) or exc).splitlines()[0] or type(exc).__name__
        return f"database unavailable: {detail}"
    if isinstance(exc, InvalidOperation):
        return "not a valid amount"
    return None


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        settings = get_settings()
    except ValueError as exc:  # pydantic's ValidationError: a malformed environment variable
        fail(f"configuration: {' '.join(str(exc).split())}")
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    _configure_logging(settings)
    try:
        args.func(settings, args)
    except Exception as exc:
        message = _explain(exc)
        if message is None:
            raise
        fail(message)


if __name__ == "__main__":
    main()
