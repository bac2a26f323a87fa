"""Reading a posted form: CSRF checked first, then plain string fields."""

from __future__ import annotations

from app.web.render import Visitor
from app.web.session import CSRF_FIELD, check_csrf

MAX_FIELD = 200_000


async def posted(who: Visitor) -> dict[str, str]:
    form = await who.request.form()
    fields = {k: v[:MAX_FIELD] for k, v in form.items() if isinstance(v, str)}
    check_csrf(who.services.settings, who.request, fields.pop(CSRF_FIELD, None))
    return fields
