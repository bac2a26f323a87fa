"""The storefront's languages: English (the words of the code) and Russian (locale/ru.po,
read once with babel), the choice of language for a request, and money and numbers in
the locale's format. API v2 error strings stay English on the wire; the pages show them
through `error_text`, which also knows the messages that carry a number or a field name."""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from functools import cache
from pathlib import Path

from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_decimal

from app.money import places_of

LANGUAGES = ("en", "ru")
DEFAULT = "en"
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


@cache
def catalog(language: str) -> dict[str, str]:
    """msgid → translation for a language (English is the identity)."""
    path = LOCALE_DIR / f"{language}.po"
    if language == DEFAULT or not path.exists():
        return {}
    with path.open("rb") as fp:
        messages = read_po(fp, locale=language)
    return {
        str(m.id): str(m.string)
        for m in messages
        if m.id and isinstance(m.id, str) and isinstance(m.string, str) and m.string
    }


Translate = Callable[..., str]


def translator(language: str) -> Translate:
    table = catalog(language)

    def gettext(message: str, **values: object) -> str:
        text = table.get(message, message)
        return text % values if values else text

    return gettext


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


def pick_language(chosen: str | None, accept_language: str | None) -> str:
    """The account's (or the switcher's) language, else the best of Accept-Language."""
    if chosen in LANGUAGES:
        return chosen
    ranked: list[tuple[float, str]] = []
    for part in (accept_language or "").split(","):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        ranked.append((quality, tag.strip().lower()[:2]))
    for _, tag in sorted(ranked, key=lambda r: -r[0]):
        if tag in LANGUAGES:
            return tag
    return DEFAULT


def plain(value: Decimal) -> Decimal:
    """At least two decimals, every digit the value has (never exponent notation)."""
    places = max(2, places_of(value))
    return value.quantize(Decimal(1).scaleb(-places))


def money(value: Decimal, currency: str, language: str) -> str:
    return format_currency(plain(value), currency, locale=language, decimal_quantization=False)


def number(value: Decimal | int, language: str) -> str:
    shown = plain(value) if isinstance(value, Decimal) else value
    return format_decimal(shown, locale=language, decimal_quantization=False)
