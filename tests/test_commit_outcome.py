"""A write whose COMMIT was in flight when the connection failed is answered as "outcome unknown".

Real Postgres, real commits (no test transaction around them): the failure is injected at the
driver boundary. For the unknown outcome, asyncpg's ``Transaction.commit`` really commits and
then reports the connection lost, as when the server's answer to COMMIT never arrives. For the
certain failure, the INSERT is lost before COMMIT is ever sent.
"""

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import httpx
import pytest
from asyncpg.prepared_stmt import PreparedStatement
from asyncpg.transaction import Transaction
from sqlalchemy.ext.asyncio import AsyncEngine

from app.auth import service as auth_service
from app.config import Settings
from app.db import create_engine, make_sessionmaker
from app.main import create_app
from tests.conftest import Database

pytestmark = pytest.mark.anyio

PROBLEMS = "https://competency-ladder.dev/problems/"


@pytest.fixture
async def real_engine(database: Database, settings: Settings) -> AsyncIterator[AsyncEngine]:
    if database.backend != "postgres":
        pytest.skip("the injected failure is at the asyncpg driver boundary")
    eng = create_engine(settings)
    yield eng
    await eng.dispose()


@pytest.fixture
async def committing(
    real_engine: AsyncEngine, settings: Settings
) -> AsyncIterator[tuple[httpx.AsyncClient, str, uuid.UUID]]:
    """The app on a real engine (its own commits), a tenant and its admin key."""
    maker = make_sessionmaker(real_engine)
    async with maker() as session:
        tenant, token = await auth_service.bootstrap_tenant(
            session, f"co-{uuid.uuid4().hex[:8]}", prefix=settings.api_key_prefix
        )
        await session.commit()
    app = create_app(settings)
    app.state.engine = real_engine
    app.state.sessionmaker = maker
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client, token, tenant.id


def _lost() -> asyncpg.ConnectionDoesNotExistError:
    return asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation")


async def _stored(database: Database, tenant_id: uuid.UUID, ref: str) -> int:
    conn = await asyncpg.connect(database.owner_url)
    try:
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM subject WHERE tenant_id = $1 AND external_ref = $2",
                tenant_id,
                ref,
            )
        )
    finally:
        await conn.close()


async def test_connection_lost_during_commit_is_outcome_unknown(
    committing: tuple[httpx.AsyncClient, str, uuid.UUID],
    database: Database,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client, token, tenant_id = committing
    commit: Callable[[Transaction], Any] = Transaction.commit
    failed: list[int] = []

    async def commit_then_lose_the_answer(self: Transaction) -> None:
        await commit(self)
        failed.append(1)
        self._connection.terminate()
        raise _lost()

    ref = f"p-{uuid.uuid4().hex[:8]}"
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": f"k-{ref}"}
    monkeypatch.setattr(Transaction, "commit", commit_then_lose_the_answer)
    r = await client.post("/v1/subjects", json={"external_ref": ref}, headers=headers)
    monkeypatch.undo()
    assert failed, "the injected failure never ran"
    assert r.status_code == 503, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.headers["retry-after"]
    problem = r.json()
    assert problem["type"] == PROBLEMS + "commit-outcome-unknown"
    assert "same Idempotency-Key" in problem["detail"]
    # The outcome really was unknown to the service: the write is stored.
    assert await _stored(database, tenant_id, ref) == 1
    # Only a retry with the same key is safe: it replays the stored response, creating nothing.
    again = await client.post("/v1/subjects", json={"external_ref": ref}, headers=headers)
    assert again.status_code == 201, again.text
    assert again.headers["idempotency-replayed"] == "true"
    assert again.json()["external_ref"] == ref
    assert await _stored(database, tenant_id, ref) == 1


async def test_connection_lost_before_commit_is_plain_unavailable(
    committing: tuple[httpx.AsyncClient, str, uuid.UUID],
    database: Database,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client, token, tenant_id = committing
    fetch: Callable[..., Any] = PreparedStatement.fetch
    failed: list[int] = []

    async def lose_the_insert(self: PreparedStatement, *args: Any, **kwargs: Any) -> Any:
        if self.get_query().startswith("INSERT INTO subject"):
            failed.append(1)
            self._connection.terminate()
            raise _lost()
        return await fetch(self, *args, **kwargs)

    ref = f"p-{uuid.uuid4().hex[:8]}"
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": f"k-{ref}"}
    monkeypatch.setattr(PreparedStatement, "fetch", lose_the_insert)
    r = await client.post("/v1/subjects", json={"external_ref": ref}, headers=headers)
    monkeypatch.undo()
    assert failed, "the injected failure never ran"
    assert r.status_code == 503, r.text
    assert r.json()["type"] == PROBLEMS + "unavailable"
    assert await _stored(database, tenant_id, ref) == 0
    again = await client.post("/v1/subjects", json={"external_ref": ref}, headers=headers)
    assert again.status_code == 201, again.text
    assert "idempotency-replayed" not in again.headers
    assert await _stored(database, tenant_id, ref) == 1


async def test_a_service_can_require_idempotency_keys_on_creates(
    settings: Settings,
    engine: AsyncEngine,
    sessionmaker: Any,
    tenant_a: Any,
) -> None:
    """REQUIRE_IDEMPOTENCY_KEY: a create without a key is refused (422) and stores nothing."""
    app = create_app(settings.model_copy(update={"require_idempotency_key": True}))
    app.state.engine = engine
    app.state.sessionmaker = sessionmaker
    transport = httpx.ASGITransport(app=app)
    ref = f"p-{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        r = await client.post("/v1/subjects", json={"external_ref": ref}, headers=tenant_a.headers)
        assert r.status_code == 422, r.text
        assert r.json()["errors"][0]["loc"] == ["header", "Idempotency-Key"]
        assert (
            await client.get(f"/v1/subjects/{ref}", headers=tenant_a.headers)
        ).status_code == 404
        r = await client.post(
            "/v1/subjects",
            json={"external_ref": ref},
            headers={**tenant_a.headers, "Idempotency-Key": f"k-{ref}"},
        )
        assert r.status_code == 201, r.text
