"""Every front end is a view of the same commands: API v2, /client/v1, the storefront and
the admin API never import one another, reach the actions the commands compose only
through the commands (app/flows/commands), and the storefront's forms run in the request's
transaction (`Tx`), as the JSON APIs do, never in one opened by hand."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from fastapi.routing import APIRoute

import app
import app.flows.commands
from app.client.router import PARTS as CLIENT_PARTS
from app.http.tx import transaction
from app.web.router import PARTS as WEB_PARTS
from tests.support.layers import copy_of_the_code, lint

APP = Path(app.__file__).parent
FRONT_ENDS = ("api_v2", "client", "web", "admin")

# Which front ends offer each command (a command a front end offers and does not call
# would mean the front end does it some other way).
OFFERED: dict[str, set[str]] = {
    "ordering.place_order": {"api_v2", "client", "web"},
    "ordering.place_mass": {"client", "web"},
    "ordering.cancel_order": {"client", "web"},
    "ordering.cancel_orders": {"api_v2"},
    "ordering.request_refill": {"api_v2", "client", "web"},
    "ordering.request_refills": {"api_v2"},
    "support.open_ticket": {"client", "web"},
    "support.reply_ticket": {"client", "web"},
    "support.close_ticket": {"client", "web"},
    "support.request_review": {"client", "web"},
    "signup.sign_up": {"client", "web"},
}

# Storefront forms that take no request transaction, and why.
WITHOUT_TX = {
    # Cookies only: the admin token is compared, nothing is written.
    "/operator/signin",
    "/operator/signout",
    # The cookie notice's answer is a cookie of the visitor's; nothing is written.
    "/consent",
    # payments.open_invoice commits the invoice itself before it calls the gateway: no
    # transaction may stay open across that call.
    "/funds",
}


def modules_of(package: str) -> Iterator[tuple[str, Path]]:
    """(module name, file) of every module of `app.<package>`."""
    for path in sorted((APP / package).rglob("*.py")):
        parts = path.relative_to(APP.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        yield name, path


def imported(path: Path) -> Iterator[tuple[str, str | None, str]]:
    """(module, name or None, local alias) of every import of a file."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, None, alias.asname or alias.name
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                yield node.module, alias.name, alias.asname or alias.name


def front_end_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "app" and parts[1] in FRONT_ENDS else None


def test_no_front_end_imports_another() -> None:
    crossing = []
    for front_end in FRONT_ENDS:
        for name, path in modules_of(front_end):
            for module, member, _ in imported(path):
                target = front_end_of(f"{module}.{member}" if member else module)
                if target is not None and target != front_end:
                    crossing.append(f"{name} imports {module}.{member or ''}")
    assert crossing == []


def test_a_front_end_importing_another_breaks_the_build(tmp_path: Path) -> None:
    tree = copy_of_the_code(tmp_path)
    # The storefront calling /client/v1's handlers as plain functions.
    (tree / "app" / "web" / "planted.py").write_text("import app.client.router\n")
    result = lint(tree)
    assert result.returncode != 0
    assert "Layers only point down BROKEN" in result.stdout
    assert "app.web.planted -> app.client.router" in result.stdout


def command_modules() -> list[Any]:
    package = app.flows.commands
    return [
        importlib.import_module(f"{package.__name__}.{found.name}")
        for found in pkgutil.iter_modules(package.__path__)
    ]


def commands() -> dict[str, Callable[..., Any]]:
    """Every command: `<module>.<function>` -> the function."""
    found = {}
    for module in command_modules():
        short = module.__name__.rsplit(".", 1)[-1]
        for name, function in inspect.getmembers(module, inspect.iscoroutinefunction):
            if function.__module__ == module.__name__ and not name.startswith("_"):
                found[f"{short}.{name}"] = function
    return found


def calls(path: Path) -> set[tuple[str, str]]:
    """(module, function) of every call of a module's function in a file, through the
    names its imports gave them."""
    aliases = {alias: (module, member) for module, member, alias in imported(path)}
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            module, member = aliases.get(func.value.id, ("", None))
            found.add((f"{module}.{member}" if member else module, func.attr))
        elif isinstance(func, ast.Name) and func.id in aliases:
            module, member = aliases[func.id]
            found.add((module, member or func.id))
    return found


def test_every_front_end_calls_the_commands_it_offers() -> None:
    called: dict[str, set[str]] = {name: set() for name in commands()}
    for front_end in FRONT_ENDS:
        for _, path in modules_of(front_end):
            for module, function in calls(path):
                if module.startswith("app.flows.commands."):
                    called[f"{module.rsplit('.', 1)[-1]}.{function}"].add(front_end)
    assert set(OFFERED) == set(called), "a command no front end calls, or one missing here"
    assert called == OFFERED


def test_no_front_end_composes_what_a_command_composes() -> None:
    """The domain functions a command composes are called by commands only."""
    wrapped = {(f.__module__, f.__name__) for m in command_modules() for f in m.WRAPS}
    composing = []
    for front_end in FRONT_ENDS:
        for name, path in modules_of(front_end):
            composing += [f"{name} calls {m}.{f}" for m, f in calls(path) & wrapped]
    assert composing == []


def _takes_tx(route: APIRoute) -> bool:
    """The route depends on the request's transaction (`Tx`, directly or through `Jobs`)."""
    pending = list(route.dependant.dependencies)
    while pending:
        dependency = pending.pop()
        if dependency.call is transaction:
            return True
        pending += dependency.dependencies
    return False


def test_every_storefront_form_runs_in_the_request_transaction() -> None:
    posts = [r for part in WEB_PARTS for r in part.routes if isinstance(r, APIRoute)]
    posts = [r for r in posts if "POST" in (r.methods or set())]
    assert len(posts) >= 20
    without = {r.path for r in posts if not _takes_tx(r)}
    assert without == WITHOUT_TX


def test_every_client_action_runs_in_the_request_transaction() -> None:
    writes = [
        r
        for part in CLIENT_PARTS
        for r in part.routes
        if isinstance(r, APIRoute) and (r.methods or set()) & {"POST", "PUT", "PATCH", "DELETE"}
    ]
    assert len(writes) >= 20
    without = {r.path for r in writes if not _takes_tx(r)}
    assert without == {"/deposits"}  # payments.open_invoice, as /web/funds


def test_the_storefront_opens_no_transaction_by_hand() -> None:
    opened = []
    for name, path in modules_of("web"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("transaction", "begin", "commit")
            ):
                opened.append(f"{name}:{getattr(node, 'lineno', 0)}")
    assert opened == []
