"""The storefront's languages: English (the words of the code) and Russian (locale/ru.po,
read once with babel); choosing a language and the money and number formats are shared
with the console (app/pages/i18n.py). API v2 error strings stay English on the wire; the
pages show them through `error_text`, which also knows the messages that carry a number
or a field name."""

from __future__ import annotations

import re
from pathlib import Path

from app.pages.i18n import DEFAULT as DEFAULT
from app.pages.i18n import LANGUAGES as LANGUAGES
from app.pages.i18n import Translate as Translate
from app.pages.i18n import convert as convert
from app.pages.i18n import money as money
from app.pages.i18n import number as number
from app.pages.i18n import percent as percent
from app.pages.i18n import pick_language as pick_language
from app.pages.i18n import plain as plain
from app.pages.i18n import read_catalog, translator_of

LOCALE_DIR = Path(__file__).parent / "locale"

# API messages that carry a value: (pattern on the English wire string, msgid).
PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^Quantity less than minimal (?P<n>\d+)$"), "Quantity less than minimal %(n)s"),
    (re.compile(r"^Quantity more than maximal (?P<n>\d+)$"), "Quantity more than maximal %(n)s"),
    (
        re.compile(r"^Quantity must be a multiple of (?P<n>\d+)$"),
        "Quantity must be a multiple of %(n)s",
    ),
    (re.compile(r"^Too many lines \(at most (?P<n>\d+)\)$"), "Too many lines (at most %(n)s)"),
    (re.compile(r"^Incorrect (?P<name>[a-z_]+)$"), "Incorrect %(name)s"),
)


def catalog(language: str) -> dict[str, str]:
    """msgid → translation for a language (English is the identity)."""
    return read_catalog(LOCALE_DIR, language)


def translator(language: str) -> Translate:
    return translator_of(catalog(language))


def error_text(language: str, message: str) -> str:
    """A domain error's English message in the page's language."""
    table = catalog(language)
    if message in table or language == DEFAULT:
        return table.get(message, message)
    for pattern, msgid in PATTERNS:
        found = pattern.match(message)
        if found and msgid in table:
            values = found.groupdict()
            if "name" in values:
                values["name"] = table.get(f"field:{values['name']}", values["name"])
            return table[msgid] % values
    return message
