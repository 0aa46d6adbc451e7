"""Erasure reaches every copy: webhook payloads, stored idempotent responses, every table.

The scan below reads the live catalogue, so a table or column added later is searched too.
"""

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, async_sessionmaker
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

import app.models  # noqa: F401  (every table in the metadata)
from app.assessments import service as assessments
from app.assessments.schemas import AssessmentCreate
from app.auth import service as auth_service
from app.auth.principal import Principal
from app.config import PROJECT_ROOT, Settings
from app.db import bind_tenant, create_engine, make_sessionmaker
from app.main import create_app
from app.models import IdempotencyRecord, utcnow
from app.subjects import service as subjects
from app.webhooks.dispatcher import Dispatcher
from tests.conftest import Database, Tenant, make_postgres_database
from tests.security.support import (
    DISPLAY_NAME,
    EVIDENCE,
    as_tenant,
    assessment_body,
    key_id_of,
    subject_body,
    subscribe_webhook,
)

pytestmark = pytest.mark.anyio

REF = "emp-erased-7"
OTHER = "kept-1"
BULK_EVIDENCE = "SECRET-BULK-EVIDENCE-456"
OTHER_EVIDENCE = "evidence that stays"
TEAM = "team-of-the-erased"
REASON = "SECRET-CALIBRATION-REASON-789"


class Receiver:
    """A webhook receiver on an in-memory transport: records every body it is sent."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.bodies.append(request.content)
        return httpx.Response(204)


async def dispatch(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, receiver: Receiver
) -> int:
    """One round of the real dispatcher; returns how many deliveries it attempted."""
    client = httpx.AsyncClient(transport=httpx.MockTransport(receiver))
    permissive = settings.model_copy(update={"webhooks_allow_private_targets": True})
    dispatcher = Dispatcher(sessionmaker, permissive, client)
    try:
        return await dispatcher.dispatch_once()
    finally:
        await dispatcher.aclose()


async def catalogue_columns(connection: AsyncConnection) -> dict[str, list[str]]:
    """Every column of every table in the public schema, read from pg_catalog."""
    rows = await connection.execute(
        text(
            """SELECT c.relname, a.attname
                 FROM pg_class c
                 JOIN pg_attribute a ON a.attrelid = c.oid
                WHERE c.relnamespace = 'public'::regnamespace
                  AND c.relkind IN ('r', 'p', 'm')
                  AND a.attnum > 0 AND NOT a.attisdropped
                ORDER BY c.relname, a.attnum"""
        )
    )
    columns: dict[str, list[str]] = {}
    for table, column in rows:
        columns.setdefault(table, []).append(column)
    return columns


async def scan(
    connection: AsyncConnection, tenant_id: uuid.UUID, needles: list[str]
) -> dict[str, set[str]]:
    """Where each needle occurs: ``table.column`` names, every column cast to text."""
    await as_tenant(connection, tenant_id)
    tables = await catalogue_columns(connection)
    found: dict[str, set[str]] = {needle: set() for needle in needles}
    # The catalogue and the models agree, so neither can hide a table from the scan.
    assert set(SQLModel.metadata.tables) <= set(tables)
    for table, names in tables.items():
        casts = ", ".join(f'CAST("{name}" AS text)' for name in names)
        for row in await connection.execute(text(f'SELECT {casts} FROM "{table}"')):
            for name, value in zip(names, row, strict=True):
                for needle in needles:
                    if value is not None and needle in value:
                        found[needle].add(f"{table}.{name}")
    return found


def migrations_config(url: str) -> Config:
    cfg = Config(str(PROJECT_ROOT / "alembic.ini"))
    cfg.set_main_option("sqlalchemy.url", url)
    cfg.attributes["configure_logging"] = False
    return cfg


async def deliveries(
    client: httpx.AsyncClient, tenant: Tenant, webhook_id: str
) -> dict[str, dict[str, Any]]:
    r = await client.get(
        f"/v1/webhooks/{webhook_id}/deliveries", params={"limit": 200}, headers=tenant.headers
    )
    assert r.status_code == 200, r.text
    return {d["id"]: d for d in r.json()["items"]}


async def test_erasure_leaves_the_person_in_no_column_of_any_table(
    client: httpx.AsyncClient,
    tenant_a: Tenant,
    tenant_b: Tenant,
    connection: AsyncConnection,
    database: Database,
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> None:
    if database.backend != "postgres":
        pytest.skip("the scan reads Postgres' catalogue, as the app role under row-level security")
    a = tenant_a.headers
    receiver = Receiver()
    webhook_id = await subscribe_webhook(client, tenant_a)

    async def post(path: str, body: Any, key: str | None = None, **params: str) -> httpx.Response:
        headers = a if key is None else {**a, "Idempotency-Key": key}
        r = await client.post(path, json=body, headers=headers, params=params)
        assert r.status_code == 201, r.text
        return r

    # A bulk import that names the person before they exist: refused by ref, the other stored.
    await post("/v1/subjects", subject_body(OTHER, display_name="Kept Person"))
    early = await post(
        "/v1/assessments/bulk",
        [assessment_body(REF), assessment_body(OTHER, evidence=OTHER_EVIDENCE)],
        "bulk-assess-early",
        mode="partial",
    )
    assert REF in early.text
    # The person, by single idempotent creates: subject, assessment, completed activity.
    await post("/v1/subjects", subject_body(REF, attributes={"team": TEAM}), "subject-erased")
    await post("/v1/assessments", assessment_body(REF), "assess-erased")
    await post(
        f"/v1/subjects/{REF}/completed-activities",
        {"activity": "pairing", "completed_at": "2026-09-02T00:00:00Z"},
        "activity-erased",
    )
    # A bulk subject import whose refusal names the person.
    subjects_report = await post(
        "/v1/subjects/bulk",
        [subject_body(REF), subject_body("kept-2", display_name="Second Kept")],
        "bulk-subjects",
        mode="partial",
    )
    assert f"subject '{REF}' already exists" in subjects_report.text
    # A score read (remembered by the score cache where it runs).
    assert (await client.get(f"/v1/subjects/{REF}/score", headers=a)).status_code == 200
    # A calibration session with the person in its snapshot and a proposal about them.
    session_id = (
        await post(
            "/v1/calibration/sessions",
            {
                "name": "Q4",
                "framework": {"key": "product-management"},
                "subject_refs": [REF, OTHER],
            },
        )
    ).json()["id"]
    await post(
        f"/v1/calibration/sessions/{session_id}/proposals",
        {"subject_ref": REF, "competency": "execution", "value": 4, "reason": REASON},
    )

    # Deliver what is queued so far, then queue more that stays pending.
    assert await dispatch(sessionmaker, settings, receiver) > 0
    delivered_bodies = len(receiver.bodies)
    assert any(REF.encode() in body for body in receiver.bodies)
    await post(
        "/v1/assessments/bulk",
        [
            assessment_body(
                REF,
                competency="customer_discovery",
                evidence=BULK_EVIDENCE,
                when="2026-10-01T09:00:00Z",
            ),
            assessment_body(
                OTHER,
                competency="customer_discovery",
                evidence=OTHER_EVIDENCE,
                when="2026-10-01T09:00:00Z",
            ),
        ],
        "bulk-assess-late",
        mode="partial",
    )
    # The same ref in another tenant is another person and must survive.
    b = tenant_b.headers
    assert (await client.post("/v1/subjects", json=subject_body(REF), headers=b)).status_code == 201

    log = await deliveries(client, tenant_a, webhook_id)
    about = {i for i, d in log.items() if d["payload"]["data"].get("subject_ref") == REF}
    others = {i for i, d in log.items() if d["payload"]["data"].get("subject_ref") == OTHER}
    statuses = {log[i]["status"] for i in about}
    assert statuses == {"delivered", "pending"}, statuses  # both kinds exist before the erasure
    needles = [REF, DISPLAY_NAME, TEAM, EVIDENCE, BULK_EVIDENCE, REASON]
    before = await scan(connection, tenant_a.id, needles)
    # Positive control: the scan sees each piece of personal data where it is kept.
    assert {"subject.external_ref", "webhook_delivery.payload", "idempotency_record.body"} <= (
        before[REF]
    )
    assert {"subject.display_name", "idempotency_record.body"} <= before[DISPLAY_NAME]
    assert {"subject.attributes", "idempotency_record.body"} <= before[TEAM]
    assert {"rating.evidence", "idempotency_record.body"} <= before[EVIDENCE]
    assert "rating.evidence" in before[BULK_EVIDENCE]
    assert "calibration_member.subject_ref" in before[REF]
    assert "calibration_proposal.reason" in before[REASON]

    assert (await client.delete(f"/v1/subjects/{REF}", headers=a)).status_code == 204

    after = await scan(connection, tenant_a.id, needles)
    assert after == {needle: set() for needle in needles}, f"survives the erasure: {after}"
    await as_tenant(connection, None)
    queued = (
        (await connection.execute(text("SELECT delivery_id FROM webhook_queue"))).scalars().all()
    )
    assert not {str(i) for i in queued} & about  # no pending delivery about the person remains

    # Over HTTP: the delivery log keeps the deliveries, without the person in them.
    log_after = await deliveries(client, tenant_a, webhook_id)
    assert set(log_after) == set(log)
    for i in about:
        assert REF not in json.dumps(log_after[i])
        expected = "cancelled" if log[i]["status"] == "pending" else log[i]["status"]
        assert log_after[i]["status"] == expected
        assert log_after[i]["payload"]["id"] == log[i]["payload"]["id"]
    for i in others:
        assert log_after[i]["payload"] == log[i]["payload"]
        assert log_after[i]["status"] == log[i]["status"]
    # The dispatcher sends the other person's pending events and nothing about the erased one.
    pending_others = sum(1 for i in others if log[i]["status"] == "pending")
    assert pending_others > 0
    assert await dispatch(sessionmaker, settings, receiver) == pending_others
    late = receiver.bodies[delivered_bodies:]
    assert len(late) == pending_others
    assert not any(REF.encode() in body for body in late)

    # Idempotent replays: the bulk reports come back without the person, the rest intact.
    replay = await client.post(
        "/v1/subjects/bulk",
        json=[subject_body(REF), subject_body("kept-2", display_name="Second Kept")],
        headers={**a, "Idempotency-Key": "bulk-subjects"},
        params={"mode": "partial"},
    )
    assert replay.status_code == 201, replay.text
    assert replay.headers["idempotency-replayed"] == "true"
    assert REF not in replay.text
    assert replay.json()["created"] == 1
    assert replay.json()["refused"][0]["errors"][0]["msg"] == "subject '[erased]' already exists"
    replay = await client.post(
        "/v1/assessments/bulk",
        json=[assessment_body(REF), assessment_body(OTHER, evidence=OTHER_EVIDENCE)],
        headers={**a, "Idempotency-Key": "bulk-assess-early"},
        params={"mode": "partial"},
    )
    assert replay.headers["idempotency-replayed"] == "true"
    assert REF not in replay.text
    assert replay.json()["created"] == 1
    # A single create about the person is forgotten: the retry is a new request (404 now).
    r = await client.post(
        "/v1/assessments",
        json=assessment_body(REF),
        headers={**a, "Idempotency-Key": "assess-erased"},
    )
    assert r.status_code == 404, r.text
    assert EVIDENCE not in r.text
    # The audit says what the erasure did, in counts only.
    r = await client.get("/v1/audit-events", params={"action": "subject.erased"}, headers=a)
    [erased] = r.json()["items"]
    assert erased["details"] == {
        "webhook_deliveries_cancelled": sum(1 for i in about if log[i]["status"] == "pending"),
        "webhook_deliveries_redacted": len(about),
        "stored_responses_redacted": 2,
        "calibration_sessions_redacted": 0,
    }
    # The other tenant's person with the same ref is untouched.
    assert (await client.get(f"/v1/subjects/{REF}", headers=b)).status_code == 200


async def test_bulk_report_redaction_names_only_the_erased_ref(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    a = tenant_a.headers
    for ref in ("emp-9", "emp-90", "emp-9.x"):
        r = await client.post("/v1/subjects", json=subject_body(ref), headers=a)
        assert r.status_code == 201, r.text
    # A new person besides the three refused, so the partial import creates something.
    items = [subject_body(ref) for ref in ("emp-9", "emp-90", "emp-9.x", "emp-new")]
    keyed = {**a, "Idempotency-Key": "bulk-dupes"}
    first = await client.post(
        "/v1/subjects/bulk", json=items, headers=keyed, params={"mode": "partial"}
    )
    assert first.status_code == 201, first.text
    assert (await client.delete("/v1/subjects/emp-9", headers=a)).status_code == 204

    replay = await client.post(
        "/v1/subjects/bulk", json=items, headers=keyed, params={"mode": "partial"}
    )
    assert replay.status_code == 201, replay.text
    assert replay.headers["idempotency-replayed"] == "true"
    messages = [r["errors"][0]["msg"] for r in replay.json()["refused"]]
    assert messages == [
        "subject '[erased]' already exists",
        "subject 'emp-90' already exists",
        "subject 'emp-9.x' already exists",
    ]


@pytest.mark.postgres
def test_migration_links_existing_deliveries_to_their_subject() -> None:
    """Deliveries queued before 0007 are linked by their payload's ref, so erasure finds them."""
    _, url, drop = make_postgres_database()
    tenant, subject, other, sub = (uuid.uuid4() for _ in range(4))
    rows = {uuid.uuid4(): REF, uuid.uuid4(): "nobody-by-this-ref"}

    async def sql(statements: list[tuple[str, dict[str, Any]]]) -> list[Any]:
        engine = create_engine(Settings(), url)
        try:
            async with engine.begin() as conn:
                results = [await conn.execute(text(s), p) for s, p in statements]
                return [r.all() if r.returns_rows else None for r in results]
        finally:
            await engine.dispose()

    def delivery(delivery_id: uuid.UUID, ref: str) -> tuple[str, dict[str, Any]]:
        payload = json.dumps(
            {"id": "e", "event": "assessment.created", "data": {"subject_ref": ref}}
        )
        return (
            "INSERT INTO webhook_delivery (tenant_id, id, subscription_id, event, payload, status,"
            " attempts, next_attempt_at, created_at) VALUES (:t, :d, :s, 'assessment.created',"
            " CAST(:p AS jsonb), 'pending', 0, now(), now())",
            {"t": tenant, "d": delivery_id, "s": sub, "p": payload},
        )

    try:
        cfg = migrations_config(url)
        command.upgrade(cfg, "0006")
        asyncio.run(
            sql(
                [
                    (
                        "INSERT INTO tenant (id, slug, name, created_at) VALUES (:t, 't', 'T', now())",
                        {"t": tenant},
                    ),
                    (
                        "INSERT INTO subject (tenant_id, id, external_ref, attributes, revision,"
                        " created_at, updated_at) VALUES (:t, :s, :r, '{}', 1, now(), now()),"
                        " (:t, :o, 'emp-other', '{}', 1, now(), now())",
                        {"t": tenant, "s": subject, "o": other, "r": REF},
                    ),
                    (
                        "INSERT INTO webhook_subscription (tenant_id, id, url, events, secret,"
                        " active, created_at) VALUES (:t, :s, 'http://x.example/', '[]', 's',"
                        " true, now())",
                        {"t": tenant, "s": sub},
                    ),
                    *(delivery(d, ref) for d, ref in rows.items()),
                ]
            )
        )
        command.upgrade(cfg, "0007")
        [linked] = asyncio.run(sql([("SELECT id, subject_id FROM webhook_delivery", {})]))
        assert {d: s for d, s in linked} == {
            d: subject if r == REF else None for d, r in rows.items()
        }
    finally:
        drop()


@pytest.fixture
async def committing(
    database: Database, settings: Settings
) -> AsyncIterator[tuple[httpx.AsyncClient, async_sessionmaker[AsyncSession], Principal]]:
    """A client and sessions on a real pool (no shared test transaction), so writers overlap."""
    if database.backend != "postgres":
        pytest.skip("concurrent transactions need a server database")
    application = create_app(settings.model_copy(update={"webhooks_allow_private_targets": True}))
    engine = create_engine(settings)
    application.state.engine = engine
    application.state.sessionmaker = make_sessionmaker(engine)
    async with application.state.sessionmaker() as session:
        tenant, token = await auth_service.bootstrap_tenant(
            session, f"erase-{uuid.uuid4().hex[:8]}", prefix=settings.api_key_prefix
        )
        await session.commit()
    principal = Principal(tenant.id, key_id_of(token), frozenset({"admin"}))
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        client.headers["Authorization"] = f"Bearer {token}"
        yield client, application.state.sessionmaker, principal
    await engine.dispose()


async def until_a_request_waits_on_a_lock(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Return once a backend of this database waits on a lock (the request under test has reached
    the row the open transaction holds); a fixed sleep let a slow start reach it too late."""
    async with sessions() as probe, asyncio.timeout(10):
        while not await probe.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        ):
            await probe.rollback()
            await asyncio.sleep(0.02)


async def erase_while(client: httpx.AsyncClient, writer: AsyncSession, ref: str) -> httpx.Response:
    """Start the erasure while ``writer`` is still open, check it waits, then commit the writer."""
    erasure = asyncio.create_task(client.delete(f"/v1/subjects/{ref}"))
    await asyncio.sleep(0.5)
    assert not erasure.done(), "the erasure did not wait for the open writer"
    await writer.commit()
    return await asyncio.wait_for(erasure, timeout=10)


async def test_erasure_finds_what_a_concurrent_writer_commits_about_the_person(
    committing: tuple[httpx.AsyncClient, async_sessionmaker[AsyncSession], Principal],
) -> None:
    client, sessions, principal = committing
    hook = await client.post(
        "/v1/webhooks",
        json={"url": "http://127.0.0.1:9/hook", "events": ["assessment.created"]},
    )
    assert hook.status_code == 201, hook.text
    for ref in (REF, OTHER):
        assert (await client.post("/v1/subjects", json=subject_body(ref))).status_code == 201

    # An assessment of the person, with its webhook delivery, not yet committed.
    async with sessions() as writer:
        await bind_tenant(writer, principal.tenant_id)
        await assessments.create(
            writer, principal, AssessmentCreate.model_validate(assessment_body(REF))
        )
        assert (await erase_while(client, writer, REF)).status_code == 204
    [delivery] = (await client.get(f"/v1/webhooks/{hook.json()['id']}/deliveries")).json()["items"]
    assert delivery["status"] == "cancelled"
    assert REF not in json.dumps(delivery)

    # A bulk import whose report names a person, stored (as Idempotency-Key does) at commit.
    assert (await client.post("/v1/subjects", json=subject_body(REF))).status_code == 201
    async with sessions() as writer:
        await bind_tenant(writer, principal.tenant_id)
        report = await subjects.bulk_create(
            writer,
            principal,
            # One new person, so the partial import creates something (it is not a 422).
            [subject_body(REF), subject_body(OTHER), subject_body("racing-new")],
            "partial",
        )
        writer.add(
            IdempotencyRecord(
                tenant_id=principal.tenant_id,
                key="racing-bulk",
                fingerprint="f",
                status_code=201,
                body=report.model_dump_json(),
                expires_at=utcnow() + timedelta(hours=1),
            )
        )
        assert REF in report.model_dump_json()
        assert (await erase_while(client, writer, REF)).status_code == 204
    async with sessions() as reader:
        await bind_tenant(reader, principal.tenant_id)
        stored = await reader.get(IdempotencyRecord, (principal.tenant_id, "racing-bulk"))
        assert stored is not None
        assert REF not in stored.body
        assert f"'{OTHER}'" in stored.body


async def test_a_write_about_a_person_erased_meanwhile_is_refused_and_stores_nothing(
    committing: tuple[httpx.AsyncClient, async_sessionmaker[AsyncSession], Principal],
) -> None:
    client, sessions, principal = committing
    assert (await client.post("/v1/subjects", json=subject_body(OTHER))).status_code == 201
    writes = [
        ("/v1/assessments", assessment_body(REF)),
        ("/v1/assessments/bulk?mode=partial", [assessment_body(REF), assessment_body(OTHER)]),
        (
            f"/v1/subjects/{REF}/completed-activities",
            {"activity": "pairing", "completed_at": "2026-09-02T00:00:00Z"},
        ),
    ]
    for path, body in writes:
        assert (await client.post("/v1/subjects", json=subject_body(REF))).status_code == 201
        # The write finds the person, then waits on the erasure's lock; the erasure commits.
        async with sessions() as eraser:
            await bind_tenant(eraser, principal.tenant_id)
            await subjects.erase(eraser, principal, REF)
            write = asyncio.create_task(client.post(path, json=body))
            await until_a_request_waits_on_a_lock(sessions)
            assert not write.done()
            await eraser.commit()
        r = await asyncio.wait_for(write, timeout=10)
        assert r.status_code == 409, (path, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        assert "erased" in r.json()["detail"]
    assert (await client.get(f"/v1/subjects/{REF}")).status_code == 404
    assert (await client.get("/v1/assessments")).json()["items"] == []
