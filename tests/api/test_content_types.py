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


async def test_numbers_are_numbers_nothing_is_coerced_into_one(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    # `"proficiency": true` was stored as 1, `"3"` as 3 and `"confidence": false` as 0.0.
    h = tenant_a.headers
    assert (await client.post("/v1/subjects", json=subject("typed"), headers=h)).status_code == 201
    base = {
        "subject_ref": "typed",
        "framework": {"key": "product-management"},
        "rater_ref": "m",
        "rater_role": "manager",
        "assessed_at": "2026-10-01T09:00:00Z",
    }
    for rating, field in (
        ({"competency": "execution", "proficiency": True}, "proficiency"),
        ({"competency": "execution", "proficiency": "3"}, "proficiency"),
        ({"competency": "execution", "proficiency": 3, "confidence": False}, "confidence"),
        ({"competency": "execution", "proficiency": 3, "confidence": "0.5"}, "confidence"),
    ):
        r = await client.post("/v1/assessments", json={**base, "ratings": [rating]}, headers=h)
        assert r.status_code == 422, (rating, r.text)
        assert r.json()["errors"][0]["loc"] == ["body", "ratings", 0, field], r.json()
    version = {**base, "framework": {"key": "product-management", "version": "1"}}
    r = await client.post(
        "/v1/assessments",
        json={**version, "ratings": [{"competency": "execution", "proficiency": 3}]},
        headers=h,
    )
    assert r.status_code == 422, r.text
    evaluate = {
        "framework": {"key": "product-management"},
        "ratings": [{"competency": "execution", "proficiency": True, "rater_role": "manager"}],
    }
    r = await client.post("/v1/evaluate", json=evaluate, headers=h)
    assert r.status_code == 422, r.text
    r = await client.post(
        "/v1/subjects/typed/what-if", json={"changes": {"execution": "4"}}, headers=h
    )
    assert r.status_code == 422, r.text
    r = await client.get("/v1/assessments", params={"subject_ref": "typed"}, headers=h)
    assert r.json()["items"] == []  # nothing was stored
    good = {**base, "ratings": [{"competency": "execution", "proficiency": 3, "confidence": 1}]}
    assert (await client.post("/v1/assessments", json=good, headers=h)).status_code == 201


async def test_a_whole_number_written_with_a_fraction_is_still_an_integer(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    # JSON Schema (and so the OpenAPI document) calls 3.0 an integer: it is accepted as 3.
    h = tenant_a.headers
    assert (await client.post("/v1/subjects", json=subject("whole"), headers=h)).status_code == 201
    body = {
        "subject_ref": "whole",
        "framework": {"key": "product-management", "version": 1.0},
        "rater_ref": "m",
        "rater_role": "manager",
        "assessed_at": "2026-10-01T09:00:00Z",
        "ratings": [{"competency": "execution", "proficiency": 3.0}],
    }
    r = await client.post("/v1/assessments", json=body, headers=h)
    assert r.status_code == 201, r.text
    assert r.json()["ratings"][0]["proficiency"] == 3
    body["ratings"] = [{"competency": "execution", "proficiency": 3.5}]
    assert (await client.post("/v1/assessments", json=body, headers=h)).status_code == 422
