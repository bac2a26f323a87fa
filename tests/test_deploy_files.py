"""The production layouts as files: docker-compose.yml (read as Compose reads it), the
Dockerfile and the systemd units. No container engine runs here, so the properties that
matter are asserted on the files themselves: the worker is not judged by the API's health
check, only the proxy is published, the API believes forwarded headers from the proxy alone,
and the units start the commands the README documents."""

from __future__ import annotations

import configparser
import ipaddress
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.cli import ROOT

COMPOSE = ROOT / "docker-compose.yml"
SYSTEMD = ROOT / "deploy" / "systemd"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def _services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = compose["services"]
    return services


def _networks_of(service: dict[str, Any]) -> dict[str, Any]:
    networks = service.get("networks", {})
    if isinstance(networks, list):
        return {name: {} for name in networks}
    return {name: options or {} for name, options in networks.items()}


def test_the_layout_has_every_part(compose: dict[str, Any]) -> None:
    services = _services(compose)
    assert set(services) == {"postgres", "redis", "migrate", "api", "worker", "proxy"}
    assert services["api"]["command"] == ["smm-panel", "serve", "--workers", "2"]
    assert services["worker"]["command"] == ["smm-panel", "worker"]
    assert services["migrate"]["command"] == ["smm-panel", "migrate"]
    for name in ("api", "worker"):
        assert services[name]["depends_on"]["migrate"] == {
            "condition": "service_completed_successfully"
        }
    # The secrets have no default: Compose refuses to start without them.
    env = services["api"]["environment"]
    assert env["SECRET_KEY"].startswith("${SECRET_KEY:?")
    assert env["ADMIN_TOKEN"].startswith("${ADMIN_TOKEN:?")


def test_only_the_proxy_is_published(compose: dict[str, Any]) -> None:
    services = _services(compose)
    published = {name for name, service in services.items() if service.get("ports")}
    assert published == {"proxy"}
    assert services["proxy"]["ports"] == ["80:80", "443:443"]
    # The API is on the proxy's network (and the backend's), reached only over it.
    assert set(_networks_of(services["api"])) == {"backend", "edge"}
    assert set(_networks_of(services["proxy"])) == {"edge"}
    for name in ("postgres", "redis", "migrate", "worker"):
        assert "edge" not in _networks_of(services[name]), name


def test_forwarded_headers_are_believed_from_the_proxy_alone(compose: dict[str, Any]) -> None:
    services = _services(compose)
    proxy_address = _networks_of(services["proxy"])["edge"]["ipv4_address"]
    (edge,) = compose["networks"]["edge"]["ipam"]["config"]
    assert ipaddress.ip_address(proxy_address) in ipaddress.ip_network(edge["subnet"])
    assert services["api"]["environment"]["FORWARDED_ALLOW_IPS"] == proxy_address
    # The proxy's configuration sends everything to the API over that network.
    mounted = [v for v in services["proxy"]["volumes"] if v.endswith(":/etc/caddy/Caddyfile:ro")]
    (volume,) = mounted
    caddyfile = (ROOT / volume.split(":")[0]).read_text()
    assert re.search(r"reverse_proxy api:8000\b", caddyfile)


def test_the_worker_has_its_own_health_check(compose: dict[str, Any]) -> None:
    """The image's check asks the API's /healthz on 8000, where a worker never listens: the
    worker's own check asks its metrics endpoint, on the port its settings open."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "http://127.0.0.1:8000/healthz" in dockerfile
    worker = _services(compose)["worker"]
    check = " ".join(worker["healthcheck"]["test"])
    port = worker["environment"]["WORKER_METRICS_PORT"]
    assert f"http://127.0.0.1:{port}/metrics" in check
    assert "8000" not in check
    assert _services(compose)["migrate"]["healthcheck"] == {"disable": True}
    assert "healthcheck" not in _services(compose)["api"]  # the image's: /healthz


def test_the_image_installs_the_package_alone() -> None:
    """The migrations travel inside the package: the image copies nothing beside it."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "migrations" not in re.findall(r"^COPY .*$", dockerfile, re.MULTILINE).__str__()
    assert "alembic.ini" not in dockerfile
    assert "pip install --no-cache-dir ." in dockerfile


def _unit(name: str) -> configparser.ConfigParser:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read_string((SYSTEMD / name).read_text())
    return unit


@pytest.mark.parametrize(
    ("name", "command"),
    [
        ("smm-panel-api.service", "smm-panel serve --workers 4"),
        ("smm-panel-worker.service", "smm-panel worker"),
        ("smm-panel-migrate.service", "smm-panel migrate"),
    ],
)
def test_the_systemd_units_run_the_documented_commands(name: str, command: str) -> None:
    unit = _unit(name)
    service = unit["Service"]
    assert service["ExecStart"].endswith(command)
    assert service["EnvironmentFile"] == "/etc/smm-panel/env"
    assert service["User"] == "smm-panel"
    assert unit["Install"]["WantedBy"] == "multi-user.target"
    if name != "smm-panel-migrate.service":
        assert service["Restart"] == "on-failure"
        assert "smm-panel-migrate.service" in unit["Unit"]["After"]
        assert unit["Unit"]["Requires"] == "smm-panel-migrate.service"
    else:
        assert service["Type"] == "oneshot"
    # The API listens where only the proxy on the same host reaches it.
    if name == "smm-panel-api.service":
        assert "HOST=127.0.0.1" in service["Environment"].split()


def test_the_units_are_documented() -> None:
    readme = (SYSTEMD / "README.md").read_text()
    for unit in sorted(p.name for p in Path(SYSTEMD).glob("*.service")):
        assert unit.removesuffix(".service") in readme
    assert "deploy/systemd" in (ROOT / "README.md").read_text()
