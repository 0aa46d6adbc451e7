"""CASE routes over HTTP: Idempotency-Key on import, URIs from configuration, indexed lookups."""

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.config import Settings
from tests.conftest import Tenant

pytestmark = pytest.mark.anyio

CASE = "/ims/case/v1p1"
IMPORT = "/v1/frameworks/import/case"
FOREIGN = Path(__file__).parent / "fixtures" / "foreign-data-literacy.json"
# Creates whose response carries a secret shown once: storing it for replay would keep it.
SECRET_CREATES = {"/v1/api-keys", "/v1/webhooks"}
# Creates that are upserts by their natural key: a retry replaces the standing proposal with the
# same one (200), so it cannot create a second (tests/calibration/test_sessions.py checks it).
UPSERTS = {"/v1/calibration/sessions/{session_id}/proposals"}


def foreign() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(FOREIGN.read_text())
    return data


async def _versions(client: httpx.AsyncClient, tenant: Tenant, key: str) -> list[int]:
    r = await client.get(f"/v1/frameworks/{key}/versions", headers=tenant.headers)
    assert r.status_code == 200, r.text
    return [v["version"] for v in r.json()["items"]]


# --- Idempotency-Key ------------------------------------------------------------------------------


async def test_case_import_replay_returns_the_first_response_and_imports_nothing(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    keyed = {**tenant_a.headers, "Idempotency-Key": "case-import-1"}
    first = await client.post(IMPORT, json=foreign(), params={"publish": "true"}, headers=keyed)
    assert first.status_code == 201, first.text
    key = first.json()["framework"]["key"]
    assert first.headers["location"] == f"/v1/frameworks/{key}/versions/1"
    again = await client.post(IMPORT, json=foreign(), params={"publish": "true"}, headers=keyed)
    assert again.status_code == 201, again.text
    assert again.json() == first.json()
    assert again.headers["idempotency-replayed"] == "true"
    assert again.headers["etag"] == first.headers["etag"]
    assert await _versions(client, tenant_a, key) == [1]

    unkeyed = await client.post(IMPORT, json=foreign(), headers=tenant_a.headers)
    assert unkeyed.status_code == 201
    assert await _versions(client, tenant_a, key) == [1, 2]


async def test_case_import_same_key_with_another_request_is_refused(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    keyed = {**tenant_a.headers, "Idempotency-Key": "case-import-2"}
    first = await client.post(IMPORT, json=foreign(), headers=keyed)
    assert first.status_code == 201, first.text
    key = first.json()["framework"]["key"]
    changed = foreign()
    changed["CFDocument"]["description"] = "Another body"
    for body, params in ((changed, {}), (foreign(), {"publish": "true"})):
        r = await client.post(IMPORT, json=body, params=params, headers=keyed)
        assert r.status_code == 422, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["errors"][0]["loc"] == ["header", "Idempotency-Key"]
    assert await _versions(client, tenant_a, key) == [1]


async def test_every_create_declares_idempotency_key(app: FastAPI) -> None:
    creates = []
    for path, operations in app.openapi()["paths"].items():
        post = operations.get("post")
        if post is None or "201" not in post["responses"] or path in SECRET_CREATES | UPSERTS:
            continue
        creates.append(path)
        headers = {p["name"] for p in post.get("parameters", []) if p["in"] == "header"}
        assert "Idempotency-Key" in headers, path
    assert IMPORT in creates
    assert len(creates) >= 8


# --- URIs from PUBLIC_BASE_URL --------------------------------------------------------------------


def _uris(data: Any) -> list[str]:
    """Every "uri" value anywhere in a CASE response."""
    if isinstance(data, dict):
        own = [data["uri"]] if isinstance(data.get("uri"), str) else []
        return own + [u for v in data.values() for u in _uris(v)]
    if isinstance(data, list):
        return [u for v in data for u in _uris(v)]
    return []


async def test_case_uris_come_from_the_configured_base_url_never_the_host_header(
    app: FastAPI, client: httpx.AsyncClient, tenant_a: Tenant, settings: Settings
) -> None:
    public = "https://ladder.example.org/competency"
    app.state.settings = settings.model_copy(update={"public_base_url": public})
    hostile = {**tenant_a.headers, "Host": "evil.example", "X-Forwarded-Host": "evil.example"}
    listed = await client.get(f"{CASE}/CFDocuments", headers=hostile)
    assert listed.status_code == 200, listed.text
    document = listed.json()["CFDocuments"][0]
    responses = [listed.json()]
    for path in (
        f"{CASE}/CFPackages/{document['identifier']}",
        f"{CASE}/CFDocuments/{document['identifier']}",
        "/v1/frameworks/product-management/versions/1/export/case",
    ):
        r = await client.get(path, headers=hostile)
        assert r.status_code == 200, r.text
        responses.append(r.json())
    item = responses[1]["CFItems"][0]["identifier"]
    r = await client.get(f"{CASE}/CFItems/{item}", headers=hostile)
    assert r.status_code == 200, r.text
    responses.append(r.json())
    uris = _uris(responses)
    assert len(uris) > 100
    assert all(u.startswith(f"{public}{CASE}/") for u in uris), [
        u for u in uris if not u.startswith(public)
    ][:3]
    assert "evil.example" not in json.dumps(responses)


def test_public_base_url_must_be_a_plain_http_url() -> None:
    assert Settings().public_base_url == "http://localhost:8000"
    assert Settings(public_base_url="https://x.example/base/").public_base_url == (
        "https://x.example/base"
    )
    for bad in (
        "ftp://x.example",
        "https://user:pw@x.example",
        "https://x.example/?q=1",
        "https://x.example/#f",
        "//x.example",
        "https://x.example:99999",
        "https://x.example/a b",
    ):
        with pytest.raises(ValueError, match="public_base_url"):
            Settings(public_base_url=bad)
