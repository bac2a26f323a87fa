"""The layering check of `make lint` (import-linter, configured in pyproject.toml) holds on
the code, and fails when a lower layer imports a higher one or two packages import each
other."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINT = Path(sys.executable).parent / "lint-imports"


def lint(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [str(LINT), "--config", str(tree / "pyproject.toml"), "--no-cache"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def copy_of_the_code(tmp_path: Path) -> Path:
    tree = tmp_path / "tree"
    for name in ("app", "workers"):
        shutil.copytree(ROOT / name, tree / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tree / "pyproject.toml")
    return tree


def test_the_code_keeps_its_layers(tmp_path: Path) -> None:
    result = lint(copy_of_the_code(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 kept, 0 broken" in result.stdout


def test_an_upward_import_breaks_the_build(tmp_path: Path) -> None:
    tree = copy_of_the_code(tmp_path)
    # A domain reaching up into the flows that orchestrate it.
    (tree / "app" / "ledger" / "planted.py").write_text("import app.flows.relay\n")
    result = lint(tree)
    assert result.returncode != 0
    assert "Layers only point down BROKEN" in result.stdout
    assert "app.ledger.planted -> app.flows.relay" in result.stdout


def test_two_packages_importing_each_other_break_the_build(tmp_path: Path) -> None:
    tree = copy_of_the_code(tmp_path)
    # accounts is below ledger; an import back up makes a cycle between the two.
    (tree / "app" / "accounts" / "planted.py").write_text("import app.ledger.service\n")
    result = lint(tree)
    assert result.returncode != 0
    assert "No two packages import each other BROKEN" in result.stdout


def test_the_console_importing_another_front_end_breaks_the_build(tmp_path: Path) -> None:
    tree = copy_of_the_code(tmp_path)
    # The console reusing a handler of the operator API instead of the function below it.
    (tree / "app" / "console" / "planted.py").write_text("import app.admin.router\n")
    result = lint(tree)
    assert result.returncode != 0
    assert "The console is a front end of its own BROKEN" in result.stdout
    assert "app.console.planted -> app.admin.router" in result.stdout
