"""Reading a posted form: CSRF checked first, then plain string fields (and, for an
upload, its files)."""

from __future__ import annotations

from starlette.datastructures import UploadFile

from app.pages.csrf import CSRF_FIELD, check_csrf
from app.web.render import Visitor

MAX_FIELD = 200_000


async def posted(who: Visitor) -> dict[str, str]:
    form = await who.request.form()
    fields = {k: v[:MAX_FIELD] for k, v in form.items() if isinstance(v, str)}
    check_csrf(who.services.settings, who.request, fields.pop(CSRF_FIELD, None))
    return fields


async def posted_with_files(who: Visitor) -> tuple[dict[str, str], dict[str, UploadFile]]:
    form = await who.request.form()
    fields = {k: v[:MAX_FIELD] for k, v in form.items() if isinstance(v, str)}
    check_csrf(who.services.settings, who.request, fields.pop(CSRF_FIELD, None))
    return fields, {k: v for k, v in form.items() if isinstance(v, UploadFile)}
