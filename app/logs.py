"""Logging for every process the same way: one JSON object per line, or coloured text.

`configure_logging` is called by every entry point (the CLI, and the app factory that
uvicorn calls in each `serve --workers N` process), so no process writes unformatted lines:
uvicorn's own loggers, warnings and uncaught exceptions all go through the one handler.
JSON when LOG_JSON=true or when the stream is not a terminal; coloured text otherwise.
Secrets never reach the logs: keys are never passed to a logger, and fields named like a
secret are masked anyway.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from contextvars import ContextVar
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, TextIO

# The id of the request being served, set by the HTTP middleware (app/http/observability).
REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)

_RESERVED = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "color_message",  # uvicorn's own coloured copy of the message
    "taskName",
}
_SECRET_FIELDS = {"key", "api_key", "token", "password", "secret", "authorization"}


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    return {
        name: "***" if name.lower() in _SECRET_FIELDS else value
        for name, value in record.__dict__.items()
        if name not in _RESERVED and not name.startswith("_")
    }


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        body: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            "pid": record.process,
        }
        body.update(_fields(record))
        if record.exc_info:
            body["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            body["stack"] = record.stack_info
        return json.dumps(body, default=str)


_COLOURS = {
    "DEBUG": "\033[2m",
    "INFO": "\033[32m",
    "WARNING": "\033[33m",
    "ERROR": "\033[31m",
    "CRITICAL": "\033[1;31m",
}
_RESET = "\033[0m"


class TextFormatter(logging.Formatter):
    """`12:00:01 INFO  app.http request method=POST status=200` (coloured levels)."""

    def __init__(self, *, colour: bool) -> None:
        super().__init__()
        self.colour = colour

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        level = f"{record.levelname:<7}"
        if self.colour:
            level = f"{_COLOURS.get(record.levelname, '')}{level}{_RESET}"
        extra = " ".join(f"{k}={v}" for k, v in _fields(record).items())
        line = f"{when} {level} {record.name} {record.getMessage()}"
        if extra:
            line += f"  {extra}" if not self.colour else f"  \033[2m{extra}{_RESET}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


_default_factory = logging.getLogRecordFactory()


def _record_with_request_id(*args: Any, **kwargs: Any) -> logging.LogRecord:
    """Every record made while a request is served carries its id (lines about an order
    carry `order_id` as a field of their own)."""
    record = _default_factory(*args, **kwargs)
    request_id = REQUEST_ID.get()
    if request_id is not None:
        record.request_id = request_id
    return record


def _log_uncaught(
    kind: type[BaseException], value: BaseException, tb: TracebackType | None
) -> None:
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, value, tb)
        return
    logging.getLogger("smm_panel").critical("uncaught exception", exc_info=(kind, value, tb))


def _log_uncaught_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_value is None:
        return
    logging.getLogger("smm_panel").critical(
        "uncaught exception in a thread",
        exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
    )


def wants_json(json_format: bool | None, stream: TextIO) -> bool:
    if json_format is not None:
        return json_format
    try:
        return not stream.isatty()
    except (AttributeError, ValueError):
        return True


def configure_logging(
    level: str = "INFO", *, json_format: bool | None = True, stream: TextIO | None = None
) -> None:
    """Idempotent: one handler on the root logger, every other logger propagating to it."""
    out = stream or sys.stderr
    handler = logging.StreamHandler(out)
    if wants_json(json_format, out):
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter(colour=not wants_json(None, out)))
    logging.setLogRecordFactory(_record_with_request_id)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # uvicorn's loggers go through the same handler (no plain-text lines of their own).
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "arq", "alembic"):
        named = logging.getLogger(name)
        named.handlers[:] = []
        named.propagate = True
    # arq reports every job at INFO: useful when debugging, noise otherwise.
    logging.getLogger("arq").setLevel(max(logging.WARNING, root.level))
    # Set-up chatter of the migration plugins and the embedded PostgreSQL.
    for name in ("alembic.runtime.plugins", "pgserver"):
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
    logging.captureWarnings(True)
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_thread
