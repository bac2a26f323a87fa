"""Running Alembic migrations from code (CLI, embedded default, tests).

The migrations travel inside the package (`app/migrations`, found with importlib.resources),
so an installed panel migrates from any working directory: nothing is read from the
current directory. The repository's `alembic.ini` points at the same folder for developers
(`alembic revision --autogenerate`, `alembic check`); the configuration the code builds
here needs no ini file.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

# As in alembic.ini: new revision files are named by date, so they list in order.
FILE_TEMPLATE = "%%(year)d%%(month).2d%%(day).2d_%%(rev)s_%%(slug)s"


class MigrationsMissing(RuntimeError):
    """The package was installed without its migrations (a broken build)."""


def migrations_dir() -> Path:
    """The `app/migrations` folder of the installed package."""
    found = Path(str(files("app") / "migrations"))
    if not (found / "env.py").is_file() or not (found / "versions").is_dir():
        raise MigrationsMissing(
            f"the package's migrations are missing ({found}): reinstall smm-panel"
        )
    return found


def alembic_config(url: str | None = None) -> Config:
    """Alembic's configuration for the package's migrations (and `url`, when given)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    cfg.set_main_option("path_separator", "os")
    cfg.set_main_option("file_template", FILE_TEMPLATE)
    if url is not None:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["configure_logger"] = False
    return cfg


def upgrade(url: str) -> None:
    command.upgrade(alembic_config(url), "head")


def expected_revisions() -> frozenset[str]:
    """The head revision(s) of the code's migrations: what the schema must be at."""
    return frozenset(ScriptDirectory.from_config(alembic_config()).get_heads())


def expected_revision() -> str:
    return ",".join(sorted(expected_revisions()))


# The database's applied revision(s), read by readiness (`alembic_version` is Alembic's).
CURRENT_REVISION_SQL = "SELECT version_num FROM alembic_version"
