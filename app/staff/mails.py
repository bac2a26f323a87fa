"""The staff mails, plain text, in English and Russian (the member's `language`)."""

from __future__ import annotations

from app.mail.service import Mail

TEXTS: dict[str, dict[str, tuple[str, str]]] = {
    "invite": {
        "en": (
            "Your staff account on the panel",
            "A staff account ({role}) was opened for you on the panel.\n\nTo set your "
            "password, open:\n{link}\n\nThen sign in at {login}; the first sign-in sets up "
            "your two-factor codes. The link is valid for {hours} hours.\n",
        ),
        "ru": (
            "Ваша учётная запись сотрудника в панели",
            "Для вас открыта учётная запись сотрудника ({role}).\n\nЧтобы задать пароль, "
            "откройте ссылку:\n{link}\n\nЗатем войдите на {login}; при первом входе "
            "настраиваются двухфакторные коды. Ссылка действует {hours} ч.\n",
        ),
    },
}


def compose(kind: str, language: str, to: str, **values: object) -> Mail:
    subject, body = TEXTS[kind].get(language, TEXTS[kind]["en"])
    return Mail(to, subject, body.format(**values))
