"""Tenant isolation over HTTP: B can neither see, list, change, delete nor reference A's objects.

Another tenant's object answers 404, exactly like one that does not exist (never 403, which
would confirm it exists). Runs on Postgres (where row-level security backs it) and SQLite.
"""

from typing import Any

import httpx
import pytest

from app.interop.case import CaseIds
from tests.conftest import Tenant
from tests.factories import small_framework
from tests.security.support import (
    DISPLAY_NAME,
    EVIDENCE,
    PROBLEM,
    Endpoint,
    World,
    assessment_body,
    bearer,
    call,
    route_app,
    route_table,
    subject_body,
)

pytestmark = pytest.mark.anyio

ENDPOINTS = route_table(route_app()).protected
ADDRESSED = [e for e in ENDPOINTS if e.path_params]

# Valid bodies and queries for routes that name an object in their path, so that only the
# object's ownership can make them fail. A new route needing more than `{}` gets an entry here.
BODIES: dict[str, Any] = {
    "PUT /v1/frameworks/{key}/versions/{version}": small_framework(name="Overwritten"),
    "POST /v1/frameworks/{key}/versions": small_framework(name="New draft"),
    "POST /v1/frameworks/{key}/clone": {"key": "copied-ladder"},
    "PATCH /v1/subjects/{ref}": {"display_name": "Overwritten"},
    "POST /v1/subjects/{ref}/what-if": {"changes": {"coding": 3}},
    "POST /v1/subjects/{ref}/completed-activities": {
        "activity": "design-review",
        "completed_at": "2026-10-03T00:00:00Z",
    },
    "POST /v1/learning-records/mboxes/{ref}": {"mbox": "mailto:someone@example.com"},
    "POST /v1/calibration/sessions/{session_id}/proposals": {
        "subject_ref": "emp-1",
        "competency": "coding",
        "value": 2,
        "reason": "Overwritten",
    },
}
QUERIES: dict[str, dict[str, Any]] = {}


def _not_found(r: httpx.Response, what: str) -> None:
    assert r.status_code == 404, f"{what}: {r.status_code} {r.text[:300]}"
    assert r.headers["content-type"] == PROBLEM, what
    assert DISPLAY_NAME not in r.text and EVIDENCE not in r.text, what


def _request_order(endpoint: Endpoint) -> tuple[bool, bool, str]:
    # Reads first, destructive calls last, erasing the subject at the very end.
    destructive = endpoint.method == "DELETE"
    return (destructive, destructive and "{ref}" in endpoint.path, endpoint.id)


def _values(world: World, endpoint: Endpoint) -> dict[str, str]:
    values = world.path_values
    if "/CFItems/" in endpoint.path:
        # Items have identifiers of their own: the small framework's "craft" area.
        ids = CaseIds(owner=world.tenant.id, key=world.framework_key, version=1)
        values = {**values, "sourcedId": ids.of("area", "craft")}
    missing = [name for name, _ in endpoint.path_params if name not in values]
    assert not missing, f"{endpoint.id}: teach World.path_values about {missing}"
    return values


async def _send(
    client: httpx.AsyncClient, endpoint: Endpoint, world: World, headers: dict[str, str]
) -> httpx.Response:
    if endpoint.method in ("PUT", "PATCH"):
        headers = {**headers, "If-Match": "*"}
    return await call(
        client,
        endpoint,
        _values(world, endpoint),
        headers,
        body=BODIES.get(endpoint.id),
        params=QUERIES.get(endpoint.id),
    )


async def test_every_route_naming_an_object_hides_other_tenants_objects(
    client: httpx.AsyncClient, world_a: World, tenant_b: Tenant, b_subject: str
) -> None:
    assert ADDRESSED, "introspection found no route with a path parameter"
    ordered = sorted(ADDRESSED, key=_request_order)
    failures = []
    for endpoint in ordered:
        r = await _send(client, endpoint, world_a, tenant_b.headers)
        if r.status_code != 404 or r.headers["content-type"] != PROBLEM:
            failures.append(f"B {endpoint.id}: {r.status_code} {r.text[:200]}")
        elif DISPLAY_NAME in r.text or EVIDENCE in r.text:
            failures.append(f"B {endpoint.id}: 404 leaks A's data: {r.text[:200]}")
    assert not failures, "\n".join(failures)

    # Nothing of A's changed.
    a = world_a.tenant.headers
    r = await client.get(f"/v1/subjects/{world_a.subject_ref}", headers=a)
    assert r.status_code == 200
    assert r.json()["display_name"] == DISPLAY_NAME
    r = await client.get(f"/v1/frameworks/{world_a.framework_key}/versions", headers=a)
    assert [v["version"] for v in r.json()["items"]] == [1]
    assert (await client.get("/v1/subjects", headers=bearer(world_a.key_token))).status_code == 200
    r = await client.get(f"/v1/subjects/{world_a.subject_ref}/completed-activities", headers=a)
    assert [c["activity"] for c in r.json()["items"]] == ["pairing"]

    # Positive control: the same requests from A do find A's objects, so B's 404s come from
    # ownership, not from made-up identifiers.
    for endpoint in ordered:
        r = await _send(client, endpoint, world_a, a)
        assert r.status_code != 404, f"A {endpoint.id}: {r.text[:300]}"
        assert r.status_code < 500, f"A {endpoint.id}: {r.text[:300]}"


async def test_frameworks_of_a_are_invisible_and_untouchable_for_b(
    client: httpx.AsyncClient, world_a: World, tenant_b: Tenant
) -> None:
    b = tenant_b.headers
    key = world_a.framework_key
    keys = [f["key"] for f in (await client.get("/v1/frameworks", headers=b)).json()["items"]]
    assert key not in keys
    assert "product-management" in keys
    for method, path, body in (
        ("GET", f"/v1/frameworks/{key}", None),
        ("GET", f"/v1/frameworks/{key}/versions", None),
        ("GET", f"/v1/frameworks/{key}/versions/1", None),
        ("GET", f"/v1/frameworks/{key}/versions/1/export?format=yaml", None),
        ("PUT", f"/v1/frameworks/{key}/versions/1", small_framework(name="Overwritten")),
        ("POST", f"/v1/frameworks/{key}/versions", small_framework(name="Overwritten")),
        ("POST", f"/v1/frameworks/{key}/versions/1/publish", None),
        ("POST", f"/v1/frameworks/{key}/clone", {"key": "stolen"}),
    ):
        r = await client.request(method, path, json=body, headers={**b, "If-Match": "*"})
        _not_found(r, f"{method} {path}")
    r = await client.get(f"/v1/frameworks/{key}/versions", headers=world_a.tenant.headers)
    assert [(v["version"], v["status"]) for v in r.json()["items"]] == [(1, "published")]
    r = await client.get(f"/v1/frameworks/{key}", headers=world_a.tenant.headers)
    assert r.json()["document"]["name"] == small_framework()["name"]


async def test_subjects_of_a_are_invisible_and_untouchable_for_b(
    client: httpx.AsyncClient, world_a: World, tenant_b: Tenant, b_subject: str
) -> None:
    b = tenant_b.headers
    ref = world_a.subject_ref
    etag = (await client.get(f"/v1/subjects/{ref}", headers=world_a.tenant.headers)).headers["etag"]
    _not_found(await client.get(f"/v1/subjects/{ref}", headers=b), "GET subject")
    for if_match in ("*", etag):
        r = await client.patch(
            f"/v1/subjects/{ref}",
            json={"display_name": "Overwritten"},
            headers={**b, "If-Match": if_match},
        )
        _not_found(r, f"PATCH subject If-Match {if_match}")
    _not_found(await client.delete(f"/v1/subjects/{ref}", headers=b), "DELETE subject")

    # B's list, even filtered by A's attribute value, holds only B's subject.
    for params in ({}, {"attribute": f"team:{subject_body(ref)['attributes']['team']}"}):
        r = await client.get("/v1/subjects", params=params, headers=b)
        assert [s["external_ref"] for s in r.json()["items"]] == [b_subject], params
    r = await client.get("/v1/subjects", headers=world_a.tenant.headers)
    assert [s["external_ref"] for s in r.json()["items"]] == [ref]

    r = await client.get(f"/v1/subjects/{ref}", headers=world_a.tenant.headers)
    assert r.json()["display_name"] == DISPLAY_NAME
    assert r.headers["etag"] == etag


async def test_assessments_of_a_are_invisible_for_b(
    client: httpx.AsyncClient, world_a: World, tenant_b: Tenant, b_subject: str
) -> None:
    b = tenant_b.headers
    for assessment_id in world_a.assessment_ids:
        _not_found(await client.get(f"/v1/assessments/{assessment_id}", headers=b), "GET")
    r = await client.get("/v1/assessments", headers=b)
    assert r.status_code == 200
    assert r.json()["items"] == []
    r = await client.get("/v1/assessments", params={"subject_ref": world_a.subject_ref}, headers=b)
    _not_found(r, "list by A's subject_ref")
    r = await client.get("/v1/assessments", params={"rater_ref": "mgr-1"}, headers=b)
    assert r.json()["items"] == []
    r = await client.get("/v1/assessments", headers=world_a.tenant.headers)
    assert sorted(a["id"] for a in r.json()["items"]) == sorted(world_a.assessment_ids)


async def test_b_cannot_reference_a_objects_from_request_bodies_or_queries(
    client: httpx.AsyncClient, world_a: World, tenant_b: Tenant, b_subject: str
) -> None:
    b = tenant_b.headers
    key = world_a.framework_key
    # A's subject, with the built-in framework everyone may use.
    r = await client.post("/v1/assessments", json=_assessment(world_a.subject_ref), headers=b)
    _not_found(r, "assessment of A's subject")
    # B's own subject, rated against A's private framework (latest, or pinned).
    for version in (None, 1):
        r = await client.post(
            "/v1/assessments", json=_assessment(b_subject, key, version=version), headers=b
        )
        _not_found(r, f"assessment on A's framework v{version}")
    evaluate = {
        "framework": {"key": key},
        "ratings": [{"competency": "coding", "proficiency": 2, "rater_role": "manager"}],
    }
    _not_found(await client.post("/v1/evaluate", json=evaluate, headers=b), "evaluate")
    r = await client.post(
        f"/v1/subjects/{b_subject}/what-if",
        json={"changes": {"coding": 3}, "framework": {"key": key}},
        headers=b,
    )
    _not_found(r, "what-if on A's framework")
    for view in ("score", "gaps", "recommendations", "history"):
        r = await client.get(
            f"/v1/subjects/{b_subject}/{view}", params={"framework": key}, headers=b
        )
        _not_found(r, f"{view} on A's framework")

    # Nothing was stored for B, and A's records are unchanged.
    assert (await client.get("/v1/assessments", headers=b)).json()["items"] == []
    r = await client.get("/v1/assessments", headers=world_a.tenant.headers)
    assert len(r.json()["items"]) == 2
    # Positive control: the same requests are valid for the owner.
    a = world_a.tenant.headers
    assert (await client.post("/v1/evaluate", json=evaluate, headers=a)).status_code == 200
    r = await client.post("/v1/assessments", json=_assessment(world_a.subject_ref, key), headers=a)
    assert r.status_code == 201, r.text


async def test_keys_of_a_are_invisible_and_unrevocable_for_b(
    client: httpx.AsyncClient, world_a: World, tenant_b: Tenant
) -> None:
    b = tenant_b.headers
    a_ids = {
        k["id"]
        for k in (await client.get("/v1/api-keys", headers=world_a.tenant.headers)).json()["items"]
    }
    assert world_a.key_id in a_ids and len(a_ids) == 2
    b_ids = {k["id"] for k in (await client.get("/v1/api-keys", headers=b)).json()["items"]}
    assert b_ids and not (a_ids & b_ids)
    for key_id in a_ids:
        _not_found(await client.delete(f"/v1/api-keys/{key_id}", headers=b), "revoke A's key")
    assert (await client.get("/v1/subjects", headers=bearer(world_a.key_token))).status_code == 200
    assert (await client.get("/v1/api-keys", headers=world_a.tenant.headers)).status_code == 200


async def test_a_key_only_ever_acts_for_its_own_tenant(
    client: httpx.AsyncClient, world_a: World, tenant_b: Tenant
) -> None:
    # B's key, naming A's subject ref, reaches B's own namespace (where it does not exist).
    r = await client.get(f"/v1/subjects/{world_a.subject_ref}", headers=tenant_b.headers)
    _not_found(r, "B reading A's ref")
    # Refs and framework keys are per tenant: B may reuse A's and gets its own objects.
    b = tenant_b.headers
    r = await client.post(
        "/v1/frameworks",
        json=small_framework(name="B's ladder"),
        params={"publish": "true"},
        headers=b,
    )
    assert r.status_code == 201, r.text
    r = await client.post(
        "/v1/subjects",
        json=subject_body(world_a.subject_ref, display_name="B person"),
        headers=b,
    )
    assert r.status_code == 201, r.text
    r = await client.post(
        "/v1/assessments", json=_assessment(world_a.subject_ref, "eng-ladder"), headers=b
    )
    assert r.status_code == 201, r.text
    b_assessment = r.json()["id"]

    a = world_a.tenant.headers
    assert (await client.get("/v1/frameworks/eng-ladder", headers=a)).json()["document"][
        "name"
    ] == small_framework()["name"]
    assert (await client.get("/v1/frameworks/eng-ladder", headers=b)).json()["document"][
        "name"
    ] == "B's ladder"
    r = await client.get(f"/v1/subjects/{world_a.subject_ref}", headers=a)
    assert r.json()["display_name"] == DISPLAY_NAME
    r = await client.get("/v1/assessments", params={"subject_ref": world_a.subject_ref}, headers=a)
    assert sorted(x["id"] for x in r.json()["items"]) == sorted(world_a.assessment_ids)
    _not_found(await client.get(f"/v1/assessments/{b_assessment}", headers=a), "A reading B's")


async def test_builtin_framework_is_readable_by_all_and_writable_by_none(
    client: httpx.AsyncClient, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    key = "product-management"
    for tenant in (tenant_a, tenant_b):
        h = tenant.headers
        r = await client.get(f"/v1/frameworks/{key}", headers=h)
        assert r.status_code == 200
        assert r.json()["builtin"] is True
        etag = r.headers["etag"]
        versions = (await client.get(f"/v1/frameworks/{key}/versions", headers=h)).json()
        r = await client.get(f"/v1/frameworks/{key}/versions/1/export", headers=h)
        assert r.status_code == 200
        document = r.json()
        for method, path, body, extra in (
            ("PUT", f"/v1/frameworks/{key}/versions/1", document, {"If-Match": etag}),
            ("PUT", f"/v1/frameworks/{key}/versions/1", document, {"If-Match": "*"}),
            ("POST", f"/v1/frameworks/{key}/versions", document, {}),
            ("POST", f"/v1/frameworks/{key}/versions", None, {}),
            ("POST", f"/v1/frameworks/{key}/versions/1/publish", None, {}),
            ("POST", "/v1/frameworks", document, {}),
            ("POST", "/v1/frameworks/import", document, {}),
        ):
            r = await client.request(method, path, json=body, headers={**h, **extra})
            assert r.status_code == 409, f"{tenant.slug} {method} {path}: {r.text[:300]}"
            assert r.headers["content-type"] == PROBLEM
        r = await client.get(f"/v1/frameworks/{key}/versions", headers=h)
        assert r.json() == versions
        r = await client.get(f"/v1/frameworks/{key}", headers=h)
        assert r.headers["etag"] == etag
        # Adapting it is done by cloning, into the tenant's own namespace.
        r = await client.post(f"/v1/frameworks/{key}/clone", json={"key": "my-pm"}, headers=h)
        assert r.status_code == 201, r.text
        assert r.json()["builtin"] is False
    # Each tenant's clone is its own.
    r = await client.get("/v1/frameworks/my-pm/versions", headers=tenant_a.headers)
    assert len(r.json()["items"]) == 1


def _assessment(ref: str, framework: str = "product-management", **kw: Any) -> dict[str, Any]:
    if framework == "product-management":
        return assessment_body(ref, framework, **kw)
    return assessment_body(ref, framework, competency="coding", proficiency=2, **kw)


async def test_bulk_ingest_cannot_reach_a_objects(
    client: httpx.AsyncClient, world_a: World, tenant_b: Tenant, b_subject: str
) -> None:
    b = tenant_b.headers
    items = [
        _assessment(world_a.subject_ref),  # A's subject
        _assessment(b_subject, world_a.framework_key),  # A's private framework
    ]
    for mode in ("all_or_nothing", "partial"):
        r = await client.post("/v1/assessments/bulk", json=items, params={"mode": mode}, headers=b)
        assert r.status_code in (201, 207, 422), r.text
        assert DISPLAY_NAME not in r.text and EVIDENCE not in r.text
        if r.status_code == 422:
            errors = r.json()["errors"]
        else:
            errors = [e for refusal in r.json()["refused"] for e in refusal["errors"]]
        refused_fields = {(e["loc"][1], e["loc"][2]) for e in errors}
        assert {(0, "subject_ref"), (1, "framework")} <= refused_fields, (mode, errors)
    assert (await client.get("/v1/assessments", headers=b)).json()["items"] == []
    r = await client.get("/v1/assessments", headers=world_a.tenant.headers)
    assert sorted(x["id"] for x in r.json()["items"]) == sorted(world_a.assessment_ids)


async def test_cohorts_only_ever_hold_the_callers_people(
    client: httpx.AsyncClient, world_a: World, tenant_b: Tenant, b_subject: str
) -> None:
    b = tenant_b.headers
    pm = {"key": "product-management"}
    r = await client.post(
        "/v1/cohorts/evaluate",
        json={"framework": pm, "subject_refs": [world_a.subject_ref, b_subject]},
        headers=b,
    )
    assert r.status_code == 200, r.text
    assert r.json()["unknown_refs"] == [world_a.subject_ref]
    assert [p["subject_ref"] for p in r.json()["people"]] == [b_subject]
    assert r.json()["heatmap"]["subject_refs"] == [b_subject]
    for params in ({}, {"format": "csv"}, {"format": "csv", "table": "heatmap"}):
        r = await client.post(
            "/v1/cohorts/evaluate", json={"framework": pm}, params=params, headers=b
        )
        assert r.status_code == 200, r.text
        assert world_a.subject_ref not in r.text, params
    r = await client.post(
        "/v1/cohorts/evaluate", json={"framework": {"key": world_a.framework_key}}, headers=b
    )
    _not_found(r, "cohort on A's framework")
    # The owner's cohort does hold the person (so the checks above could have failed).
    r = await client.post(
        "/v1/cohorts/evaluate", json={"framework": pm}, headers=world_a.tenant.headers
    )
    assert [p["subject_ref"] for p in r.json()["people"]] == [world_a.subject_ref]


async def test_idempotency_keys_are_per_tenant(
    client: httpx.AsyncClient, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    body = subject_body("emp-same")
    key = {"Idempotency-Key": "same-key-1"}
    r = await client.post("/v1/subjects", json=body, headers={**tenant_a.headers, **key})
    assert r.status_code == 201, r.text
    a_id = r.json()["id"]
    # B sends the very same key and body: B gets its own subject, not A's stored response.
    r = await client.post("/v1/subjects", json=body, headers={**tenant_b.headers, **key})
    assert r.status_code == 201, r.text
    assert r.json()["id"] != a_id
    assert "idempotency-replayed" not in r.headers
    # And a replay within A still answers with A's object.
    r = await client.post("/v1/subjects", json=body, headers={**tenant_a.headers, **key})
    assert r.json()["id"] == a_id
    # B reusing the key with another body is B's own business, unrelated to A's request.
    r = await client.post(
        "/v1/subjects", json=subject_body("emp-other"), headers={**tenant_b.headers, **key}
    )
    assert r.status_code == 422
    assert a_id not in r.text
