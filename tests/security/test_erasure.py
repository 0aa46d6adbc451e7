"""Erasing a subject removes everything recorded about the person, in that tenant only."""

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from tests.conftest import Database, Tenant
from tests.security.support import (
    ATTRIBUTE_VALUE,
    DISPLAY_NAME,
    EVIDENCE,
    World,
    as_tenant,
    assessment_body,
    dump_store,
    same_uuid,
    subject_body,
    subscribe_webhook,
)

pytestmark = pytest.mark.anyio


async def _rows_about(
    connection: AsyncConnection, tenant_id: uuid.UUID, subject_id: str, assessment_ids: list[str]
) -> dict[str, int]:
    """Raw counts, by the subject's and assessments' ids, of what the store holds."""
    counts = {}
    wanted = uuid.UUID(subject_id)
    for table, column, ids in (
        ("subject", "id", [wanted]),
        ("assessment", "subject_id", [wanted]),
        ("completed_activity", "subject_id", [wanted]),
        ("rating", "assessment_id", [uuid.UUID(i) for i in assessment_ids]),
    ):
        values = (await connection.execute(text(f"SELECT {column} FROM {table}"))).scalars()
        counts[table] = sum(1 for v in values if any(same_uuid(v, i) for i in ids))
    ratings = (await connection.execute(text("SELECT tenant_id, evidence FROM rating"))).all()
    counts["evidence"] = sum(
        1 for t, evidence in ratings if same_uuid(t, tenant_id) and EVIDENCE in (evidence or "")
    )
    return counts


async def test_erasure_removes_assessments_ratings_evidence_and_activities(
    client: httpx.AsyncClient,
    world_a: World,
    tenant_b: Tenant,
    connection: AsyncConnection,
    database: Database,
) -> None:
    a = world_a.tenant.headers
    ref = world_a.subject_ref
    # A second person of A's, and a person of B's under the same ref: both must survive.
    r = await client.post("/v1/subjects", json=subject_body("emp-keep"), headers=a)
    assert r.status_code == 201
    r = await client.post(
        "/v1/assessments", json=assessment_body("emp-keep", evidence="kept"), headers=a
    )
    kept_assessment = r.json()["id"]
    b = tenant_b.headers
    assert (await client.post("/v1/subjects", json=subject_body(ref), headers=b)).status_code == 201
    r = await client.post("/v1/assessments", json=assessment_body(ref), headers=b)
    assert r.status_code == 201, r.text
    b_assessment = r.json()["id"]

    if database.backend == "postgres":
        await as_tenant(connection, world_a.tenant.id)
    before = await _rows_about(
        connection, world_a.tenant.id, world_a.subject_id, world_a.assessment_ids
    )
    # Positive control: the queries do see the person's data before the erasure.
    assert before == {
        "subject": 1,
        "assessment": 2,
        "completed_activity": 1,
        "rating": 2,
        "evidence": 2,
    }

    assert (await client.delete(f"/v1/subjects/{ref}", headers=a)).status_code == 204

    if database.backend == "postgres":
        await as_tenant(connection, world_a.tenant.id)
    after = await _rows_about(
        connection, world_a.tenant.id, world_a.subject_id, world_a.assessment_ids
    )
    assert after == dict.fromkeys(before, 0)

    # Over HTTP, the person and everything about them are gone...
    assert (await client.get(f"/v1/subjects/{ref}", headers=a)).status_code == 404
    for assessment_id in world_a.assessment_ids:
        r = await client.get(f"/v1/assessments/{assessment_id}", headers=a)
        assert r.status_code == 404
    listed = [x["id"] for x in (await client.get("/v1/assessments", headers=a)).json()["items"]]
    assert listed == [kept_assessment]
    r = await client.get(f"/v1/subjects/{ref}/completed-activities", headers=a)
    assert r.status_code == 404
    # ...and a new person under the same ref starts with a clean history.
    assert (await client.post("/v1/subjects", json=subject_body(ref), headers=a)).status_code == 201
    r = await client.get("/v1/assessments", params={"subject_ref": ref}, headers=a)
    assert r.json()["items"] == []
    r = await client.get(f"/v1/subjects/{ref}/completed-activities", headers=a)
    assert r.json()["items"] == []

    # Other people are untouched, in A and in B.
    assert (await client.get("/v1/subjects/emp-keep", headers=a)).status_code == 200
    r = await client.get(f"/v1/assessments/{kept_assessment}", headers=a)
    assert r.json()["ratings"][0]["evidence"] == "kept"
    assert (await client.get(f"/v1/subjects/{ref}", headers=b)).status_code == 200
    r = await client.get(f"/v1/assessments/{b_assessment}", headers=b)
    assert r.json()["ratings"][0]["evidence"] == EVIDENCE


async def test_erasure_leaves_no_copy_of_the_person_in_any_table(
    client: httpx.AsyncClient,
    tenant_a: Tenant,
    connection: AsyncConnection,
    database: Database,
) -> None:
    # Created the way a careful client does it: with Idempotency-Key, so retries are safe;
    # and with a webhook subscribed, so events about the person are queued.
    a = tenant_a.headers
    await subscribe_webhook(client, tenant_a)
    r = await client.post(
        "/v1/subjects", json=subject_body("emp-9"), headers={**a, "Idempotency-Key": "subj-9"}
    )
    assert r.status_code == 201, r.text
    r = await client.post(
        "/v1/assessments",
        json=assessment_body("emp-9"),
        headers={**a, "Idempotency-Key": "assess-9"},
    )
    assert r.status_code == 201, r.text
    if database.backend == "postgres":
        await as_tenant(connection, tenant_a.id)
    before = await dump_store(connection, tenant_a.id)
    assert EVIDENCE in before["rating"]  # positive control: the scan does see the data

    assert (await client.delete("/v1/subjects/emp-9", headers=a)).status_code == 204

    if database.backend == "postgres":
        await as_tenant(connection, tenant_a.id)
    after = await dump_store(connection, tenant_a.id)
    survivors = {
        personal: sorted(table for table, rows in after.items() if personal in rows)
        for personal in (EVIDENCE, DISPLAY_NAME, ATTRIBUTE_VALUE)
    }
    assert not any(survivors.values()), f"survives the erasure: {survivors}"


async def test_replaying_a_create_after_erasure_does_not_return_the_erased_data(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    a = tenant_a.headers
    subject_request: dict[str, Any] = {
        "json": subject_body("emp-8"),
        "headers": {**a, "Idempotency-Key": "s-8"},
    }
    assessment_request: dict[str, Any] = {
        "json": assessment_body("emp-8"),
        "headers": {**a, "Idempotency-Key": "a-8"},
    }
    assert (await client.post("/v1/subjects", **subject_request)).status_code == 201
    assert (await client.post("/v1/assessments", **assessment_request)).status_code == 201
    assert (await client.delete("/v1/subjects/emp-8", headers=a)).status_code == 204

    # A retry after the erasure must not hand back the erased assessment and its evidence.
    r = await client.post("/v1/assessments", **assessment_request)
    assert EVIDENCE not in r.text
    assert r.status_code == 404, r.text
    # Nor claim to have created a subject that does not exist.
    r = await client.post("/v1/subjects", **subject_request)
    if r.status_code == 201:
        assert (await client.get("/v1/subjects/emp-8", headers=a)).status_code == 200
