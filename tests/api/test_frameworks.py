"""The frameworks resource over HTTP: drafts, publishing, cloning, import/export, validation."""

import json
from typing import Any

import httpx
import pytest
import yaml

from tests.conftest import Tenant
from tests.factories import small_framework

pytestmark = pytest.mark.anyio

PROBLEM = "application/problem+json"


async def _create(
    client: httpx.AsyncClient, tenant: Tenant, doc: dict[str, Any], **params: Any
) -> httpx.Response:
    return await client.post("/v1/frameworks", json=doc, headers=tenant.headers, params=params)


async def test_builtin_ladder_is_listed_for_every_tenant(
    client: httpx.AsyncClient, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    for tenant in (tenant_a, tenant_b):
        r = await client.get("/v1/frameworks", headers=tenant.headers)
        assert r.status_code == 200
        items = {i["key"]: i for i in r.json()["items"]}
        assert items["product-management"]["builtin"] is True
        assert items["product-management"]["latest_published_version"] == 1


async def test_create_draft_then_publish_then_it_is_immutable(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    r = await _create(client, tenant_a, small_framework())
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["status"], body["version"], body["builtin"]) == ("draft", 1, False)
    etag = r.headers["etag"]

    # No published version yet: the framework's default view is a clear 404.
    r = await client.get("/v1/frameworks/eng-ladder", headers=tenant_a.headers)
    assert r.status_code == 404
    assert r.headers["content-type"] == PROBLEM

    changed = small_framework(name="Engineering ladder v1")
    r = await client.put(
        "/v1/frameworks/eng-ladder/versions/1",
        json=changed,
        headers={**tenant_a.headers, "If-Match": etag},
    )
    assert r.status_code == 200, r.text
    assert r.json()["document"]["name"] == "Engineering ladder v1"
    assert r.headers["etag"] != etag

    r = await client.post("/v1/frameworks/eng-ladder/versions/1/publish", headers=tenant_a.headers)
    assert r.status_code == 200
    assert r.json()["status"] == "published"

    r = await client.put(
        "/v1/frameworks/eng-ladder/versions/1",
        json=changed,
        headers={**tenant_a.headers, "If-Match": r.headers["etag"]},
    )
    assert r.status_code == 409
    assert r.headers["content-type"] == PROBLEM
    assert "published" in r.json()["detail"]

    r = await client.get("/v1/frameworks/eng-ladder", headers=tenant_a.headers)
    assert r.status_code == 200
    assert r.json()["version"] == 1


async def test_update_needs_if_match_and_refuses_stale_etag(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    r = await _create(client, tenant_a, small_framework())
    old = r.headers["etag"]
    r = await client.put(
        "/v1/frameworks/eng-ladder/versions/1", json=small_framework(), headers=tenant_a.headers
    )
    assert r.status_code == 428
    r = await client.put(
        "/v1/frameworks/eng-ladder/versions/1",
        json=small_framework(),
        headers={**tenant_a.headers, "If-Match": old},
    )
    assert r.status_code == 200
    r = await client.put(
        "/v1/frameworks/eng-ladder/versions/1",
        json=small_framework(),
        headers={**tenant_a.headers, "If-Match": old},
    )
    assert r.status_code == 412


async def test_new_version_archives_the_previous_on_publish(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    await _create(client, tenant_a, small_framework(), publish=True)
    r = await client.post("/v1/frameworks/eng-ladder/versions", headers=tenant_a.headers)
    assert r.status_code == 201
    assert r.json()["version"] == 2
    assert r.json()["status"] == "draft"
    r = await client.post("/v1/frameworks/eng-ladder/versions", headers=tenant_a.headers)
    assert r.status_code == 409  # one open draft at a time
    r = await client.post("/v1/frameworks/eng-ladder/versions/2/publish", headers=tenant_a.headers)
    assert r.status_code == 200
    r = await client.get("/v1/frameworks/eng-ladder/versions", headers=tenant_a.headers)
    assert [(v["version"], v["status"]) for v in r.json()["items"]] == [
        (1, "archived"),
        (2, "published"),
    ]


async def test_builtin_is_read_only_but_can_be_cloned(
    client: httpx.AsyncClient, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    r = await client.post("/v1/frameworks/product-management/versions", headers=tenant_a.headers)
    assert r.status_code == 409
    assert "read-only" in r.json()["detail"]
    r = await client.post(
        "/v1/frameworks/product-management/clone",
        json={"key": "our-pm-ladder"},
        headers=tenant_a.headers,
    )
    assert r.status_code == 201, r.text
    clone = r.json()
    assert (clone["key"], clone["status"], clone["builtin"]) == ("our-pm-ladder", "draft", False)
    original = (
        await client.get("/v1/frameworks/product-management", headers=tenant_a.headers)
    ).json()
    assert clone["document"]["competencies"] == original["document"]["competencies"]
    # The clone is tenant A's alone.
    r = await client.get("/v1/frameworks/our-pm-ladder/versions/1", headers=tenant_b.headers)
    assert r.status_code == 404
    listed = {
        i["key"]
        for i in (await client.get("/v1/frameworks", headers=tenant_b.headers)).json()["items"]
    }
    assert "our-pm-ladder" not in listed


async def test_export_import_round_trip_yaml_and_json(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    for fmt, content_type in (("yaml", "application/yaml"), ("json", "application/json")):
        r = await client.get(
            f"/v1/frameworks/product-management/versions/1/export?format={fmt}",
            headers=tenant_a.headers,
        )
        assert r.status_code == 200
        exported = r.content
        data = yaml.safe_load(exported) if fmt == "yaml" else json.loads(exported)
        data["key"] = f"pm-copy-{fmt}"
        text = yaml.safe_dump(data, sort_keys=False) if fmt == "yaml" else json.dumps(data)
        r = await client.post(
            "/v1/frameworks/import",
            content=text,
            headers={**tenant_a.headers, "Content-Type": content_type},
            params={"publish": "true"},
        )
        assert r.status_code == 201, r.text
        r = await client.get(
            f"/v1/frameworks/pm-copy-{fmt}/versions/1/export?format={fmt}", headers=tenant_a.headers
        )
        again = yaml.safe_load(r.content) if fmt == "yaml" else json.loads(r.content)
        assert again == data


async def test_import_adds_a_version_to_an_existing_framework(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    await _create(client, tenant_a, small_framework(), publish=True)
    r = await client.post(
        "/v1/frameworks/import",
        json=small_framework(name="Renamed"),
        headers=tenant_a.headers,
        params={"publish": "true"},
    )
    assert r.status_code == 201
    assert r.json()["version"] == 2
    r = await client.get("/v1/frameworks/eng-ladder", headers=tenant_a.headers)
    assert r.json()["document"]["name"] == "Renamed"


def _locs(response: httpx.Response) -> list[list[Any]]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    return [e["loc"] for e in response.json()["errors"]]


async def test_broken_frameworks_are_refused_naming_the_field(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    doc = small_framework()
    doc["competencies"][1]["key"] = "coding"  # duplicate
    assert ["competencies", 1, "key"] in _locs(await _create(client, tenant_a, doc))

    doc = small_framework()
    doc["competencies"][0]["expectations"]["principal"] = {"required": 1}
    assert ["competencies", 0, "expectations", "principal"] in _locs(
        await _create(client, tenant_a, doc)
    )

    doc = small_framework()
    doc["competencies"][2]["expectations"]["mid"]["required"] = 7
    assert ["competencies", 2, "expectations", "mid", "required"] in _locs(
        await _create(client, tenant_a, doc)
    )

    doc = small_framework()
    doc["levels"][2]["rank"] = 2  # collides with "mid" on the ic path
    assert ["levels", 2, "rank"] in _locs(await _create(client, tenant_a, doc))

    doc = small_framework()
    doc["competencies"][0]["weight"] = -1
    assert ["body", "competencies", 0, "weight"] in _locs(await _create(client, tenant_a, doc))

    doc = small_framework()
    doc["areas"][0]["emphasis"]["mid"] = 0.9  # 0.9 + 0.4
    assert ["areas", "emphasis", "mid"] in _locs(await _create(client, tenant_a, doc))

    doc = small_framework()
    doc["activities"][0]["develops"] = {"cooking": 1}
    assert ["activities", 0, "develops", "cooking"] in _locs(await _create(client, tenant_a, doc))

    doc = small_framework(surprise=True)
    assert ["body", "surprise"] in _locs(await _create(client, tenant_a, doc))

    # Numbers are JSON numbers: a boolean or a numeric string is not coerced into one.
    for value in (True, "2"):
        doc = small_framework()
        doc["competencies"][0]["weight"] = value
        assert ["body", "competencies", 0, "weight"] in _locs(await _create(client, tenant_a, doc))
        doc = small_framework()
        doc["levels"][0]["rank"] = value
        assert ["body", "levels", 0, "rank"] in _locs(await _create(client, tenant_a, doc))
    headers = {**tenant_a.headers, "Content-Type": "application/yaml"}
    doc = small_framework()
    doc["competencies"][0]["expectations"]["mid"] = {"required": True}
    r = await client.post("/v1/frameworks/import", content=yaml.safe_dump(doc), headers=headers)
    assert r.status_code == 422, r.text
    assert ["competencies", 0, "expectations", "mid", "required"] in [
        e["loc"][-5:] for e in r.json()["errors"]
    ], r.json()

    # Nothing partial was stored.
    listed = {
        i["key"]
        for i in (await client.get("/v1/frameworks", headers=tenant_a.headers)).json()["items"]
    }
    assert "eng-ladder" not in listed


async def test_import_refuses_bad_yaml_with_a_problem(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    headers = {**tenant_a.headers, "Content-Type": "application/yaml"}
    r = await client.post("/v1/frameworks/import", content=b"key: [unclosed", headers=headers)
    assert r.status_code == 422
    assert r.headers["content-type"] == PROBLEM
    bomb = b"a: &a [1, 2]\nb: [*a, *a]\n"
    r = await client.post("/v1/frameworks/import", content=bomb, headers=headers)
    assert r.status_code == 422
    assert "alias" in r.json()["detail"]
    r = await client.post("/v1/frameworks/import", content=b"- just\n- a list\n", headers=headers)
    assert r.status_code == 422
