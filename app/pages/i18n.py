"""Languages of the pages: English (the words of the code) and Russian (a front end's
`locale/ru.po`, read once with babel), the choice of language for a request, and money
and numbers in the locale's format."""

from __future__ import annotations

from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from pathlib import Path

from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_decimal, format_percent

from app.money import places_of

LANGUAGES = ("en", "ru")
DEFAULT = "en"

Translate = Callable[..., str]


@cache
def read_catalog(locale_dir: Path, language: str) -> dict[str, str]:
    """msgid → translation for a language from `<locale_dir>/<language>.po` and the
    catalogs of its parts beside it, `<language>-<part>.po` (English is the identity)."""
    if language == DEFAULT:
        return {}
    table: dict[str, str] = {}
    for path in (locale_dir / f"{language}.po", *sorted(locale_dir.glob(f"{language}-*.po"))):
        if not path.exists():
            continue
        with path.open("rb") as fp:
            messages = read_po(fp, locale=language)
        table.update(
            (str(m.id), str(m.string))
            for m in messages
            if m.id and isinstance(m.id, str) and isinstance(m.string, str) and m.string
        )
    return table


def translator_of(table: dict[str, str]) -> Translate:
    def gettext(message: str, **values: object) -> str:
        text = table.get(message, message)
        return text % values if values else text

    return gettext


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


CENT = Decimal("0.01")


def convert(value: Decimal, rate: Decimal) -> Decimal:
    """An amount of the panel's currency in another, `rate` being panel currency per unit
    of the other; shown to the cent (a reading, never a charge)."""
    return (value / rate).quantize(CENT, ROUND_HALF_UP)


def money(value: Decimal, currency: str, language: str) -> str:
    return format_currency(plain(value), currency, locale=language, decimal_quantization=False)


def number(value: Decimal | int, language: str) -> str:
    shown = plain(value) if isinstance(value, Decimal) else value
    return format_decimal(shown, locale=language, decimal_quantization=False)


def percent(share: Decimal, language: str) -> str:
    """A share (0.05) as the locale writes a percentage (5 %, 5 %)."""
    return str(format_percent(share, locale=language, decimal_quantization=False))
