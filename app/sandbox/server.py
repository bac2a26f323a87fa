"""The sandbox provider as an ASGI app (`create_sandbox_app`) and a server
(`serve_sandbox`, what `smm-panel sandbox` and `smm-panel run` start)."""

from __future__ import annotations

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
