"""A PgBouncer in transaction mode in front of a PostgreSQL (Debian's `pgbouncer`), started
on a free port with its configuration in a given directory: for `make bench` with
BENCH_PGBOUNCER=1 and for the tests of the production shape (tests/test_pgbouncer.py)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from app.embedded import free_port

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"


def _config(directory: Path, port: int, server: str, pool_size: int) -> Path:
    parts = urlsplit(server)
    ini = directory / "pgbouncer.ini"
    ini.write_text(
        "[databases]\n"
        f"* = host={parts.hostname or '127.0.0.1'} port={parts.port or 5432}\n"
        "[pgbouncer]\n"
        "listen_addr = 127.0.0.1\n"
        f"listen_port = {port}\n"
        "unix_socket_dir =\n"
        "auth_type = trust\n"
        f"auth_file = {directory / 'userlist.txt'}\n"
        "admin_users = postgres\n"
        "pool_mode = transaction\n"
        # Server connections per database: fewer than the panel's processes open.
        f"default_pool_size = {pool_size}\n"
        "max_client_conn = 1000\n"
    )
    (directory / "userlist.txt").write_text(f'"{parts.username or "postgres"}" ""\n')
    return ini


@contextmanager
def pgbouncer(server: str, directory: Path, *, pool_size: int = 4) -> Iterator[int]:
    """PgBouncer (transaction pooling, `pool_size` server connections per database) in
    front of the PostgreSQL of `server` (a URL); yields its port."""
    port = free_port()
    ini = _config(directory, port, server, pool_size)
    # PgBouncer refuses to run as root: it drops to `nobody` once it has read its files.
    user = ["-u", "nobody"] if os.geteuid() == 0 else []
    process = subprocess.Popen(
        [PGBOUNCER, *user, str(ini)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        for _ in range(200):
            if process.poll() is not None:
                raise RuntimeError(f"pgbouncer exited with {process.returncode}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


def through(url: str, port: int) -> str:
    """The same database URL, through the PgBouncer on `port`."""
    parts = urlsplit(url)
    user = f"{parts.username}@" if parts.username else ""
    return parts._replace(netloc=f"{user}127.0.0.1:{port}").geturl()
