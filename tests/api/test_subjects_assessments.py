"""Subjects and assessments over HTTP, on Postgres and SQLite."""

from typing import Any

import httpx
import pytest

from tests.conftest import Tenant

pytestmark = pytest.mark.anyio

PROBLEM = "application/problem+json"


def subject(ref: str = "emp-1", **extra: Any) -> dict[str, Any]:
    return {
        "external_ref": ref,
        "display_name": "Ada Lovelace",
        "track": "management",
        "current_level": "pm",
        "attributes": {"team": "growth", "department": "product"},
        **extra,
    }


def assessment(
    ref: str = "emp-1",
    role: str = "manager",
    rater: str = "mgr-1",
    when: str = "2026-10-01T09:00:00Z",
    ratings: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "subject_ref": ref,
        "framework": {"key": "product-management"},
        "rater_ref": rater,
        "rater_role": role,
        "assessed_at": when,
        "ratings": ratings
        or [{"competency": "execution", "proficiency": 3, "evidence": "Shipped checkout v2"}],
    }


async def test_subject_lifecycle(client: httpx.AsyncClient, tenant_a: Tenant) -> None:
    h = tenant_a.headers
    r = await client.post("/v1/subjects", json=subject(), headers=h)
    assert r.status_code == 201, r.text
    assert r.json()["attributes"] == {"team": "growth", "department": "product"}
    assert (await client.post("/v1/subjects", json=subject(), headers=h)).status_code == 409
    r = await client.get("/v1/subjects/emp-1", headers=h)
    etag = r.headers["etag"]
    r = await client.patch("/v1/subjects/emp-1", json={"current_level": "senior_pm"}, headers=h)
    assert r.status_code == 428
    r = await client.patch(
        "/v1/subjects/emp-1", json={"current_level": "senior_pm"}, headers={**h, "If-Match": etag}
    )
    assert r.status_code == 200
    assert r.json()["current_level"] == "senior_pm"
    assert r.json()["display_name"] == "Ada Lovelace"  # untouched fields stay
    r = await client.patch(
        "/v1/subjects/emp-1", json={"current_level": "pm"}, headers={**h, "If-Match": etag}
    )
    assert r.status_code == 412
    assert (await client.delete("/v1/subjects/emp-1", headers=h)).status_code == 204
    assert (await client.get("/v1/subjects/emp-1", headers=h)).status_code == 404


async def test_subject_list_pages_and_filters(client: httpx.AsyncClient, tenant_a: Tenant) -> None:
    h = tenant_a.headers
    for i in range(5):
        team = "growth" if i % 2 == 0 else "platform"
        await client.post(
            "/v1/subjects",
            json=subject(f"emp-{i}", attributes={"team": team}, track="ic" if i == 4 else None),
            headers=h,
        )
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        body = (await client.get("/v1/subjects", params=params, headers=h)).json()
        seen += [s["external_ref"] for s in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"emp-{i}" for i in range(5)]
    r = await client.get("/v1/subjects", params={"attribute": "team:growth"}, headers=h)
    assert [s["external_ref"] for s in r.json()["items"]] == ["emp-0", "emp-2", "emp-4"]
    r = await client.get(
        "/v1/subjects", params={"attribute": "team:growth", "track": "ic"}, headers=h
    )
    assert [s["external_ref"] for s in r.json()["items"]] == ["emp-4"]
    r = await client.get("/v1/subjects", params={"attribute": "nocolon"}, headers=h)
    assert r.status_code == 422
    r = await client.get("/v1/subjects", params={"cursor": "garbage!!"}, headers=h)
    assert r.status_code == 422
    assert r.headers["content-type"] == PROBLEM


async def test_subject_input_is_validated(client: httpx.AsyncClient, tenant_a: Tenant) -> None:
    h = tenant_a.headers
    for bad in (
        subject("bad ref"),
        subject("x" * 201),
        subject(display_name="nul\x00byte"),
        {**subject(), "extra": 1},
    ):
        r = await client.post("/v1/subjects", json=bad, headers=h)
        assert r.status_code == 422, bad
        assert r.headers["content-type"] == PROBLEM


async def test_assessment_is_stored_and_listed(client: httpx.AsyncClient, tenant_a: Tenant) -> None:
    h = tenant_a.headers
    await client.post("/v1/subjects", json=subject(), headers=h)
    r = await client.post("/v1/assessments", json=assessment(), headers=h)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["framework"] == {"key": "product-management", "version": 1}
    assert created["ratings"] == [
        {
            "competency": "execution",
            "proficiency": 3,
            "evidence": "Shipped checkout v2",
            "confidence": None,
        }
    ]
    r = await client.get(f"/v1/assessments/{created['id']}", headers=h)
    assert r.json() == created
    await client.post(
        "/v1/assessments",
        json=assessment(role="self", rater="emp-1", when="2026-10-02T09:00:00Z"),
        headers=h,
    )
    r = await client.get("/v1/assessments", params={"subject_ref": "emp-1"}, headers=h)
    assert [a["rater_role"] for a in r.json()["items"]] == ["self", "manager"]  # newest first
    r = await client.get("/v1/assessments", params={"rater_role": "manager"}, headers=h)
    assert [a["id"] for a in r.json()["items"]] == [created["id"]]
    r = await client.get("/v1/assessments", params={"since": "2026-10-02T00:00:00Z"}, headers=h)
    assert len(r.json()["items"]) == 1
    r = await client.get("/v1/assessments", params={"limit": 1}, headers=h)
    page2 = await client.get(
        "/v1/assessments", params={"limit": 1, "cursor": r.json()["next_cursor"]}, headers=h
    )
    assert page2.json()["items"][0]["id"] == created["id"]
    assert page2.json()["next_cursor"] is None


async def test_bad_ratings_are_refused_and_nothing_is_stored(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    h = tenant_a.headers
    await client.post("/v1/subjects", json=subject(), headers=h)
    bad = assessment(
        ratings=[
            {"competency": "execution", "proficiency": 3},
            {"competency": "juggling", "proficiency": 2},
            {"competency": "communication", "proficiency": 9},
            {"competency": "execution", "proficiency": 2},
        ]
    )
    r = await client.post("/v1/assessments", json=bad, headers=h)
    assert r.status_code == 422
    locs = [e["loc"] for e in r.json()["errors"]]
    assert ["body", "ratings", 1, "competency"] in locs
    assert ["body", "ratings", 2, "proficiency"] in locs
    assert ["body", "ratings", 3, "competency"] in locs
    r = await client.post(
        "/v1/assessments", json=assessment(when="2999-01-01T00:00:00Z"), headers=h
    )
    assert r.status_code == 422
    r = await client.post(
        "/v1/assessments", json={**assessment(), "assessed_at": "2026-10-01T09:00:00"}, headers=h
    )
    assert r.status_code == 422  # timestamps need an offset
    r = await client.post("/v1/assessments", json=assessment(ref="nobody"), headers=h)
    assert r.status_code == 404
    r = await client.post(
        "/v1/assessments",
        json={**assessment(), "framework": {"key": "product-management", "version": 99}},
        headers=h,
    )
    assert r.status_code == 404
    assert (await client.get("/v1/assessments", headers=h)).json()["items"] == []


async def test_attribute_keys_are_still_validated_by_the_server(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    # The OpenAPI document describes attributes as a map with a key rule (propertyNames);
    # the server keeps enforcing that rule whatever a client sends.
    body = subject("bad-keys", attributes={"team name!": "growth"})
    r = await client.post("/v1/subjects", json=body, headers=tenant_a.headers)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    assert r.json()["errors"][0]["loc"][:2] == ["body", "attributes"]
    r = await client.get("/v1/subjects/bad-keys", headers=tenant_a.headers)
    assert r.status_code == 404


async def test_attributes_are_cleared_with_an_empty_map_never_null(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    # A nullable map became a second generated class (SubjectUpdateAttributesType0).
    h = tenant_a.headers
    r = await client.post("/v1/subjects", json=subject("attrs"), headers=h)
    etag = r.headers["ETag"]
    r = await client.patch(
        "/v1/subjects/attrs", json={"attributes": None}, headers={**h, "If-Match": etag}
    )
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["loc"] == ["body", "attributes"]
    r = await client.patch(
        "/v1/subjects/attrs", json={"attributes": {}}, headers={**h, "If-Match": etag}
    )
    assert r.status_code == 200, r.text
    assert r.json()["attributes"] == {}
