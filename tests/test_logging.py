"""Every process logs the same way: JSON lines (uvicorn's own and tracebacks included) or
coloured text on a terminal, and `serve --workers 2` writes its request lines."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import subprocess
import sys
import time

import httpx
import pytest

from app.embedded import free_port
from app.settings import Settings
from tests.support.cli import ROOT, command_env
from tests.support.env import SECRET_KEY


def _json_lines(text: str) -> list[dict[str, object]]:
    lines = [line for line in text.splitlines() if line.strip()]
    parsed = []
    for line in lines:
        try:
            parsed.append(json.loads(line))
        except ValueError:
            raise AssertionError(f"not a JSON line: {line!r}") from None
    return parsed


async def _wait_until_up(
    url: str, process: asyncio.subprocess.Process, seconds: float = 60
) -> None:
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            assert process.returncode is None, "serve exited early"
            try:
                if (await client.get(f"{url}/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.3)
    raise AssertionError("serve did not answer in time")


async def test_serve_with_two_workers_writes_json_request_lines(settings: Settings) -> None:
    port = free_port()
    env = command_env(
        DATABASE_URL=settings.database_url or "",
        REDIS_URL=settings.redis_url or "",
        SECRET_KEY=SECRET_KEY,
        LOG_JSON="true",
    )
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "app.cli", "serve", "--workers", "2", "--port", str(port)),
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        await _wait_until_up(url, process)
        async with httpx.AsyncClient() as client:
            for n in range(6):
                response = await client.post(
                    f"{url}/api/v2",
                    data={"key": "no-such-key", "action": "balance"},
                    headers={"X-Request-ID": f"probe-{n}"},
                )
                assert response.json() == {"error": "Invalid API key"}
    finally:
        process.terminate()
        raw, _ = await asyncio.wait_for(process.communicate(), timeout=30)
    output = raw.decode()
    lines = _json_lines(output)
    requests = [line for line in lines if line["msg"] == "request"]
    assert {line["request_id"] for line in requests} >= {f"probe-{n}" for n in range(6)}
    probe = next(line for line in requests if line["request_id"] == "probe-0")
    assert {"method": "POST", "route": "/api/v2", "status": 200}.items() <= probe.items()
    # The request lines come from the worker processes, not from the parent.
    parent = next(line["pid"] for line in lines if "Started parent process" in str(line["msg"]))
    assert parent == process.pid
    assert {line["pid"] for line in requests} - {parent}
    # uvicorn's own lines are JSON too, in every process.
    started = [line for line in lines if str(line["msg"]).startswith("Started server process")]
    assert len(started) == 2 and all(line["logger"] == "uvicorn.error" for line in started)
    assert any(line.get("expected_revision") for line in lines)


# How an operator starts the API: each start must write one line per request, whoever
# (uvicorn, the panel) would otherwise log it.
STARTS = {
    "serve": ("serve",),
    "serve --workers 2": ("serve", "--workers", "2"),
    "run": ("run",),
}


async def _requests_logged(settings: Settings, start: str, **env: str) -> list[dict[str, object]]:
    """Start the API the way `start` names, send 8 requests with known ids (4 API calls,
    2 pages, 2 missing paths), stop it and answer the JSON lines it wrote."""
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "app.cli", *STARTS[start], "--port", str(port)),
        cwd=ROOT,
        env=command_env(
            DATABASE_URL=settings.database_url or "",
            REDIS_URL=settings.redis_url or "",
            QUEUE_NAME=settings.queue_name,
            SECRET_KEY=SECRET_KEY,
            SANDBOX_PORT=str(free_port()),
            LOG_JSON="true",
            **env,
        ),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        await _wait_until_up(url, process, seconds=90)
        async with httpx.AsyncClient() as client:
            for n in range(4):
                answer = await client.post(
                    f"{url}/api/v2",
                    data={"key": f"secret-key-{n}", "action": "balance"},
                    headers={"X-Request-ID": f"call-{n}"},
                )
                assert answer.json() == {"error": "Invalid API key"}
            for n, path in enumerate(("/web/", "/healthz", "/nowhere", "/api/nowhere")):
                await client.get(f"{url}{path}", headers={"X-Request-ID": f"page-{n}"})
    finally:
        process.terminate()
        raw, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    lines = raw.decode().splitlines()
    parsed = _json_lines("\n".join(line for line in lines if line.startswith("{")))
    assert all(str(n) not in raw.decode() for n in (f"secret-key-{n}" for n in range(4)))
    return parsed


@pytest.mark.parametrize("start", list(STARTS))
async def test_every_start_writes_one_line_per_request(settings: Settings, start: str) -> None:
    lines = await _requests_logged(settings, start)
    ids = [f"call-{n}" for n in range(4)] + [f"page-{n}" for n in range(4)]
    per_request = {rid: [line for line in lines if line.get("request_id") == rid] for rid in ids}
    assert {rid: len(found) for rid, found in per_request.items()} == dict.fromkeys(ids, 1)
    # That one line is the panel's, with its route and status.
    assert all(found[0]["msg"] == "request" for found in per_request.values())
    assert per_request["call-0"][0]["route"] == "/api/v2"
    assert per_request["page-2"][0]["status"] == 404
    # uvicorn writes no access line of its own.
    assert [line for line in lines if line["logger"] == "uvicorn.access"] == []


async def test_without_request_logging_no_request_line_is_written(settings: Settings) -> None:
    lines = await _requests_logged(settings, "serve", LOG_REQUESTS="false")
    assert [line for line in lines if line.get("request_id")] == []
    assert any(str(line["msg"]).startswith("Started server process") for line in lines)


def _run_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=command_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_an_uncaught_traceback_is_one_json_line() -> None:
    code = (
        "from app.logs import configure_logging\n"
        "configure_logging('INFO', json_format=None)\n"
        "import logging, warnings\n"
        "logging.getLogger('uvicorn.error').info('Started server process [1]')\n"
        "warnings.warn('old thing')\n"
        "raise RuntimeError('boom')\n"
    )
    result = _run_python(code)
    assert result.returncode == 1
    lines = _json_lines(result.stderr)  # not a terminal: JSON
    assert [(line["logger"], line["level"]) for line in lines] == [
        ("uvicorn.error", "info"),
        ("py.warnings", "warning"),
        ("smm_panel", "critical"),
    ]
    assert "RuntimeError: boom" in str(lines[2]["exc"])
    assert str(lines[2]["exc"]).startswith("Traceback (most recent call last):")


def test_a_terminal_gets_coloured_text_and_a_pipe_gets_json(settings: Settings) -> None:
    code = (
        "from app.logs import configure_logging\n"
        "import logging, sys\n"
        "configure_logging('INFO', json_format=None)\n"
        "logging.getLogger('app.flows.relay').info('order relayed', extra={'order_id': 7})\n"
    )
    primary, secondary = pty.openpty()
    try:
        process = subprocess.run(
            [sys.executable, "-c", code],
            cwd=ROOT,
            env=command_env(),
            stderr=secondary,
            timeout=60,
            check=True,
        )
        assert process.returncode == 0
        os.close(secondary)
        chunks = []
        while True:
            try:
                chunk = os.read(primary, 4096)
            except OSError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(primary)
    text = b"".join(chunks).decode()
    assert "\x1b[32mINFO" in text and "order relayed" in text and "order_id=7" in text
    assert '{"ts"' not in text
    # A pipe gets JSON without being asked.
    piped = _json_lines(_run_python(code).stderr)
    assert piped[0]["msg"] == "order relayed" and piped[0]["order_id"] == 7


def test_lines_are_written_by_a_thread_of_their_own_while_the_caller_goes_on() -> None:
    """A logger call only queues its record: with the output stuck (a full pipe, a slow
    disk) the caller is not held, and every line comes out, in order, once it frees."""
    code = (
        "import io, logging, threading\n"
        "from app import logs\n"
        "class Stuck(io.StringIO):\n"
        "    def __init__(self):\n"
        "        super().__init__(); self.free = threading.Event(); self.writers = set()\n"
        "    def write(self, text):\n"
        "        self.writers.add(threading.current_thread().name)\n"
        "        if not self.free.wait(5): self.free.set()  # written by the caller itself\n"
        "        return super().write(text)\n"
        "    def isatty(self): return False\n"
        "out = Stuck()\n"
        "logs.configure_logging('INFO', json_format=True, stream=out)\n"
        "log = logging.getLogger('app.flows.relay')\n"
        "for n in range(100): log.info('line %d', n, extra={'order_id': n})\n"
        "print('caller went on', threading.current_thread().name not in out.writers)\n"
        "out.free.set()\n"
        "logs.stop_logging()\n"
        "import json\n"
        "lines = [json.loads(x) for x in out.getvalue().splitlines()]\n"
        "print([x['order_id'] for x in lines] == list(range(100)), lines[7]['msg'])\n"
    )
    result = _run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["caller went on True", "True line 7"]


def test_request_lines_gather_for_the_writer_and_a_warning_wakes_it() -> None:
    """The writer thread is not woken for each info line (a system call and a hand-over of
    the interpreter's lock per request): info lines wait up to FLUSH_SECONDS for others; a
    warning wakes it at once; every line is written, in order."""
    code = (
        "import io, json, logging, time\n"
        "from app import logs\n"
        "out = io.StringIO()\n"
        "logs.configure_logging('INFO', json_format=True, stream=out)\n"
        "writer = logs._writer\n"
        "log = logging.getLogger('app.http')\n"
        "time.sleep(logs.FLUSH_SECONDS * 2)\n"
        "writer.records.ready.clear()\n"
        "for n in range(20): log.info('request', extra={'n': n})\n"
        "print('woken', writer.records.ready.is_set())\n"
        "log.warning('slow', extra={'n': 20})\n"
        "print('woken', writer.records.ready.is_set() or writer.records.empty())\n"
        "deadline = time.monotonic() + 5\n"
        "while out.getvalue().count('\\n') < 21 and time.monotonic() < deadline:\n"
        "    time.sleep(0.01)\n"
        "print([json.loads(x)['n'] for x in out.getvalue().splitlines()] == list(range(21)))\n"
        "logs.stop_logging()\n"
    )
    result = _run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["woken False", "woken True", "True"]
