"""Logging for every process the same way: one JSON object per line, or coloured text.

`configure_logging` is called by every entry point (the CLI, and the app factory that
uvicorn calls in each `serve --workers N` process), so no process writes unformatted lines:
uvicorn's own loggers, warnings and uncaught exceptions all go through the one handler.
JSON when LOG_JSON=true or when the stream is not a terminal; coloured text otherwise.
Secrets never reach the logs: keys are never passed to a logger, and fields named like a
secret are masked anyway.

One line per HTTP request, whatever the start (`serve`, `serve --workers N`, `run`, uvicorn
itself): the panel's own request line (app/http/observability.py); uvicorn's access log is
switched off here, in every process.

Lines are formatted and written off the event loop: a logger call only makes the record and
puts it on a queue (`QueueHandler`); one thread per process (`QueueListener`) formats it
(JSON by orjson) and writes it. The thread is drained and stopped at exit, so the last lines
(an uncaught traceback) are still written.

The queue (`Gathered`) does not wake the thread for every record: a request line waits up
to FLUSH_SECONDS for others to gather, and the thread formats and writes them in one go. A
thread woken for each line costs a system call and a hand-over of the interpreter's lock
per request, both ways, which was most of a request line's cost under load; a warning or
worse, a burst of BATCH_LINES lines or the stop wake it at once.
"""

from __future__ import annotations

import atexit
import collections
import copy
import json
import logging
import queue
import sys
import threading
from contextvars import ContextVar
from datetime import UTC, datetime
from logging.handlers import QueueHandler, QueueListener
from types import TracebackType
from typing import Any, TextIO

import orjson

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


def _traceback(formatter: logging.Formatter, record: logging.LogRecord) -> str | None:
    """The record's traceback as text (formatted already when it crossed the queue)."""
    if record.exc_info:
        return formatter.formatException(record.exc_info)
    return record.exc_text or None


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
        exc = _traceback(self, record)
        if exc:
            body["exc"] = exc
        if record.stack_info:
            body["stack"] = record.stack_info
        try:
            return orjson.dumps(body, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
        except TypeError:  # what orjson refuses (an integer past 64 bits): the slow way
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
        exc = _traceback(self, record)
        if exc:
            line += "\n" + exc
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


class Handoff(QueueHandler):
    """Puts a record on the writer's queue, with what must be read on the caller's thread
    made final: the message with its arguments merged, the traceback as text. A record
    with neither (the request line) crosses as it is."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        if not record.args and not record.exc_info:
            return record
        record = copy.copy(record)  # other handlers (a test's capture) keep the original
        record.msg = record.getMessage()
        record.args = None
        if record.exc_info:
            record.exc_text = _PLAIN.formatException(record.exc_info)
            record.exc_info = None
        return record


# The most lines written in one call: a queue that never empties is still written out.
BATCH_LINES = 256
# How long a line may wait for others before the thread writes them.
FLUSH_SECONDS = 0.1


class Gathered:
    """The records on their way to the writer thread (see the module's docstring): the
    queue `QueueHandler` puts on and `QueueListener` takes from."""

    def __init__(self) -> None:
        self.items: collections.deque[logging.LogRecord | None] = collections.deque()
        self.ready = threading.Event()

    def put_nowait(self, record: logging.LogRecord | None) -> None:
        self.items.append(record)
        # None is the listener's stop.
        if record is None or record.levelno >= logging.WARNING or len(self.items) >= BATCH_LINES:
            self.ready.set()

    def get(self, block: bool = True) -> logging.LogRecord | None:
        while True:
            try:
                return self.items.popleft()
            except IndexError:
                if not block:
                    raise queue.Empty from None
            self.ready.wait(FLUSH_SECONDS)
            self.ready.clear()  # a record put meanwhile is taken by the next popleft

    def empty(self) -> bool:
        return not self.items


class LineWriter(logging.StreamHandler):  # type: ignore[type-arg]
    """The writer thread's handler: formats each line as it comes and writes what has
    gathered in one call once the queue is empty, or BATCH_LINES have gathered (one system
    call for a burst of lines)."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__(stream)
        self.pending: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.pending.append(self.format(record))
        except Exception:
            self.handleError(record)

    def write_pending(self) -> None:
        lines, self.pending = self.pending, []
        if lines:
            self.stream.write("\n".join(lines) + "\n")
            self.stream.flush()


class Writer(QueueListener):
    """The thread that formats and writes the queued records."""

    def __init__(self, records: Gathered, out: LineWriter) -> None:
        super().__init__(records, out)
        self.records = records
        self.out = out

    def handle(self, record: logging.LogRecord) -> None:
        super().handle(record)
        if self.records.empty() or len(self.out.pending) >= BATCH_LINES:
            self.out.write_pending()

    def stop(self) -> None:
        super().stop()
        self.out.write_pending()


_PLAIN = logging.Formatter()
_writer: Writer | None = None


def stop_logging() -> None:
    """Write what is queued and stop the writer thread (at exit, or before a new one)."""
    global _writer
    writer, _writer = _writer, None
    if writer is not None:
        writer.stop()


def _start_writer(handler: LineWriter) -> Handoff:
    global _writer
    stop_logging()
    records = Gathered()
    _writer = Writer(records, handler)
    _writer.start()
    return Handoff(records)


def configure_logging(
    level: str = "INFO", *, json_format: bool | None = True, stream: TextIO | None = None
) -> None:
    """Idempotent: one handler on the root logger, every other logger propagating to it."""
    out = stream or sys.stderr
    handler = LineWriter(out)
    if wants_json(json_format, out):
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter(colour=not wants_json(None, out)))
    logging.setLogRecordFactory(_record_with_request_id)
    # Neither the thread's name, the multiprocessing process name nor the caller's file
    # and line is ever written: every record skips looking them up (the last by walking
    # the stack; the logging documentation's own advice for speed).
    logging.logThreads = False
    logging.logMultiprocessing = False
    logging._srcfile = None
    root = logging.getLogger()
    root.handlers[:] = [_start_writer(handler)]
    root.setLevel(level.upper())
    # uvicorn's loggers go through the same handler (no plain-text lines of their own).
    for name in ("uvicorn", "uvicorn.error", "arq", "alembic"):
        named = logging.getLogger(name)
        named.handlers[:] = []
        named.propagate = True
    # The panel writes the request line: uvicorn's access line would be a second one (and
    # without a handler uvicorn skips building it).
    access = logging.getLogger("uvicorn.access")
    access.handlers[:] = []
    access.propagate = False
    # arq reports every job at INFO: useful when debugging, noise otherwise.
    logging.getLogger("arq").setLevel(max(logging.WARNING, root.level))
    # Set-up chatter of the migration plugins and the embedded PostgreSQL.
    for name in ("alembic.runtime.plugins", "pgserver"):
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
    logging.captureWarnings(True)
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_thread
    atexit.unregister(stop_logging)
    atexit.register(stop_logging)
