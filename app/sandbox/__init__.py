"""The sandbox provider: a real API v2 server with its own users, balances and catalog, a
tool beside the panel (it is no domain of it). Orders progress with time (Pending -> In
progress with remains going down -> final), and each service can be told how to behave:
complete, end Partial, cancel, refuse `add` with a given error, answer slowly, time out,
answer HTTP 500 or garbage. It powers the demo (`smm-panel run`), the tests and the
benchmarks. State lives in memory: it is a stand-in for a provider.

    config.py    its keys, catalog and behaviours (`smm-panel sandbox --config FILE`)
    books.py     balances, orders and refills, and how orders progress
    api.py       the API v2 endpoint, one function per action
    control.py   the /sandbox/… control endpoints
    server.py    the ASGI app and the server

What the rest of the project uses is named here.
"""

from app.sandbox.config import (
    SandboxConfig,
    SandboxService,
    default_sandbox_config,
    load_sandbox_config,
)
from app.sandbox.server import create_sandbox_app, serve_sandbox

__all__ = [
    "SandboxConfig",
    "SandboxService",
    "create_sandbox_app",
    "default_sandbox_config",
    "load_sandbox_config",
    "serve_sandbox",
]
