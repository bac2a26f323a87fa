"""Traffic analytics (Yandex.Metrica, Google Analytics) and the support chat (Chaport) on
the storefront, as the Privacy Policy describes them (2.1.5, 3.1.2–3.1.3).

Off by default. The operator sets a counter id, a measurement id or an app id; a visitor
then sees a cookie notice, and only once they accept it (a cookie keeps the choice, which
the footer lets them change) do the pages load the scripts, with a Content-Security-Policy
that allows exactly the hosts of the services switched on. The pages with the sign-in,
two-factor, password and payment forms never load them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.errors import DomainError

METRICA_ID = re.compile(r"^[0-9]{1,12}$")
GA_ID = re.compile(r"^G-[A-Z0-9]{4,16}$")
CHAPORT_ID = re.compile(r"^[a-f0-9]{24}$")
FIELDS = ("metrica_id", "ga_id", "chaport_id")

# Each service's hosts, by CSP directive.
HOSTS: dict[str, dict[str, tuple[str, ...]]] = {
    "metrica_id": {
        "script-src": ("https://mc.yandex.ru",),
        "connect-src": ("https://mc.yandex.ru",),
        "img-src": ("https://mc.yandex.ru",),
        "frame-src": ("https://mc.yandex.ru",),
    },
    "ga_id": {
        "script-src": ("https://www.googletagmanager.com",),
        "connect-src": (
            "https://www.google-analytics.com",
            "https://region1.google-analytics.com",
        ),
        "img-src": ("https://www.google-analytics.com", "https://www.googletagmanager.com"),
    },
    "chaport_id": {
        "script-src": ("https://app.chaport.com",),
        "connect-src": ("https://app.chaport.com", "wss://app.chaport.com"),
        "img-src": ("https://app.chaport.com",),
        "style-src": ("https://app.chaport.com",),
        "frame-src": ("https://app.chaport.com",),
        "font-src": ("https://app.chaport.com",),
    },
}


class AnalyticsIdRefused(DomainError):
    http_status = 422
    message = (
        "Analytics ids: a Metrica counter is digits, a GA measurement id is G-XXXX, "
        "a Chaport app id is 24 hexadecimal characters"
    )


def clean_id(field: str, value: str | None) -> str | None:
    """An id as kept (None: the service is off)."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    pattern = {"metrica_id": METRICA_ID, "ga_id": GA_ID, "chaport_id": CHAPORT_ID}[field]
    if not pattern.match(text):
        raise AnalyticsIdRefused()
    return text


@dataclass(frozen=True)
class Analytics:
    """The services the operator switched on (None: off)."""

    metrica_id: str | None = None
    ga_id: str | None = None
    chaport_id: str | None = None

    @property
    def on(self) -> bool:
        return any((self.metrica_id, self.ga_id, self.chaport_id))

    def csp(self, base: str) -> str:
        """`base` with the hosts of exactly the services switched on added."""
        added: dict[str, list[str]] = {}
        for field in FIELDS:
            if getattr(self, field):
                for directive, hosts in HOSTS[field].items():
                    added.setdefault(directive, []).extend(hosts)
        parts = []
        for part in base.split("; "):
            directive = part.split(" ", 1)[0]
            extra = added.pop(directive, [])
            parts.append(" ".join([part, *dict.fromkeys(extra)]))
        parts += [" ".join([d, *dict.fromkeys(h)]) for d, h in added.items()]
        return "; ".join(parts)
