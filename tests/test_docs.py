"""The API documentation works without internet, and its examples run as they stand."""

from __future__ import annotations

import re

import httpx
import pytest
from sqlalchemy import select

from app import demo
from app.api_v2.docs import ADD_EXAMPLES, DEMO_SERVICE
from app.catalog.models import Service
from app.context import AppContext
from tests.support.api import Api, MakeUser

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
