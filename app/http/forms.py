"""Reading an action-style request (API v2, gateway notifications, invoices): query string,
form (urlencoded or multipart) or JSON object, all turned into a flat mapping of strings,
parsed strictly later."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

from fastapi import Request
from python_multipart.multipart import parse_options_header
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.types import Message

from app.errors import DomainError, IncorrectRequest

MAX_FIELDS = 200


class RequestTooLarge(DomainError):
    http_status = 422
    message = "Request too large"


def _as_text(value: Any) -> str | None:
    if isinstance(value, list):
        # `orders: [1, 2]` in a JSON body means the same as "1,2". One level only: a
        # nested list is no field value, and walking it could exhaust the stack.
        items = [_scalar_text(v) for v in value]
        return ",".join(i for i in items if i is not None)
    return _scalar_text(value)


def _scalar_text(value: Any) -> str | None:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, str | int | Decimal):
        return str(value)
    return None


def parse_json(body: bytes) -> Any:
    """A JSON document, or IncorrectRequest for anything unreadable, including nesting
    deep enough to exhaust the parser's stack (`[[[[…`)."""
    try:
        return json.loads(body, parse_float=Decimal)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise IncorrectRequest() from exc


async def read_fields(request: Request, max_bytes: int) -> dict[str, str]:
    fields = await _read(request, max_bytes)
    if any("\x00" in value for value in fields.values()):
        raise IncorrectRequest()  # NUL cannot be stored or relayed: no field may carry it
    return fields


async def _read(request: Request, max_bytes: int) -> dict[str, str]:
    fields: dict[str, str] = dict(request.query_params)
    if request.method != "POST":
        return fields
    for key, value in await read_body(request, max_bytes):
        text = _as_text(value)
        if text is not None:
            fields[key] = text
    return fields


async def read_body(request: Request, max_bytes: int) -> list[tuple[str, Any]]:
    """The body's fields as sent, in order: a JSON object's members (values as parsed:
    text, numbers as int or Decimal, lists, objects…) or a form's pairs (text, a repeated
    name repeated). IncorrectRequest when unreadable, RequestTooLarge past `max_bytes`."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise RequestTooLarge()
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await _body(request, max_bytes)
    if content_type == "multipart/form-data":
        return await _multipart(request, body)
    if not body:
        return []
    if content_type == "application/json" or (not content_type and body.lstrip()[:1] == b"{"):
        data = parse_json(body)
        if not isinstance(data, dict):
            raise IncorrectRequest()
        return [(str(key), value) for key, value in data.items()]
    try:
        return parse_qsl(body.decode(), keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except (ValueError, UnicodeDecodeError) as exc:
        raise IncorrectRequest() from exc


async def _body(request: Request, max_bytes: int) -> bytes:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise RequestTooLarge()
    return body


async def _multipart(request: Request, body: bytes) -> list[tuple[str, Any]]:
    """The fields of a whole multipart body. One that does not end with its closing
    delimiter (`--boundary--`) was cut short: its last part may be incomplete, so nothing
    of it is read (the parser would silently keep the parts before the cut)."""
    _, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary", b"")
    if not boundary or b"--" + boundary + b"--" not in body:
        raise IncorrectRequest()

    async def replay() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        form = await Request(request.scope, replay).form(max_files=0, max_fields=MAX_FIELDS)
    except (HTTPException, MultiPartException) as exc:
        # A file part, a bad boundary, too many fields: Starlette raises its own 400 here,
        # which would escape the protocol's error shape.
        raise IncorrectRequest() from exc
    return [(key, value) for key, value in form.multi_items() if isinstance(value, str)]


class TooManyIds(DomainError):
    http_status = 422

    def __init__(self, limit: int) -> None:
        super().__init__(f"Too many IDs: at most {limit} per request")


def split_ids(raw: str | None, limit: int) -> list[str]:
    ids = [part.strip() for part in (raw or "").split(",") if part.strip()]
    if len(ids) > limit:
        raise TooManyIds(limit)
    return ids


def as_id(text: str) -> int | None:
    """A positive integer id, or None for anything else."""
    if not text.isascii() or not text.isdigit() or len(text) > 18:
        return None
    value = int(text)
    return value if value > 0 else None
