"""A body is read only in a media type its operation documents; anything else is a 415."""

import json
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.api.test_subjects_assessments import PROBLEM, subject
from tests.conftest import Tenant

pytestmark = pytest.mark.anyio


def _body_operations(app: FastAPI) -> list[tuple[str, str, list[str]]]:
    doc: dict[str, Any] = app.openapi()
    return [
        (method, path, sorted(op["requestBody"]["content"]))
        for path, item in doc["paths"].items()
        for method, op in item.items()
        if "requestBody" in op
    ]


async def test_every_body_in_an_undeclared_media_type_is_refused_with_415(
    app: FastAPI, client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    operations = _body_operations(app)
    assert len(operations) >= 15
    body = json.dumps(subject("plain")).encode()
    for method, path, declared in operations:
        assert "415" in app.openapi()["paths"][path][method]["responses"], (method, path)
        url = path.replace("{ref}", "plain").replace("{key}", "product-management")
        url = url.replace("{version}", "1")
        for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
            headers = dict(tenant_a.headers)
            if content_type:
                headers["Content-Type"] = content_type
            r = await client.request(method.upper(), url, content=body, headers=headers)
            assert r.status_code == 415, (method, path, content_type, r.status_code, r.text)
            assert r.headers["content-type"].startswith(PROBLEM)
            assert declared[0] in r.json()["detail"], r.json()
    # Authentication comes first: without a key, the same request is a 401, whatever its body.
    r = await client.post("/v1/subjects", content=body, headers={"Content-Type": "text/plain"})
    assert r.status_code == 401, r.text
    # Nothing was stored by any of them: the subject they all named does not exist.
    r = await client.get("/v1/subjects/plain", headers=tenant_a.headers)
    assert r.status_code == 404


async def test_documented_media_types_and_their_aliases_are_read(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    h = tenant_a.headers
    r = await client.post(
        "/v1/subjects",
        content=json.dumps(subject("json-charset")),
        headers={**h, "Content-Type": "application/json; charset=utf-8"},
    )
    assert r.status_code == 201, r.text
    for i, media in enumerate(("application/x-ndjson", "application/ndjson", "application/jsonl")):
        r = await client.post(
            "/v1/subjects/bulk",
            content=json.dumps(subject(f"nd-{i}")) + "\n",
            headers={**h, "Content-Type": media},
        )
        assert r.status_code == 201, (media, r.text)
    r = await client.get("/v1/subjects/nd-2", headers=h)
    assert r.status_code == 200
