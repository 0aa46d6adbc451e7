"""Probes, problem responses for unknown routes, and docs served without a CDN."""

import httpx
import pytest

pytestmark = pytest.mark.anyio


async def test_probes(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    r = await client.get("/readyz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


async def test_unknown_route_is_a_problem(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/nothing-here")
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["status"] == 404


async def test_docs_use_local_assets_only(client: httpx.AsyncClient) -> None:
    for page, asset in (
        ("/docs", "/_static/swagger-ui-bundle.js"),
        ("/redoc", "/_static/redoc.standalone.js"),
    ):
        r = await client.get(page)
        assert r.status_code == 200
        assert asset in r.text
        assert "cdn." not in r.text
        assert "fonts.googleapis" not in r.text
        js = await client.get(asset)
        assert js.status_code == 200
        assert len(js.content) > 100_000
