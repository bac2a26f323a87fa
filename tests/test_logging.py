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
