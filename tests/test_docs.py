"""The API documentation works without internet, and its examples run as they stand."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from app import demo
from app.api_v2.docs import ADD_EXAMPLES, DEMO_SERVICE
from app.catalog.models import Service
from app.context import AppContext
from app.sandbox import default_sandbox_config, load_sandbox_config
from tests.support.api import Api, MakeUser
from tests.support.cli import ROOT
from tests.support.env import AUTH
from tests.support.upstream import sandbox

# Anything that names a host: scheme URLs and protocol-relative ones, in attributes or CSS.
EXTERNAL = re.compile(r"(?:https?:)?//[A-Za-z0-9.-]+", re.IGNORECASE)
ASSET = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|url:\s*["']([^"']+)["']""")


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_docs_page_references_no_external_host(client: httpx.AsyncClient, page: str) -> None:
    response = await client.get(page)
    assert response.status_code == 200
    html = response.text
    assert EXTERNAL.findall(html) == []
    assets = [a or b for a, b in ASSET.findall(html)]
    assert any(a.endswith(".js") for a in assets)
    for asset in assets:
        served = await client.get(asset)
        assert served.status_code == 200, asset
        assert served.content
    # Even a stray reference could not load: the page's policy allows only the panel.
    policy = response.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "http" not in policy


async def test_every_add_example_runs_against_the_demo_catalog(
    ctx: AppContext, api: Api, make_user: MakeUser
) -> None:
    async with ctx.db.transaction() as session:
        await demo.seed_catalog(session)
    async with ctx.db.session() as session:
        services = (await session.scalars(select(Service).order_by(Service.id))).all()
    # On a fresh database (`make run`) the demo services are numbered from 1.
    offset = services[0].id - 1
    by_id = {service.id - offset: service for service in services}
    assert {by_id[int(sid)].type for sid in DEMO_SERVICE.values()} == set(DEMO_SERVICE)
    for type_name, sid in DEMO_SERVICE.items():
        assert by_id[int(sid)].type == type_name
    user = await make_user(balance="100")
    assert len(ADD_EXAMPLES) == len(DEMO_SERVICE) + 2  # plus the plain and drip-feed ones
    for name, example in ADD_EXAMPLES.items():
        fields = {k: v for k, v in example.items() if k not in ("key", "action")}
        fields["service"] = str(int(fields["service"]) + offset)
        answer = await api(user.key, "add", **fields)
        assert set(answer) == {"order"}, (name, answer)


def _sandbox_section() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index("### The sandbox provider")
    return readme[start : readme.index("\n## ", start)]


async def test_the_readme_sandbox_config_runs_as_written(tmp_path: Path) -> None:
    (example,) = re.findall(r"```json\n(.*?)```", _sandbox_section(), re.DOTALL)
    path = tmp_path / "sandbox.json"
    path.write_text(example)
    config = load_sandbox_config(str(path))
    assert config.keys == {"sandbox-key": Decimal(1000), "another-key": Decimal(50)}
    (service,) = config.services
    assert (service.id, service.behaviour, service.rate) == (1, "complete", Decimal("0.50"))
    async with sandbox(config) as (url, _):
        async with httpx.AsyncClient() as http:
            key = {"key": "another-key"}
            listed = (await http.post(f"{url}/api/v2", data={**key, "action": "services"})).json()
            assert [s["name"] for s in listed] == ["Followers"]
            balance = await http.post(f"{url}/api/v2", data={**key, "action": "balance"})
            assert balance.json() == {"balance": "50.00000", "currency": "USD"}
            # The behaviour endpoint, as the README calls it.
            changed = await http.post(
                f"{url}/sandbox/services/1/behaviour",
                json={"behaviour": "partial", "partial_percent": 30},
            )
            assert changed.status_code == 200
            assert (changed.json()["behaviour"], changed.json()["partial_percent"]) == (
                "partial",
                "30",
            )


async def test_a_panel_is_pointed_at_the_sandbox_from_the_readme(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    provider_body, import_body = re.findall(r"-d '(\{.*?\})'", _sandbox_section())
    async with sandbox(default_sandbox_config()) as (url, _):
        body = json.loads(provider_body.replace("http://127.0.0.1:8001", url))
        created = await client.post("/admin/v1/providers", headers=AUTH, json=body)
        assert created.status_code == 201, created.text
        provider_id = created.json()["id"]
        imported = await client.post(
            f"/admin/v1/providers/{provider_id}/import", headers=AUTH, json=json.loads(import_body)
        )
        assert imported.json() == {"created": 16, "updated": 0, "disabled": 0}
        async with ctx.db.session() as session:
            followers = await session.scalar(
                select(Service).where(
                    Service.provider_id == provider_id, Service.provider_service_id == "1"
                )
            )
        assert followers is not None and followers.rate == Decimal("0.675")  # 1.5 × 0.45
