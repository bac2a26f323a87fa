"""The sandbox provider as an ASGI app (`create_sandbox_app`) and a server
(`serve_sandbox`, what `smm-panel sandbox` and `smm-panel run` start); `served` serves
any such app in-process on loopback (the tests' and the soak's providers)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI

from app.sandbox.api import endpoint
from app.sandbox.books import Sandbox
from app.sandbox.config import SandboxConfig, default_sandbox_config
from app.sandbox.control import control_router


def create_sandbox_app(config: SandboxConfig | None = None) -> FastAPI:
    sandbox = Sandbox(config or default_sandbox_config())
    app = FastAPI(title="smm-panel sandbox provider", docs_url=None, redoc_url=None)
    app.state.sandbox = sandbox
    app.add_api_route("/api/v2", endpoint(sandbox), methods=["GET", "POST"])
    app.include_router(control_router(sandbox))
    return app


async def serve_sandbox(host: str, port: int, config: SandboxConfig) -> None:
    server = uvicorn.Server(
        uvicorn.Config(
            create_sandbox_app(config), host=host, port=port, access_log=False, log_config=None
        )
    )
    await server.serve()


@asynccontextmanager
async def served(app: Any) -> AsyncIterator[str]:
    """Serve an ASGI app over real HTTP on a free loopback port, in a task of the running
    loop; yields its base URL. A fake provider never waits for its callers' slow requests
    at the end (graceful shutdown: 1 s)."""
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=0,  # the system's choice, read back once listening
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=1,
        )
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
        if task.done():
            task.result()
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
