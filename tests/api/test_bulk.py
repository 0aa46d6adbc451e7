"""Bulk ingest of subjects and assessments: all-or-nothing by default, partial on request."""

import json
from typing import Any

import httpx
import pytest

from tests.api.test_subjects_assessments import assessment, subject
from tests.conftest import Tenant

pytestmark = pytest.mark.anyio


def rated(ref: str, role: str = "manager", value: int = 3) -> dict[str, Any]:
    return assessment(
        ref,
        role=role,
        ratings=[
            {"competency": "execution", "proficiency": value},
            {"competency": "communication", "proficiency": value},
        ],
    )


async def test_bulk_subjects_then_assessments(client: httpx.AsyncClient, tenant_a: Tenant) -> None:
    h = tenant_a.headers
    r = await client.post(
        "/v1/subjects/bulk", json=[subject(f"emp-{i}") for i in range(50)], headers=h
    )
    assert r.status_code == 201, r.text
    assert r.json()["created"] == 50
    body = [rated(f"emp-{i}") for i in range(50)]
    r = await client.post("/v1/assessments/bulk", json=body, headers=h)
    assert r.status_code == 201, r.text
    result = r.json()
    assert (result["created"], result["ratings_created"], result["refused"]) == (50, 100, [])
    one = await client.get(f"/v1/assessments/{result['ids'][7]}", headers=h)
    assert one.json()["subject_ref"] == "emp-7"
    assert {x["competency"]: x["proficiency"] for x in one.json()["ratings"]} == {
        "execution": 3,
        "communication": 3,
    }
    score = await client.get("/v1/subjects/emp-7/score", headers=h)
    assert score.status_code == 200
    assert score.json()["explanation"]["distinct_raters"] == 1


async def test_ndjson_stream(client: httpx.AsyncClient, tenant_a: Tenant) -> None:
    h = tenant_a.headers
    await client.post("/v1/subjects/bulk", json=[subject("a"), subject("b")], headers=h)
    stream = "\n".join(json.dumps(rated(ref)) for ref in ("a", "b")) + "\n"
    r = await client.post(
        "/v1/assessments/bulk",
        content=stream,
        headers={**h, "Content-Type": "application/x-ndjson"},
    )
    assert r.status_code == 201, r.text
    assert r.json()["created"] == 2


async def test_one_bad_item_refuses_the_batch(client: httpx.AsyncClient, tenant_a: Tenant) -> None:
    h = tenant_a.headers
    await client.post("/v1/subjects/bulk", json=[subject("a"), subject("b")], headers=h)
    bad = rated("b")
    bad["ratings"][1]["proficiency"] = 42
    r = await client.post(
        "/v1/assessments/bulk", json=[rated("a"), bad, rated("nobody")], headers=h
    )
    assert r.status_code == 422
    locs = [e["loc"] for e in r.json()["errors"]]
    assert ["body", 1, "ratings", 1, "proficiency"] in locs
    assert ["body", 2, "subject_ref"] in locs
    assert (await client.get("/v1/assessments", headers=h)).json()["items"] == []


async def test_partial_mode_stores_the_valid_items(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    h = tenant_a.headers
    await client.post("/v1/subjects/bulk", json=[subject("a")], headers=h)
    r = await client.post(
        "/v1/assessments/bulk",
        params={"mode": "partial"},
        json=[rated("a"), {"nonsense": True}, rated("ghost")],
        headers=h,
    )
    assert r.status_code == 201
    result = r.json()
    assert result["created"] == 1
    assert [x["index"] for x in result["refused"]] == [1, 2]
    r = await client.post(
        "/v1/subjects/bulk",
        params={"mode": "partial"},
        json=[subject("a"), subject("c"), subject("c")],
        headers=h,
    )
    assert r.json()["created"] == 1
    assert [x["index"] for x in r.json()["refused"]] == [0, 2]


async def test_bulk_body_errors(client: httpx.AsyncClient, tenant_a: Tenant) -> None:
    h = tenant_a.headers
    for content, ctype in (
        (b"{}", "application/json"),
        (b"[]", "application/json"),
        (b"not json", "application/json"),
        (b'{"a": 1}\n{oops\n', "application/x-ndjson"),
    ):
        r = await client.post(
            "/v1/assessments/bulk", content=content, headers={**h, "Content-Type": ctype}
        )
        assert r.status_code == 422, content
        assert r.headers["content-type"] == "application/problem+json"
