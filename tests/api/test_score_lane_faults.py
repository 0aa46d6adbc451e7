"""The score read's fast lane when its own connection pool fails (Postgres, real commits).

A driver error that means "this connection is out of step" (asyncpg's InternalClientError, seen
as "cannot switch to state 12" when Postgres restarted during a read) is a transient failure:
the ordinary route answers, nothing is logged as an error, and the connection is not reused. A
lookup that times out (a database that does not answer) is answered 503 at once, instead of
leaving the ordinary route to wait for the same database as long again.
"""

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from asyncpg.connection import Connection

from app.config import Settings
from app.errors import is_transient_database_error
from tests.api.test_score_cache import URL, Lane, _lane, outcome
from tests.api.test_scores import seed_pm
from tests.conftest import Database

pytestmark = pytest.mark.anyio


@pytest.fixture
async def lane(database: Database, settings: Settings) -> AsyncIterator[Lane]:
    if database.backend != "postgres":
        pytest.skip("the fast lane is Postgres only")
    async for made in _lane(settings):
        yield made


def fail_lookups_once(monkeypatch: pytest.MonkeyPatch, error: BaseException) -> list[int]:
    """The lane's next lookup statement raises ``error`` (the service's own queries do not go
    through ``Connection.fetchrow``)."""
    original = Connection.fetchrow
    pids: list[int] = []

    async def fetchrow(self: Connection, query: str, *args: Any, **kwargs: Any) -> Any:
        if not pids:
            pids.append(self.get_server_pid())
            raise error
        return await original(self, query, *args, **kwargs)

    monkeypatch.setattr(Connection, "fetchrow", fetchrow)
    return pids


def test_internal_client_error_is_transient() -> None:
    assert is_transient_database_error(asyncpg.InternalClientError("cannot switch to state 12"))


async def test_a_driver_out_of_step_is_answered_by_the_route_without_a_traceback(
    lane: Lane, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    await seed_pm(lane.client, lane.tenant)
    assert outcome(await lane.get()) == "miss"
    failed = fail_lookups_once(
        monkeypatch,
        asyncpg.InternalClientError("cannot switch to state 12; another operation is in progress"),
    )
    with caplog.at_level(logging.WARNING):
        r = await lane.get()
    assert failed, "the injected failure never ran"
    assert r.status_code == 200, r.text
    assert outcome(r) is None  # the ordinary route answered
    assert not [rec for rec in caplog.records if rec.levelno >= logging.ERROR], caplog.text
    # The connection that failed was closed, not handed out again.
    for _ in range(50):
        alive = await lane.reads.pool.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE pid = $1", failed[0]
        )
        if not alive:
            break
        await asyncio.sleep(0.05)
    assert not alive, "the connection that failed is still open"
    assert outcome(await lane.get()) == "hit"


async def test_a_lookup_that_times_out_is_answered_503_at_once(
    lane: Lane, monkeypatch: pytest.MonkeyPatch
) -> None:
    await seed_pm(lane.client, lane.tenant)
    assert (await lane.get()).status_code == 200
    failed = fail_lookups_once(monkeypatch, TimeoutError())
    r = await lane.get()
    assert failed, "the injected failure never ran"
    assert r.status_code == 503, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.headers["retry-after"] == "5"
    problem = r.json()
    assert problem["type"].endswith("/unavailable")
    assert problem["instance"] == URL
    assert (await lane.get()).status_code == 200
