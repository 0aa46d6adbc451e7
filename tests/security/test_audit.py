"""The audit log: every change is recorded, without secrets or evidence, per tenant, in pages."""

import base64
import json
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from tests.conftest import Database, Tenant
from tests.factories import small_framework
from tests.security.support import (
    ATTRIBUTE_VALUE,
    DISPLAY_NAME,
    EVIDENCE,
    PROBLEM,
    World,
    all_audit_events,
    as_tenant,
    assessment_body,
    dump,
    key_id_of,
    revoke,
    secret_of,
    subject_body,
)

pytestmark = pytest.mark.anyio


async def _one(client: httpx.AsyncClient, tenant: Tenant, **filters: Any) -> dict[str, Any]:
    events = await all_audit_events(client, tenant, **filters)
    assert len(events) == 1, (filters, events)
    return events[0]


async def test_each_change_writes_an_audit_event(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    h = tenant_a.headers
    actor = str(key_id_of(tenant_a.admin_key))

    r = await client.post("/v1/subjects", json=subject_body("emp-1"), headers=h)
    subject_id = r.json()["id"]
    event = await _one(client, tenant_a, action="subject.created")
    # People are named by internal id, never by the caller's ref (which may be personal data).
    assert (event["object_type"], event["object_id"]) == ("subject", subject_id)
    assert event["actor_key_id"] == actor

    r = await client.post("/v1/assessments", json=assessment_body("emp-1"), headers=h)
    assessment_id = r.json()["id"]
    event = await _one(client, tenant_a, action="assessment.created")
    assert (event["object_type"], event["object_id"]) == ("assessment", assessment_id)
    assert event["actor_key_id"] == actor

    r = await client.post("/v1/frameworks", json=small_framework(), headers=h)
    assert r.status_code == 201
    event = await _one(client, tenant_a, action="framework.created")
    assert (event["object_type"], event["object_id"]) == ("framework", "eng-ladder")

    r = await client.post(
        "/v1/api-keys", json={"name": "sync", "scopes": ["subjects:read"]}, headers=h
    )
    key_id = r.json()["id"]
    created = await all_audit_events(client, tenant_a, action="api_key.created")
    event = next(e for e in created if e["object_id"] == key_id)
    assert event["object_type"] == "api_key"
    assert event["actor_key_id"] == actor

    await revoke(client, tenant_a, r.json()["key"])
    event = await _one(client, tenant_a, action="api_key.revoked")
    assert (event["object_type"], event["object_id"]) == ("api_key", key_id)

    assert (await client.delete("/v1/subjects/emp-1", headers=h)).status_code == 204
    event = await _one(client, tenant_a, action="subject.erased")
    assert (event["object_type"], event["object_id"]) == ("subject", subject_id)
    assert event["actor_key_id"] == actor


async def test_refused_requests_change_nothing_in_the_log(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    before = await all_audit_events(client, tenant_a)
    reader = await tenant_a.key("subjects:read")
    await client.post("/v1/subjects", json=subject_body("x-1"), headers={"Authorization": "x"})
    await client.post(
        "/v1/subjects", json=subject_body("x-2"), headers={"Authorization": f"Bearer {reader}"}
    )
    await client.post("/v1/subjects", json=subject_body("bad ref"), headers=tenant_a.headers)
    after = await all_audit_events(client, tenant_a)
    assert [e["action"] for e in after if e not in before] == ["api_key.created"]  # the reader


async def test_audit_holds_no_evidence_and_no_key_secret(
    client: httpx.AsyncClient, world_a: World, connection: AsyncConnection, database: Database
) -> None:
    tenant = world_a.tenant
    tokens = [tenant.admin_key, world_a.key_token]
    r = await client.post(
        "/v1/api-keys", json={"name": "ops", "scopes": ["admin"]}, headers=tenant.headers
    )
    tokens.append(r.json()["key"])
    await revoke(client, tenant, tokens[-1])

    events = await all_audit_events(client, tenant)
    actions = {e["action"] for e in events}
    assert {"assessment.created", "api_key.created", "api_key.revoked"} <= actions
    over_http = dump(events)

    if database.backend == "postgres":
        await as_tenant(connection, tenant.id)
    rows = (await connection.execute(text("SELECT * FROM audit_event"))).mappings().all()
    assert len(rows) >= len(events)
    in_db = "\n".join(repr(dict(row)) for row in rows)

    for where, dumped in (("API", over_http), ("table", in_db)):
        assert EVIDENCE not in dumped, where
        for token in tokens:
            assert token not in dumped, where
            assert secret_of(token) not in dumped, where


async def test_erasure_event_keeps_only_the_fact_and_the_id(
    client: httpx.AsyncClient, world_a: World
) -> None:
    tenant = world_a.tenant
    r = await client.delete(f"/v1/subjects/{world_a.subject_ref}", headers=tenant.headers)
    assert r.status_code == 204
    event = await _one(client, tenant, action="subject.erased")
    assert event["object_type"] == "subject"
    assert event["object_id"] == world_a.subject_id
    personal = (DISPLAY_NAME, ATTRIBUTE_VALUE, EVIDENCE, world_a.subject_ref)
    for value in personal:
        assert value not in dump(event["details"]), value
        assert value not in event["object_id"]
    # And after the erasure, nothing in the whole log holds what was said about the person.
    everything = dump(await all_audit_events(client, tenant))
    for value in (DISPLAY_NAME, ATTRIBUTE_VALUE, EVIDENCE, f'"{world_a.subject_ref}"'):
        assert value not in everything, value


async def test_audit_events_are_tenant_isolated(
    client: httpx.AsyncClient, world_a: World, tenant_b: Tenant, b_subject: str
) -> None:
    a_events = await all_audit_events(client, world_a.tenant)
    b_events = await all_audit_events(client, tenant_b)
    assert a_events and b_events
    assert not {e["id"] for e in a_events} & {e["id"] for e in b_events}
    a_objects = {e["object_id"] for e in a_events}
    assert not a_objects & {e["object_id"] for e in b_events}
    for filters in (
        {"object_id": world_a.subject_id},
        {"object_id": world_a.assessment_ids[0]},
        {"object_id": world_a.key_id},
        {"object_type": "assessment"},
        {"action": "framework.created"},
    ):
        assert await all_audit_events(client, tenant_b, **filters) == [], filters
    # B's own creation of a subject is in B's log only.
    b_subject_id = (await client.get(f"/v1/subjects/{b_subject}", headers=tenant_b.headers)).json()[
        "id"
    ]
    b_created = await all_audit_events(client, tenant_b, action="subject.created")
    assert [e["object_id"] for e in b_created] == [b_subject_id]
    a_created = await all_audit_events(client, world_a.tenant, action="subject.created")
    assert [e["object_id"] for e in a_created] == [world_a.subject_id]


async def test_audit_log_paginates_with_cursors(client: httpx.AsyncClient, world_a: World) -> None:
    tenant = world_a.tenant
    everything = await all_audit_events(client, tenant)
    assert len(everything) >= 5
    walked: list[dict[str, Any]] = []
    cursor = None
    for _ in range(len(everything) + 1):
        params: dict[str, Any] = {"limit": 1}
        if cursor:
            params["cursor"] = cursor
        r = await client.get("/v1/audit-events", params=params, headers=tenant.headers)
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page["items"]) == 1
        walked += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert walked == everything
    assert len({e["id"] for e in walked}) == len(walked)
    stamps = [e["occurred_at"] for e in walked]
    assert stamps == sorted(stamps, reverse=True)  # newest first


def _b64(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


async def test_audit_log_rejects_garbage_cursors(client: httpx.AsyncClient, world_a: World) -> None:
    tenant = world_a.tenant
    r = await client.get("/v1/subjects", params={"limit": 1}, headers=tenant.headers)
    foreign_cursor = r.json()["next_cursor"] or _b64(["emp-1"])
    for cursor in (
        "garbage!!",
        "%%%",
        _b64(["not-a-date", "not-a-uuid"]),
        _b64(["2026-01-01T00:00:00+00:00"]),
        _b64({"a": 1}),
        _b64([1, 2]),
        foreign_cursor,
    ):
        r = await client.get("/v1/audit-events", params={"cursor": cursor}, headers=tenant.headers)
        assert r.status_code == 422, (cursor, r.text)
        assert r.headers["content-type"] == PROBLEM
        assert r.json()["errors"][0]["loc"] == ["query", "cursor"]
