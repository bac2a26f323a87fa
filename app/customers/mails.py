"""The customer mails, plain text, in English and Russian (the user's `language`)."""

from __future__ import annotations

from app.mail.service import Mail

TEXTS: dict[str, dict[str, tuple[str, str]]] = {
    "verify": {
        "en": (
            "Confirm your email",
            "Welcome to the panel.\n\nTo confirm your email address, open:\n{link}\n\n"
            "The link is valid for {hours} hours. If you did not register, ignore this mail.\n",
        ),
        "ru": (
            "Подтвердите адрес почты",
            "Добро пожаловать в панель.\n\nЧтобы подтвердить адрес, откройте ссылку:\n{link}\n\n"
            "Ссылка действует {hours} ч. Если вы не регистрировались, просто удалите письмо.\n",
        ),
    },
    "reset": {
        "en": (
            "Reset your password",
            "Someone asked to reset the password of your account.\n\nTo choose a new one, "
            "open:\n{link}\n\n"
            "The link is valid for {minutes} minutes. If it was not you, ignore this mail: "
            "your password stays as it is.\n",
        ),
        "ru": (
            "Сброс пароля",
            "Кто-то запросил сброс пароля вашей учётной записи.\n\nЧтобы задать новый пароль, "
            "откройте ссылку:\n{link}\n\nСсылка действует {minutes} мин. "
            "Если это были не вы, удалите письмо: пароль не изменится.\n",
        ),
    },
    "invite": {
        "en": (
            "Your account on the panel",
            "An account was opened for you on the panel.\n\nTo set your password, open:\n"
            "{link}\n\n"
            "The link is valid for {days} days.\n",
        ),
        "ru": (
            "Ваша учётная запись в панели",
            "Для вас открыта учётная запись в панели.\n\nЧтобы задать пароль, откройте "
            "ссылку:\n{link}\n\nСсылка действует {days} дн.\n",
        ),
    },
    "lockout": {
        "en": (
            "Sign-in to your account was locked",
            "There were {failures} failed attempts to sign in to your account, so sign-in is "
            "locked for {seconds} seconds; further failures lock it longer.\n\nIf it was not "
            "you, consider changing your password and turning on two-factor sign-in.\n",
        ),
        "ru": (
            "Вход в учётную запись заблокирован",
            "Было {failures} неудачных попыток входа в вашу учётную запись, поэтому вход "
            "заблокирован на {seconds} с; новые неудачные попытки продлевают блокировку.\n\n"
            "Если это были не вы, смените пароль и включите двухфакторный вход.\n",
        ),
    },
}


def compose(kind: str, language: str, to: str, **values: object) -> Mail:
    subject, body = TEXTS[kind].get(language) or TEXTS[kind]["en"]
    return Mail(to=to, subject=subject, body=body.format(**values))
