"""The receipt mail, plain text, in English and Russian (the user's language)."""

from __future__ import annotations

from app.mail.service import Mail

TEXTS: dict[str, tuple[str, str]] = {
    "en": (
        "Your receipt",
        "Your deposit of {amount} is registered with the tax service.\n\nThe receipt:\n{url}\n",
    ),
    "ru": (
        "Ваш чек",
        "Ваше пополнение на {amount} зарегистрировано в налоговой службе.\n\nЧек:\n{url}\n",
    ),
}


def compose(language: str, to: str, *, url: str, amount: str) -> Mail:
    subject, body = TEXTS.get(language) or TEXTS["en"]
    return Mail(to=to, subject=subject, body=body.format(url=url, amount=amount))
