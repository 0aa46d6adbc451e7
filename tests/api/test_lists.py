"""Every list answers one envelope, `{items, next_cursor}`, and pages the same way."""

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.config import Settings
from tests.api.test_subjects_assessments import PROBLEM, subject
from tests.api.test_webhooks import allow_private  # noqa: F401 - a fixture of this module
from tests.conftest import Tenant

pytestmark = pytest.mark.anyio


async def walk(client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> list[Any]:
    """Every item of a list, one per page, following next_cursor until it is null."""
    items: list[Any] = []
    cursor = ""  # an empty cursor is the first page
    for _ in range(100):
        r = await client.get(url, params={"limit": 1, "cursor": cursor}, headers=headers)
        assert r.status_code == 200, (url, r.text)
        page = r.json()
        assert set(page) == {"items", "next_cursor"}, (url, page)
        assert len(page["items"]) <= 1
        items += page["items"]
        if page["next_cursor"] is None:
            return items
        cursor = page["next_cursor"]
    raise AssertionError(f"{url} never ended")


async def test_every_list_pages_with_one_envelope(
    app: FastAPI,
    client: httpx.AsyncClient,
    tenant_a: Tenant,
    allow_private: Settings,  # noqa: F811
) -> None:
    h = tenant_a.headers
    for i in range(3):
        r = await client.post("/v1/subjects", json=subject(f"p-{i}"), headers=h)
        assert r.status_code == 201, r.text
        body = {"name": f"key {i}", "scopes": ["subjects:read"]}
        assert (await client.post("/v1/api-keys", json=body, headers=h)).status_code == 201
        hook = {"url": f"http://127.0.0.1:9/hook-{i}", "events": ["assessment.created"]}
        assert (await client.post("/v1/webhooks", json=hook, headers=h)).status_code == 201
    r = await client.post(
        "/v1/frameworks/product-management/clone", json={"key": "acme-pm"}, headers=h
    )
    assert r.status_code == 201, r.text
    r = await client.post("/v1/frameworks/acme-pm/versions/1/publish", headers=h)
    assert r.status_code == 200, r.text
    r = await client.post("/v1/frameworks/acme-pm/versions", headers=h)
    assert r.status_code == 201, r.text
    activities = ["competitive_teardown", "stakeholder_map_and_alignment"]
    for activity in activities:
        r = await client.post(
            "/v1/subjects/p-0/completed-activities",
            json={"activity": activity, "completed_at": "2026-10-20T00:00:00Z"},
            headers=h,
        )
        assert r.status_code == 201, r.text
    r = await client.post(
        "/v1/assessments",
        json={
            "subject_ref": "p-0",
            "framework": {"key": "product-management"},
            "rater_ref": "m",
            "rater_role": "manager",
            "assessed_at": "2026-10-01T09:00:00Z",
            "ratings": [{"competency": "execution", "proficiency": 3}],
        },
        headers=h,
    )
    assert r.status_code == 201, r.text

    subjects = await walk(client, "/v1/subjects", h)
    assert [s["external_ref"] for s in subjects] == ["p-0", "p-1", "p-2"]
    keys = await walk(client, "/v1/api-keys", h)
    assert [k["name"] for k in keys] == ["admin", "key 0", "key 1", "key 2"]
    hooks = await walk(client, "/v1/webhooks", h)
    assert [w["url"] for w in hooks] == [f"http://127.0.0.1:9/hook-{i}" for i in range(3)]
    deliveries = await walk(client, f"/v1/webhooks/{hooks[0]['id']}/deliveries", h)
    assert [d["event"] for d in deliveries] == ["assessment.created"]
    frameworks = await walk(client, "/v1/frameworks", h)
    assert [f["key"] for f in frameworks] == ["acme-pm", "product-management"]
    versions = await walk(client, "/v1/frameworks/acme-pm/versions", h)
    assert [v["version"] for v in versions] == [1, 2]
    done = await walk(client, "/v1/subjects/p-0/completed-activities", h)
    assert sorted(c["activity"] for c in done) == sorted(activities)
    assert len(await walk(client, "/v1/assessments", h)) == 1
    assert len(await walk(client, "/v1/audit-events", h)) >= 10

    # Every list of the document is one of these, with the same envelope and parameters.
    doc: dict[str, Any] = app.openapi()
    for path, item in doc["paths"].items():
        op = item.get("get")
        if op is None or path.startswith(("/ims/", "/healthz", "/readyz")):
            continue
        schema = op["responses"]["200"]["content"]["application/json"]["schema"]
        ref = schema.get("$ref", "")
        if not ref.endswith("Page"):
            continue
        props = doc["components"]["schemas"][ref.rsplit("/", 1)[1]]["properties"]
        assert set(props) == {"items", "next_cursor"}, path
        params = {p["name"]: p for p in op["parameters"]}
        assert params["limit"]["schema"]["maximum"] == 200, path
        assert "cursor" in params, path


async def test_limits_are_refused_never_silently_cut(
    app: FastAPI, client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    h = tenant_a.headers
    r = await client.get("/v1/subjects", params={"limit": 201}, headers=h)
    assert r.status_code == 422
    app.state.settings = app.state.settings.model_copy(update={"max_page_size": 20})
    r = await client.get("/v1/api-keys", params={"limit": 21}, headers=h)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    assert r.json()["errors"][0]["loc"] == ["query", "limit"]
    assert "20" in r.json()["errors"][0]["msg"]
    r = await client.get("/v1/api-keys", params={"limit": 20}, headers=h)
    assert r.status_code == 200
