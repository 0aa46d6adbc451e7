"""What one score read sends to Postgres: one round trip, or a transaction when it needs more.

The score statement (the function ``score_inputs``, which binds the tenant for the transaction
it runs in) is sent alone, with no BEGIN or COMMIT around it, whenever the request has begun
nothing: for a remembered score, and for a computed one whose other inputs (the compiled
version, its chain) are in the worker's memory with nothing to carry or adjust. Otherwise the
reads share one transaction: BEGIN with the transaction-local tenant setting (one message), the
statements, COMMIT. Nothing else: no pool pre-ping (a connection the server closed is noticed
without asking it), no separate set_config. Every query each pooled connection sends is
recorded (asyncpg's query logger for what the driver sends itself, SQLAlchemy's cursor events
for its prepared statements), after a warm-up that fills the key cache, the statement caches
and the memo.
"""

import asyncio
import re
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.auth import service as auth_service
from app.config import Settings
from app.db import _begin_with_tenant, create_engine, driver_url, make_sessionmaker, unit_of_work
from app.errors import is_transient_database_error
from app.frameworks import service as frameworks_service
from app.main import create_app
from app.scores import repository as score_repository
from tests.api.test_subjects_assessments import assessment, subject
from tests.conftest import Database

pytestmark = pytest.mark.anyio

URL = "/v1/subjects/emp-1/score"


@dataclass
class Sent:
    """Every query the engine's connections sent, in order."""

    queries: list[str] = field(default_factory=list)

    def attach(self, engine: AsyncEngine) -> None:
        event.listen(engine.sync_engine, "connect", self._connected)
        # Statements SQLAlchemy sends as prepared statements are not in the driver's log.
        event.listen(engine.sync_engine, "before_cursor_execute", self._cursor)

    def _cursor(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        self.queries.append(" ".join(statement.split()))

    def _connected(self, dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.driver_connection.add_query_logger(self._log)

    def _log(self, record: Any) -> None:
        self.queries.append(" ".join(record.query.split()))

    async def take(self) -> list[str]:
        # asyncpg hands a query to its loggers with call_soon: let the loop run them first.
        await asyncio.sleep(0)
        out, self.queries = self.queries, []
        return out


@dataclass
class Live:
    client: httpx.AsyncClient
    headers: dict[str, str]
    sent: Sent
    engine: AsyncEngine


async def live_app(settings: Settings) -> AsyncIterator[Live]:
    engine = create_engine(settings)
    sent = Sent()
    sent.attach(engine)
    maker = make_sessionmaker(engine)
    async with unit_of_work(maker) as session:
        tenant = await auth_service.create_tenant(session, f"rt-{uuid.uuid4().hex[:8]}", "RT")
        _, token = await auth_service.create_key(
            session,
            tenant.id,
            name="admin",
            scopes=["admin"],
            expires_at=None,
            prefix=settings.api_key_prefix,
            actor=None,
        )
    app = create_app(settings)
    app.state.engine = engine
    app.state.sessionmaker = maker
    # What the key listener does once it listens (the lifespan is not run here).
    app.state.key_cache.trust()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        h = {"Authorization": f"Bearer {token}"}
        assert (await client.post("/v1/subjects", json=subject(), headers=h)).status_code == 201
        r = await client.post("/v1/assessments", json=assessment(), headers=h)
        assert r.status_code == 201, r.text
        yield Live(client, h, sent, engine)
    await engine.dispose()


@pytest.fixture
async def live(database: Database, settings: Settings) -> AsyncIterator[Live]:
    if database.backend != "postgres":
        pytest.skip("round trips to Postgres")
    async for value in live_app(settings):
        yield value


@pytest.fixture
async def live_unmemoized(database: Database, settings: Settings) -> AsyncIterator[Live]:
    if database.backend != "postgres":
        pytest.skip("round trips to Postgres")
    async for value in live_app(settings.model_copy(update={"score_cache_mb": 0})):
        yield value


BEGIN_WITH_TENANT = re.compile(
    r"^BEGIN; SELECT set_config\('app\.tenant_id', '[0-9a-f-]{36}', true\)$"
)


ALONE = re.compile(r"^SELECT \* FROM score_inputs\(\$1::uuid, .*\$10::text\)$")


def assert_three_round_trips(queries: list[str]) -> None:
    assert len(queries) == 3, queries
    begin, statement, end = queries
    assert BEGIN_WITH_TENANT.match(begin), begin
    assert ALONE.match(statement), statement
    assert end.rstrip(";") == "COMMIT", end


def assert_one_round_trip(queries: list[str]) -> None:
    assert len(queries) == 1, queries
    assert ALONE.match(queries[0]), queries[0]


async def test_a_repeated_score_read_makes_one_round_trip(live: Live) -> None:
    for _ in range(3):  # warm: key cache, statement caches, memo
        r = await live.client.get(URL, headers=live.headers)
        assert r.status_code == 200, r.text
    await live.sent.take()
    r = await live.client.get(URL, headers=live.headers)
    assert r.status_code == 200, r.text
    assert 'memo;desc="hit"' in r.headers["server-timing"]
    assert_one_round_trip(await live.sent.take())

    conditional = await live.client.get(
        URL, headers={**live.headers, "If-None-Match": r.headers["etag"]}
    )
    assert conditional.status_code == 304
    assert_one_round_trip(await live.sent.take())


async def test_a_changed_score_is_computed_from_the_one_statement(live: Live) -> None:
    """When the statement sent alone finds the fingerprint changed, its ratings are all the
    score needs (the compiled version and its chain are in memory, nothing is carried or
    adjusted): one round trip still."""
    for _ in range(2):
        assert (await live.client.get(URL, headers=live.headers)).status_code == 200
    body = assessment(when="2026-10-02T09:00:00Z")
    assert (await live.client.post("/v1/assessments", json=body, headers=live.headers)).is_success
    await live.sent.take()
    r = await live.client.get(URL, headers=live.headers)
    assert r.status_code == 200, r.text
    assert 'memo;desc="miss"' in r.headers["server-timing"]
    assert_one_round_trip(await live.sent.take())


async def test_a_score_that_needs_more_is_read_on_one_transaction(
    live_unmemoized: Live, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the score needs more than the statement (here: the compiled version is not in this
    worker's memory), every read, the statement again included, runs in one transaction."""
    live = live_unmemoized
    assert (await live.client.get(URL, headers=live.headers)).status_code == 200
    monkeypatch.setattr(frameworks_service, "_COMPILED", OrderedDict())
    await live.sent.take()
    r = await live.client.get(URL, headers=live.headers)
    assert r.status_code == 200, r.text
    first, begin, *reads, end = await live.sent.take()
    assert ALONE.match(first), first
    assert BEGIN_WITH_TENANT.match(begin), begin
    assert any(ALONE.match(q) for q in reads), reads
    assert any("framework_version" in q for q in reads), reads  # the document, compiled again
    assert end.rstrip(";") == "COMMIT", end


async def test_a_computed_score_read_makes_one_round_trip(live_unmemoized: Live) -> None:
    live = live_unmemoized
    for _ in range(3):  # warm: key cache, statement caches, compiled framework version
        assert (await live.client.get(URL, headers=live.headers)).status_code == 200
    await live.sent.take()
    r = await live.client.get(URL, headers=live.headers)
    assert r.status_code == 200, r.text
    assert 'memo;desc="miss"' in r.headers["server-timing"]
    assert_one_round_trip(await live.sent.take())


async def test_the_tenant_setting_ends_with_the_read(live: Live) -> None:
    """The merged BEGIN, and the statement sent alone, set the tenant for their transaction
    only: a connection taken from the pool afterwards (the same one: the pool holds one idle
    connection here) has none."""
    for outcome in ("miss", "hit"):
        r = await live.client.get(URL, headers=live.headers)
        assert f'memo;desc="{outcome}"' in r.headers["server-timing"]
        async with live.engine.connect() as conn:
            left = await conn.scalar(text("SELECT current_setting('app.tenant_id', true)"))
        assert left in (None, "")


async def test_the_statement_refuses_a_transaction_bound_to_another_tenant(live: Live) -> None:
    """score_inputs binds a tenant only for a transaction that has none: inside one bound to
    another tenant it is an error, not a switch (and it changes nothing in one bound to its own)."""
    own, other = uuid.uuid4(), uuid.uuid4()
    statement = text(
        "SELECT count(*) FROM score_inputs(:t, 'emp-1', NULL, NULL,"
        " NULL, NULL, NULL, NULL, NULL, NULL)"
    )
    bind = text("SELECT set_config('app.tenant_id', :t, true)")
    async with live.engine.connect() as conn, conn.begin():
        await conn.execute(bind, {"t": str(own)})
        assert await conn.scalar(statement, {"t": own}) == 0
        with pytest.raises(DBAPIError) as refused:
            await conn.scalar(statement, {"t": other})
    assert "bound to another tenant" in str(refused.value)


async def test_a_connection_lost_under_the_statement_sent_alone_is_a_transient_error(
    live: Live, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The statement sent alone fails as a lost connection: 503 (retry), not 500, and that
    connection goes (terminated, so the pool's checkout opens another)."""
    for _ in range(2):
        assert (await live.client.get(URL, headers=live.headers)).status_code == 200
    lost: list[Any] = []

    async def broken(driver: Any, *_: Any) -> Any:
        lost.append(driver)
        raise asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed mid-query")

    monkeypatch.setattr(score_repository, "_fetch", broken)
    r = await live.client.get(URL, headers=live.headers)
    assert r.status_code == 503, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert lost and lost[0].is_closed()
    monkeypatch.undo()
    r = await live.client.get(URL, headers=live.headers)
    assert r.status_code == 200, r.text


async def test_a_failed_read_rolls_the_merged_begin_back(live: Live) -> None:
    """A 404 inside the merged transaction ends it with ROLLBACK, and the connection is clean."""
    await live.sent.take()
    r = await live.client.get("/v1/subjects/nobody/score", headers=live.headers)
    assert r.status_code == 404, r.text
    queries = await live.sent.take()
    assert ALONE.match(queries[0]), (
        queries
    )  # finds no one: the precise 404 is read in a transaction
    assert BEGIN_WITH_TENANT.match(queries[1]), queries
    assert queries[-1].rstrip(";") == "ROLLBACK", queries
    async with live.engine.connect() as conn:
        driver = (await conn.get_raw_connection()).driver_connection
        assert driver is not None
        left_open = driver.is_in_transaction()  # as the server last reported
        left = await conn.scalar(text("SELECT current_setting('app.tenant_id', true)"))
    assert left_open is False
    assert left in (None, "")


async def test_a_pooled_connection_the_server_closed_is_replaced_unasked(
    live: Live, settings: Settings
) -> None:
    """No pre-ping, and still no failed request after the server closed a pooled connection
    (a restart, a crash, an administrator's pg_terminate_backend): the pool notices the closed
    socket when the connection is taken and opens another instead."""
    assert (await live.client.get(URL, headers=live.headers)).status_code == 200
    admin = await asyncpg.connect(driver_url(settings.database_url))
    try:
        closed = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            " AND application_name = 'competency-ladder'"
        )
    finally:
        await admin.close()
    assert closed >= 1
    await asyncio.sleep(0.5)  # the goodbye reaches the pooled connections' sockets
    for _ in range(3):
        r = await live.client.get(URL, headers=live.headers)
        assert r.status_code == 200, r.text


async def test_a_connection_lost_before_the_merged_begin_is_a_transient_error(live: Live) -> None:
    """Should the connection break between its checkout and BEGIN, the request answers 503
    (retry), not 500, and the connection is not used again."""
    async with live.engine.connect() as conn:
        driver = (await conn.get_raw_connection()).driver_connection
        assert driver is not None
        driver.terminate()
        with pytest.raises(DBAPIError) as caught:
            await conn.run_sync(lambda sync: _begin_with_tenant(sync, uuid.uuid4()))
    assert is_transient_database_error(caught.value)
    assert driver.is_closed()
    r = await live.client.get(URL, headers=live.headers)
    assert r.status_code == 200, r.text
