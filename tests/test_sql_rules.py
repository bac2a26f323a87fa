"""The rules the SQL of the project keeps, checked on the code: every statement of a
domain's `sql.py` has a named twin test; a state name or a ledger kind reaches SQL only
through its Python constant (never spelled inside a statement); the largest id is one
constant."""

from __future__ import annotations

import ast
import importlib
import re
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import TextClause

import app
from app.db import MAX_ID

ROOT = Path(app.__file__).parent.parent
APP = ROOT / "app"
TESTS = ROOT / "tests"
STATEMENT = re.compile(r"^\s*(SELECT|WITH|UPDATE|INSERT|DELETE)\b", re.IGNORECASE)
# A quoted word inside SQL: 'charge', 'In progress'.
QUOTED = re.compile(r"'([A-Za-z_][A-Za-z_ ]*)'")


def sql_modules() -> list[Path]:
    return sorted(APP.rglob("sql.py"))


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


def statements_of(path: Path) -> dict[str, list[str]]:
    """Every statement a sql.py module defines: its name -> the statement texts under it
    (a constant, or the statements inside a table of them)."""
    module = importlib.import_module(module_name(path))
    found: dict[str, list[str]] = {}
    for name, value in vars(module).items():
        if not name.isupper():
            continue
        texts = [t for t in _texts(value) if STATEMENT.match(t)]
        if texts:
            found[name] = texts
    return found


def _texts(value: object) -> Iterator[str]:
    if isinstance(value, TextClause):
        yield value.text
    elif isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _texts(item)
    elif isinstance(value, tuple):
        for item in value:
            yield from _texts(item)


def twin_tests() -> dict[str, set[str]]:
    """Each test function named as a twin test -> the names its name and body mention."""
    found: dict[str, set[str]] = {}
    for path in TESTS.glob("test_*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and "twin" in node.name:
                named = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
                named |= {n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)}
                found[f"{path.name}::{node.name}"] = named | {node.name}
    return found


def test_every_statement_of_a_sql_module_has_a_named_twin_test() -> None:
    """A statement restating a Python rule is kept equal to it by a test named as its twin
    that uses it by name (or whose name names it: test_add_order_sql_… for ADD_ORDER)."""
    twins = twin_tests()
    missing = []
    for path in sql_modules():
        for name in statements_of(path):
            covered = any(
                name in named or name.lower() in test.split("::")[1]
                for test, named in twins.items()
            )
            if not covered:
                missing.append(f"{module_name(path)}.{name}")
    assert sum(len(statements_of(p)) for p in sql_modules()) >= 20
    assert missing == []


def constant_values() -> dict[str, str]:
    """Every value the models name as a constant (state names, kinds, actions…): value ->
    where it is named."""
    found: dict[str, str] = {}
    for path in sorted(APP.rglob("models.py")):
        module = importlib.import_module(module_name(path))
        for name, value in vars(module).items():
            if name.isupper() and isinstance(value, str) and QUOTED.fullmatch(f"'{value}'"):
                found.setdefault(value, f"{module.__name__}.{name}")
    return found


def literal_parts(path: Path) -> Iterator[tuple[int, str]]:
    """(line, text) of every literal string written in a module's source: the parts an
    f-string writes out, not what it interpolates."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.lineno, node.value


def test_state_names_and_ledger_kinds_reach_sql_only_through_constants() -> None:
    constants = constant_values()
    assert {"charge", "refund", "Pending", "queued", "sent", "In progress"} <= set(constants)
    spelled = []
    for path in sql_modules():
        for line, text in literal_parts(path):
            for word in QUOTED.findall(text):
                if word in constants:
                    spelled.append(f"{module_name(path)}:{line} '{word}' ({constants[word]})")
    assert spelled == []


def test_the_largest_id_is_one_constant() -> None:
    assert MAX_ID == 2**63 - 1
    written = re.compile(r"2\s*\*\*\s*63|9223372036854775807")
    places = [
        str(path.relative_to(ROOT))
        for folder in ("app", "workers")
        for path in (ROOT / folder).rglob("*.py")
        for line in path.read_text().splitlines()
        if written.search(line)
    ]
    assert places == ["app/db.py"]
