"""Idempotency-Key on creates: replays, mismatches, concurrency, tenant scope and expiry."""

import uuid
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import text

from app.config import Settings
from app.db import create_engine
from app.models import utcnow
from tests.api.test_subjects_assessments import assessment, subject
from tests.conftest import Database, Tenant

pytestmark = pytest.mark.anyio


async def test_replay_returns_the_first_response_and_creates_nothing(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    h = tenant_a.headers
    await client.post("/v1/subjects", json=subject(), headers=h)
    keyed = {**h, "Idempotency-Key": "import-2026-10-01-row-17"}
    first = await client.post("/v1/assessments", json=assessment(), headers=keyed)
    assert first.status_code == 201
    again = await client.post("/v1/assessments", json=assessment(), headers=keyed)
    assert again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotency-replayed"] == "true"
    listed = (await client.get("/v1/assessments", headers=h)).json()["items"]
    assert [a["id"] for a in listed] == [first.json()["id"]]


async def test_same_key_with_another_body_is_refused(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    keyed = {**tenant_a.headers, "Idempotency-Key": "k-1"}
    assert (
        await client.post("/v1/subjects", json=subject("emp-1"), headers=keyed)
    ).status_code == 201
    r = await client.post("/v1/subjects", json=subject("emp-2"), headers=keyed)
    assert r.status_code == 422
    assert r.json()["errors"][0]["loc"] == ["header", "Idempotency-Key"]
    assert (await client.get("/v1/subjects/emp-2", headers=tenant_a.headers)).status_code == 404


async def test_replay_keeps_etag_and_location(client: httpx.AsyncClient, tenant_a: Tenant) -> None:
    keyed = {**tenant_a.headers, "Idempotency-Key": "k-etag"}
    first = await client.post("/v1/subjects", json=subject(), headers=keyed)
    again = await client.post("/v1/subjects", json=subject(), headers=keyed)
    assert again.headers["etag"] == first.headers["etag"]
    assert again.headers["location"] == "/v1/subjects/emp-1"


async def test_keys_are_scoped_per_tenant(
    client: httpx.AsyncClient, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    for tenant in (tenant_a, tenant_b):
        r = await client.post(
            "/v1/subjects", json=subject(), headers={**tenant.headers, "Idempotency-Key": "shared"}
        )
        assert r.status_code == 201
        assert "idempotency-replayed" not in r.headers


async def test_failed_request_does_not_burn_the_key(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    keyed = {**tenant_a.headers, "Idempotency-Key": "retry-me"}
    assert (
        await client.post("/v1/assessments", json=assessment(), headers=keyed)
    ).status_code == 404
    await client.post("/v1/subjects", json=subject(), headers=tenant_a.headers)
    assert (
        await client.post("/v1/assessments", json=assessment(), headers=keyed)
    ).status_code == 201


async def test_expired_keys_are_forgotten(
    client: httpx.AsyncClient, tenant_a: Tenant, connection: object
) -> None:
    keyed = {**tenant_a.headers, "Idempotency-Key": "old"}
    first = await client.post("/v1/subjects", json=subject("emp-1"), headers=keyed)
    assert first.status_code == 201
    async with tenant_a.sessionmaker() as session:
        from sqlmodel import select

        from app.db import bind_tenant
        from app.models import IdempotencyRecord

        await bind_tenant(session, tenant_a.id)
        record = (
            await session.exec(select(IdempotencyRecord).where(IdempotencyRecord.key == "old"))
        ).one()
        record.expires_at = utcnow() - timedelta(seconds=1)
        session.add(record)
        await session.commit()
    r = await client.post("/v1/subjects", json=subject("emp-1"), headers=keyed)
    assert r.status_code == 409  # executed again: the subject exists now, so it conflicts
    assert "idempotency-replayed" not in r.headers


async def test_concurrent_duplicate_in_flight_gets_409(
    client: httpx.AsyncClient, tenant_a: Tenant, database: Database, settings: Settings
) -> None:
    if database.backend != "postgres":
        pytest.skip("the in-flight lock across connections is a Postgres advisory lock")
    key = f"in-flight-{uuid.uuid4().hex}"
    other = create_engine(settings)
    try:
        async with other.connect() as conn, conn.begin():
            # Another request holds the key: the same lock the service takes per (tenant, key).
            await conn.execute(
                text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"),
                {"k": f"idempotency:{tenant_a.id}:{key}"},
            )
            r = await client.post(
                "/v1/subjects", json=subject(), headers={**tenant_a.headers, "Idempotency-Key": key}
            )
            assert r.status_code == 409
            assert "in flight" in r.json()["detail"]
            assert r.headers["retry-after"] == "1"
    finally:
        await other.dispose()
    r = await client.post(
        "/v1/subjects", json=subject(), headers={**tenant_a.headers, "Idempotency-Key": key}
    )
    assert r.status_code == 201


async def test_bad_keys_are_refused(client: httpx.AsyncClient, tenant_a: Tenant) -> None:
    for bad in ("", "has space", "x" * 201):
        r = await client.post(
            "/v1/subjects", json=subject(), headers={**tenant_a.headers, "Idempotency-Key": bad}
        )
        assert r.status_code == 422, bad
