"""Structured JSON logs; secrets never reach them (keys are never passed to a logger)."""

from __future__ import annotations

import json
import logging
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

# The id of the request being served, set by the HTTP middleware (app/http/observability).
REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)

_RESERVED = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message"}
_SECRET_FIELDS = {"key", "api_key", "token", "password", "secret", "authorization"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        body: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for name, value in record.__dict__.items():
            if name in _RESERVED or name.startswith("_"):
                continue
            body[name] = "***" if name.lower() in _SECRET_FIELDS else value
        if record.exc_info:
            body["exc"] = self.formatException(record.exc_info)
        return json.dumps(body, default=str)


_default_factory = logging.getLogRecordFactory()


def _record_with_request_id(*args: Any, **kwargs: Any) -> logging.LogRecord:
    """Every record made while a request is served carries its id."""
    record = _default_factory(*args, **kwargs)
    request_id = REQUEST_ID.get()
    if request_id is not None:
        record.request_id = request_id
    return record


def configure_logging(level: str = "INFO", *, json_format: bool = True) -> None:
    handler = logging.StreamHandler()
    if json_format:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    logging.setLogRecordFactory(_record_with_request_id)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # arq reports every job at INFO: useful when debugging, noise otherwise.
    logging.getLogger("arq").setLevel(max(logging.WARNING, root.level))
