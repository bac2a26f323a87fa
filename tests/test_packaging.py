"""The package carries what it reads at run time: its migrations (found inside the package,
never in the working directory), the storefront's templates, static files and texts.

`.ci/plain-install` proves the same on a real wheel built with `python -m build`, installed
in a fresh virtualenv and run from an empty directory; these tests catch the mistake early.
"""

from __future__ import annotations

import asyncio
import fnmatch
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml
from alembic import command

from app import migrate
from tests.support.cli import ROOT, command_env

APP = ROOT / "app"


def _package_data() -> dict[str, list[str]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    data: dict[str, list[str]] = config["tool"]["setuptools"]["package-data"]
    return data


def _shipped(path: Path, package_data: dict[str, list[str]]) -> bool:
    for package, patterns in package_data.items():
        folder = ROOT.joinpath(*package.split("."))
        if folder in path.parents:
            inside = path.relative_to(folder).as_posix()
            if any(fnmatch.fnmatch(inside, pattern) for pattern in patterns):
                return True
    return False


def test_every_file_the_code_reads_is_package_data() -> None:
    package_data = _package_data()
    missing = [
        str(path.relative_to(ROOT))
        for path in sorted(APP.rglob("*"))
        if path.is_file()
        and path.suffix not in (".py", ".pyc")
        and "__pycache__" not in path.parts
        and not _shipped(path, package_data)
    ]
    assert missing == [], f"not in [tool.setuptools.package-data]: {missing}"


def test_migrations_live_inside_the_package() -> None:
    found = migrate.migrations_dir()
    assert found == APP / "migrations"
    assert (found / "env.py").is_file()
    assert sorted(p.name for p in found.glob("versions/*.py"))
    assert not (ROOT / "migrations").exists(), "migrations/ moved to app/migrations/"
    # The developers' alembic.ini points at the same folder.
    assert "script_location = %(here)s/app/migrations" in (ROOT / "alembic.ini").read_text()


def test_the_code_finds_its_migrations_from_any_directory(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", "from app import migrate; print(migrate.expected_revision())"],
        cwd=tmp_path,
        env=command_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == migrate.expected_revision()


async def test_the_models_and_the_migrations_agree(database_url: str) -> None:
    """`alembic check` on a database migrated to head: no operation left to generate."""
    await asyncio.to_thread(command.check, migrate.alembic_config(database_url))


def test_readme_makefile_pyproject_and_hooks_agree_on_the_checks() -> None:
    """What `make typecheck`, `make lint` and the coverage floor cover is said once in each
    place that runs or documents it, and the same everywhere."""
    makefile = (ROOT / "Makefile").read_text()
    hooks = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())

    typecheck = re.search(r"^typecheck:.*\n\t\$\(BIN\)/mypy (.+)$", makefile, re.MULTILINE)
    assert typecheck is not None
    checked = typecheck.group(1).split()
    assert checked == ["app", "workers", "sim", "tests"]
    entries = {h["id"]: h["entry"] for repo in hooks["repos"] for h in repo["hooks"]}
    assert entries["mypy"].split()[1:] == checked
    assert "`mypy --strict` on `app`, `workers`, `sim` and `tests`" in readme
    assert pyproject["tool"]["mypy"]["strict"] is True

    lint = re.search(r"^lint:.*\n((?:\t.+\n)+)", makefile, re.MULTILINE)
    assert lint is not None
    assert [line.strip() for line in lint.group(1).splitlines()] == [
        "$(BIN)/ruff check .",
        "$(BIN)/ruff format --check .",
        "$(BIN)/lint-imports",
    ]
    assert {"ruff", "ruff-format", "lint-imports"} <= set(entries)

    floor = re.search(r"^COVERAGE_FLOOR \?= (\d+)$", makefile, re.MULTILINE)
    assert floor is not None
    assert f"fails below {floor.group(1)} %" in readme
    assert pyproject["tool"]["coverage"]["run"]["source"] == ["app", "workers"]
    assert "coverage of `app/` and `workers/`" in readme
