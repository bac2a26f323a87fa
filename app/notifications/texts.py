"""What a notification says, in the customer's language (English and Russian): a subject
(the mail's) and a body (the mail's and the Telegram message's)."""

from __future__ import annotations

from app.notifications.models import BALANCE_LOW, ORDER_CANCELED, ORDER_COMPLETED, ORDER_PARTIAL

SUBJECTS = {
    "en": {
        ORDER_COMPLETED: "Order {order} is completed",
        ORDER_PARTIAL: "Order {order} is partially completed",
        ORDER_CANCELED: "Order {order} is canceled",
        BALANCE_LOW: "Your balance is low",
    },
    "ru": {
        ORDER_COMPLETED: "Заказ {order} выполнен",
        ORDER_PARTIAL: "Заказ {order} выполнен частично",
        ORDER_CANCELED: "Заказ {order} отменён",
        BALANCE_LOW: "Баланс почти исчерпан",
    },
}
BODIES = {
    "en": {
        ORDER_COMPLETED: "Your order {order} ({service}) is completed.\n\n{link}",
        ORDER_PARTIAL: "Your order {order} ({service}) is partially completed: {remains} of "
        "{quantity} were not delivered, and {refunded} is refunded to your balance.\n\n{link}",
        ORDER_CANCELED: "Your order {order} ({service}) is canceled; {refunded} is refunded "
        "to your balance.\n\n{link}",
        BALANCE_LOW: "Your balance is {balance}, below the {below} you set. Add funds to keep "
        "ordering:\n\n{link}",
    },
    "ru": {
        ORDER_COMPLETED: "Ваш заказ {order} ({service}) выполнен.\n\n{link}",
        ORDER_PARTIAL: "Ваш заказ {order} ({service}) выполнен частично: не доставлено "
        "{remains} из {quantity}, {refunded} возвращено на баланс.\n\n{link}",
        ORDER_CANCELED: "Ваш заказ {order} ({service}) отменён; {refunded} возвращено на "
        "баланс.\n\n{link}",
        BALANCE_LOW: "На вашем балансе {balance} — меньше заданных {below}. Пополните баланс, "
        "чтобы продолжать заказывать:\n\n{link}",
    },
}
LINKED = {
    "en": "Linked: {panel} will send your notifications here.",
    "ru": "Готово: {panel} будет присылать уведомления сюда.",
}
UNKNOWN_CODE = {
    "en": "This code is unknown or has expired. Get a new one on your account page.",
    "ru": "Код неизвестен или устарел. Получите новый на странице аккаунта.",
}


def subject(language: str, event: str, **values: object) -> str:
    return SUBJECTS.get(language, SUBJECTS["en"])[event].format(**values)


def body(language: str, event: str, **values: object) -> str:
    return BODIES.get(language, BODIES["en"])[event].format(**values)
