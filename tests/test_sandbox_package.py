"""The sandbox provider is a tool beside the panel, not one of its domains: only the entry
points start it (`smm-panel sandbox`, `smm-panel run`), and it uses nothing of the panel
but its base modules (errors, money, the form reader), so it can never reach into the
panel's state."""

from __future__ import annotations

import ast
from pathlib import Path

import app

APP = Path(app.__file__).parent
# What the sandbox may use of the panel.
BASE = ("app.errors", "app.money", "app.http.forms", "app.sandbox")


def imports_of(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return {name for name in found if name.startswith("app")}


def test_only_the_entry_points_start_the_sandbox() -> None:
    users = {
        str(path.relative_to(APP))
        for path in APP.rglob("*.py")
        if path.parent.name != "sandbox"
        and any(name.startswith("app.sandbox") for name in imports_of(path))
    }
    assert users == {"cli.py", "runner.py"}


def test_the_sandbox_uses_only_the_panels_base_modules() -> None:
    used = set().union(*(imports_of(p) for p in (APP / "sandbox").glob("*.py")))
    assert used and all(name.startswith(BASE) for name in used), sorted(used)
