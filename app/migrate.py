"""Running Alembic migrations from code (CLI, embedded default, tests)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

ROOT = Path(__file__).resolve().parent.parent


def project_root() -> Path:
    """The source tree in development; the working directory in an installed image."""
    for candidate in (ROOT, Path.cwd()):
        if (candidate / "alembic.ini").exists() and (candidate / "migrations").is_dir():
            return candidate
    raise RuntimeError("alembic.ini and migrations/ not found")


def alembic_config(url: str) -> Config:
    root = project_root()
    cfg = Config(str(root / "alembic.ini"))
    cfg.set_main_option("script_location", str(root / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["configure_logger"] = False
    return cfg


def upgrade(url: str) -> None:
    command.upgrade(alembic_config(url), "head")


def expected_revisions() -> frozenset[str]:
    """The head revision(s) of the code's migrations: what the schema must be at."""
    from alembic.script import ScriptDirectory

    root = project_root()
    cfg = Config(str(root / "alembic.ini"))
    cfg.set_main_option("script_location", str(root / "migrations"))
    return frozenset(ScriptDirectory.from_config(cfg).get_heads())


def expected_revision() -> str:
    return ",".join(sorted(expected_revisions()))


# The database's applied revision(s), read by readiness (`alembic_version` is Alembic's).
CURRENT_REVISION_SQL = "SELECT version_num FROM alembic_version"
