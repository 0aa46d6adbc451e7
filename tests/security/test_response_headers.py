"""What every response says about itself, and keys of another prefix.

- every response: ``X-Content-Type-Options: nosniff`` (errors, remembered scores and 304s too);
- every ``/v1`` and ``/ims`` response (they carry personal data): ``Cache-Control: no-store``;
  docs, the OpenAPI document, static assets and health probes stay cacheable;
- no ``Server`` banner from the real server (``ladder serve``);
- a key presented with another prefix than ``API_KEY_PREFIX`` is refused.
"""

from pathlib import Path

import httpx
import pytest

from app.config import Settings
from tests.api.test_scores import seed_pm
from tests.conftest import Tenant
from tests.fault.appserver import AppServer, app_env, run_ladder

pytestmark = pytest.mark.anyio


def other_prefix(token: str, prefix: str = "zz") -> str:
    """The same key id and secret under another prefix: ``zz_<id>_<secret>``."""
    _, key_id, secret = token.split("_", 2)
    return f"{prefix}_{key_id}_{secret}"


def assert_private(r: httpx.Response) -> None:
    assert r.headers.get("x-content-type-options") == "nosniff", (r.request.url, r.headers)
    assert r.headers.get("cache-control") == "no-store", (r.request.url, r.headers)


def assert_public(r: httpx.Response) -> None:
    assert r.headers.get("x-content-type-options") == "nosniff", (r.request.url, r.headers)
    assert "no-store" not in r.headers.get("cache-control", ""), (r.request.url, r.headers)


async def test_api_responses_are_not_stored_and_not_sniffed(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    h = tenant_a.headers
    await seed_pm(client, tenant_a)
    responses = [
        await client.get("/v1/subjects/emp-1", headers=h),
        await client.get("/v1/subjects/emp-1/score", headers=h),
        await client.get("/v1/frameworks", headers=h),
        await client.get("/ims/case/v1p1/CFDocuments", headers=h),
        await client.get("/v1/subjects/nobody", headers=h),  # 404
        await client.get("/v1/subjects"),  # 401
        await client.post("/v1/subjects", json={"external_ref": ""}, headers=h),  # 422
        await client.post(  # 422 from the Unicode guard, before any route
            "/v1/subjects",
            content=b'{"external_ref": "x", "display_name": "\\udfff"}',
            headers={**h, "Content-Type": "application/json"},
        ),
        await client.post(  # 413 from the size limit, before any route
            "/v1/subjects",
            content=b"[" + b" " * (Settings().max_request_bytes + 1) + b"]",
            headers={**h, "Content-Type": "application/json"},
        ),
        await client.post(
            "/v1/cohorts/evaluate",
            params={"format": "csv"},
            json={"framework": {"key": "product-management"}},
            headers=h,
        ),
    ]
    assert [r.status_code for r in responses] == [200, 200, 200, 200, 404, 401, 422, 422, 413, 200]
    for r in responses:
        assert_private(r)


async def test_docs_and_probes_stay_cacheable(client: httpx.AsyncClient) -> None:
    for url in ("/healthz", "/openapi.json", "/docs", "/_static/swagger-ui.css", "/nowhere"):
        r = await client.get(url)
        assert r.status_code in (200, 404), url
        assert_public(r)


async def test_a_key_with_another_prefix_is_refused(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    assert (await client.get("/v1/frameworks", headers=tenant_a.headers)).status_code == 200
    for prefix in ("zz", "cx", "clx"):
        wrong = {"Authorization": f"Bearer {other_prefix(tenant_a.admin_key, prefix)}"}
        r = await client.get("/v1/frameworks", headers=wrong)
        assert r.status_code == 401, (prefix, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        # Also where a broken body would otherwise be refused before the key was looked at.
        r = await client.post(
            "/v1/subjects",
            content=b"{",
            headers={**wrong, "Content-Type": "application/json"},
        )
        assert r.status_code == 401


async def test_a_service_with_another_prefix_refuses_the_default_one(
    tenant_a: Tenant, settings: Settings, engine: object, sessionmaker: object
) -> None:
    from app.main import create_app

    app = create_app(settings.model_copy(update={"api_key_prefix": "acme"}))
    app.state.engine = engine
    app.state.sessionmaker = sessionmaker
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        assert (await client.get("/v1/frameworks", headers=tenant_a.headers)).status_code == 401
        renamed = {"Authorization": f"Bearer {other_prefix(tenant_a.admin_key, 'acme')}"}
        assert (await client.get("/v1/frameworks", headers=renamed)).status_code == 200


async def test_score_reads_from_memory_and_304s_send_the_headers(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    await seed_pm(client, tenant_a)
    url, h = "/v1/subjects/emp-1/score", tenant_a.headers
    first, second = await client.get(url, headers=h), await client.get(url, headers=h)
    assert 'memo;desc="hit"' in second.headers["server-timing"]
    unchanged = await client.get(url, headers={**h, "If-None-Match": first.headers["etag"]})
    assert unchanged.status_code == 304
    for r in (first, second, unchanged):
        assert_private(r)


def test_the_real_server_sends_no_server_banner(tmp_path: Path) -> None:
    env = app_env(f"sqlite+aiosqlite:///{tmp_path}/banner.db", LOAD_BUILTIN_FRAMEWORKS="false")
    run_ladder(tmp_path, env, "migrate")
    server = AppServer(tmp_path, env, tmp_path / "server.log")
    try:
        server.start()
        for url in ("/healthz", "/v1/frameworks", "/openapi.json"):
            r = httpx.get(server.base_url + url, timeout=10)
            assert "server" not in r.headers, (url, r.headers)
            assert r.headers["x-content-type-options"] == "nosniff"
    finally:
        server.stop()
