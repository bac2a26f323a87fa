"""README's configuration table is printed from the settings class: every setting is in it,
with its default and the meaning written beside the field, and nothing else is."""

from __future__ import annotations

import re

from app.settings import TABLE_BEGIN, TABLE_END, Settings, settings_table, with_settings_table
from tests.support.cli import ROOT, command_env, smm_panel

README = ROOT / "README.md"


def test_every_setting_is_described_in_the_class() -> None:
    undescribed = [name for name, f in Settings.model_fields.items() if not f.description]
    assert undescribed == []


def test_the_readme_table_is_the_generated_one() -> None:
    """Fails while a setting is missing from README, or documented otherwise than in
    app/settings.py: run `make settings-table`."""
    readme = README.read_text(encoding="utf-8")
    assert readme.count(TABLE_BEGIN) == 1 and readme.count(TABLE_END) == 1
    assert with_settings_table(readme) == readme, "README is stale: run `make settings-table`"
    block = readme[readme.index(TABLE_BEGIN) : readme.index(TABLE_END)]
    listed = re.findall(r"^\| `([A-Z0-9_]+)` \|", block, re.MULTILINE)
    assert listed == [name.upper() for name in Settings.model_fields]


def test_a_setting_missing_from_the_readme_is_caught() -> None:
    readme = README.read_text(encoding="utf-8")
    without_mail = "\n".join(
        line for line in readme.splitlines() if not line.startswith("| `MAIL_URL` |")
    )
    assert with_settings_table(without_mail) != without_mail
    assert "| `MAIL_URL` | `console` |" in with_settings_table(without_mail)


def test_the_command_prints_the_table() -> None:
    printed = smm_panel("settings", "--markdown", env=command_env())
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout == settings_table()
    row = "| `SUPPORT_NOTIFY_EMAIL` | unset | operators' address mailed for every new support ticket |"
    assert row in printed.stdout.splitlines()


def test_the_makefile_regenerates_it() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert "settings-table:" in makefile
    assert "smm-panel settings --readme README.md" in makefile
