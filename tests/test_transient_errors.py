"""Which database errors are the 503 a retry may cure, and which are bugs (500)."""

from typing import Any

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from app.errors import is_transient_database_error
from tests.test_score_round_trips import Live, live  # noqa: F401 (a fixture)

pytestmark = pytest.mark.anyio


def test_a_raw_driver_call_on_a_closed_connection_is_transient() -> None:
    # What asyncpg raises when the connection died between BEGIN and the score statement.
    closed = asyncpg.InterfaceError("cannot perform operation: connection is closed")
    assert is_transient_database_error(closed)


def test_a_raw_driver_mistake_of_ours_is_not_transient() -> None:
    mistake = asyncpg.InterfaceError("the server expects 2 arguments for this query, 1 was passed")
    assert not is_transient_database_error(mistake)


async def test_a_pool_that_cannot_connect_during_a_shutdown_answers_503(
    live: Live,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A score read taking a connection straight from the pool (no SQLAlchemy connection around
    it) while Postgres shuts down gets the driver's error as SQLAlchemy's adapter raises it there,
    unwrapped, with SQLSTATE 57P03: a 503 to retry, as every other route answers it (CI saw a 500
    in the restart fault test)."""
    dbapi = live.engine.dialect.loaded_dbapi

    async def shutting_down(self: AsyncEngine) -> Any:
        message = "the database system is shutting down"
        raise dbapi.Error(message, asyncpg.CannotConnectNowError(message))  # as the adapter does

    monkeypatch.setattr(AsyncEngine, "raw_connection", shutting_down)
    r = await live.client.get("/v1/subjects/emp-1/score", headers=live.headers)
    assert r.status_code == 503, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.headers["retry-after"]


def test_an_unwrapped_driver_error_is_transient_by_its_sqlstate() -> None:
    class AdaptedError(Exception):
        sqlstate = "57P03"

    assert is_transient_database_error(AdaptedError("the database system is shutting down"))
