"""Every header a client acts on is declared in the OpenAPI document where the service sends it."""

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.api.test_subjects_assessments import assessment, subject
from tests.conftest import Tenant

pytestmark = pytest.mark.anyio

ACTED_ON = ("etag", "location", "retry-after", "idempotency-replayed")


def declared(doc: dict[str, Any], method: str, path: str, status: int) -> set[str]:
    response = doc["paths"][path][method]["responses"][str(status)]
    return {name.lower() for name in response.get("headers", {})}


async def test_headers_sent_are_headers_declared(
    app: FastAPI, client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    doc = app.openapi()
    h = tenant_a.headers
    key = {"Idempotency-Key": "contract-headers-ada"}
    calls: list[tuple[str, str, httpx.Response]] = []

    async def call(method: str, template: str, url: str, **kw: Any) -> httpx.Response:
        r = await client.request(method, url, headers={**h, **kw.pop("headers", {})}, **kw)
        assert r.status_code < 500, r.text
        calls.append((method.lower(), template, r))
        return r

    r = await call("POST", "/v1/subjects", "/v1/subjects", json=subject("ada"), headers=key)
    await call("POST", "/v1/subjects", "/v1/subjects", json=subject("ada"), headers=key)
    etag = r.headers["ETag"]
    await call("GET", "/v1/subjects/{ref}", "/v1/subjects/ada")
    await call(
        "PATCH",
        "/v1/subjects/{ref}",
        "/v1/subjects/ada",
        json={"display_name": "Ada B."},
        headers={"If-Match": etag},
    )
    await call("POST", "/v1/assessments", "/v1/assessments", json=assessment("ada"))
    await call("GET", "/v1/frameworks/{key}", "/v1/frameworks/product-management")
    r = await call(
        "POST",
        "/v1/frameworks/{key}/clone",
        "/v1/frameworks/product-management/clone",
        json={"key": "acme-pm"},
    )
    version = r.json()["version"]
    await call(
        "GET",
        "/v1/frameworks/{key}/versions/{version}",
        f"/v1/frameworks/acme-pm/versions/{version}",
    )
    seen = 0
    for method, template, response in calls:
        sent = {name for name in ACTED_ON if name in response.headers}
        seen += len(sent)
        missing = sent - declared(doc, method, template, response.status_code)
        assert not missing, (method, template, response.status_code, missing)
    assert seen >= 10  # ETags, Locations and a replay were really sent
    # If-Match is enforced (428 without it), so the document says it is required.
    params = doc["paths"]["/v1/subjects/{ref}"]["patch"]["parameters"]
    assert any(p["name"].lower() == "if-match" and p["required"] for p in params)
    r = await client.patch("/v1/subjects/ada", json={"display_name": "x"}, headers=h)
    assert r.status_code == 428
