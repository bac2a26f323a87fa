"""`/metrics` of `smm-panel serve --workers N` is the panel's, not one process's: counters
of every process add up (prometheus_client's multiprocess mode, in a directory `serve`
makes and removes), so consecutive scrapes never go backwards whichever process answers."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from app.embedded import free_port
from app.settings import Settings
from tests.support.cli import ROOT, command_env
from tests.support.env import ADMIN_TOKEN, AUTH, SECRET_KEY

CALLS_PER_ROUND = 10


class ServeOutput:
    """The JSON lines of a running `serve`, read as they come."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.lines: list[dict[str, object]] = []
        self.reader = asyncio.create_task(self._read(process))

    async def _read(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        async for raw in process.stdout:
            text = raw.decode().strip()
            if text.startswith("{"):
                self.lines.append(json.loads(text))

    def api_pids(self) -> set[object]:
        return {
            line["pid"]
            for line in self.lines
            if line["msg"] == "request" and line.get("route") == "/api/v2"
        }


async def balance_calls(client: httpx.AsyncClient, url: str, count: int) -> None:
    """`count` calls at once, each on a connection of its own: either process may take it."""
    answers = await asyncio.gather(
        *(
            client.post(f"{url}/api/v2", data={"key": "no-such-key", "action": "balance"})
            for _ in range(count)
        )
    )
    assert all(a.json() == {"error": "Invalid API key"} for a in answers)


async def balance_errors(client: httpx.AsyncClient, url: str) -> tuple[float, list[str]]:
    """The counter of failed `balance` calls in one scrape, and every sample's label names."""
    response = await client.get(f"{url}/metrics", headers=AUTH)
    assert response.status_code == 200
    total = 0.0
    labels: set[str] = set()
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            labels.update(sample.labels)
            if sample.name == "smm_api_requests_total" and sample.labels["action"] == "balance":
                total += sample.value
    return total, sorted(labels)


async def test_serve_with_two_workers_sums_every_process_and_never_goes_back(
    settings: Settings,
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "app.cli", "serve", "--workers", "2", "--port", str(port)),
        cwd=ROOT,
        env=command_env(
            DATABASE_URL=settings.database_url or "",
            REDIS_URL=settings.redis_url or "",
            QUEUE_NAME=settings.queue_name,
            SECRET_KEY=SECRET_KEY,
            ADMIN_TOKEN=ADMIN_TOKEN,
            LOG_JSON="true",
            RATE_LIMIT_PER_IP="0",
        ),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output = ServeOutput(process)
    calls = 0
    scraped: list[float] = []
    no_reuse = httpx.Limits(max_keepalive_connections=0)
    try:
        async with httpx.AsyncClient(limits=no_reuse, timeout=30) as client:
            for _ in range(600):
                try:
                    if (await client.get(f"{url}/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
            # Until both processes have served calls (the kernel picks who accepts).
            for _ in range(30):
                await balance_calls(client, url, CALLS_PER_ROUND)
                calls += CALLS_PER_ROUND
                await asyncio.sleep(0.2)
                if len(output.api_pids()) == 2:
                    break
            assert len(output.api_pids()) == 2, "one process served every call"
            # Scrapes answered by either process count every call of both.
            for _ in range(8):
                await balance_calls(client, url, CALLS_PER_ROUND)
                calls += CALLS_PER_ROUND
                for _ in range(2):
                    total, labels = await balance_errors(client, url)
                    scraped.append(total)
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), timeout=60)
        await output.reader
    first = calls - 8 * CALLS_PER_ROUND
    assert scraped == [float(first + CALLS_PER_ROUND * (n // 2 + 1)) for n in range(16)]
    # Gauges read at scrape time are the panel's too: one series, no per-process label.
    assert "pid" not in labels
    # The directory the processes shared was made for this run and is gone with it.
    (made,) = [line for line in output.lines if line["msg"] == "metrics shared by the processes"]
    directory = Path(str(made["directory"]))
    assert directory.is_absolute() and not await asyncio.to_thread(directory.exists)
