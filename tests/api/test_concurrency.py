"""Optimistic concurrency under a real race: two writers with one ETag, one wins, one gets 412."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from app.auth import service as auth_service
from app.config import Settings
from app.db import create_engine, make_sessionmaker
from app.main import create_app
from tests.conftest import Database
from tests.factories import small_framework

pytestmark = pytest.mark.anyio

ROUNDS = 10


@pytest.fixture
async def racing_client(
    database: Database, settings: Settings
) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str]]]:
    """A client on a real connection pool (no shared test transaction), so requests truly overlap."""
    if database.backend != "postgres":
        pytest.skip("concurrent writers need a server database")
    app = create_app(settings)
    engine = create_engine(settings)
    app.state.engine = engine
    app.state.sessionmaker = make_sessionmaker(engine)
    async with app.state.sessionmaker() as session:
        _, token = await auth_service.bootstrap_tenant(
            session, f"race-{uuid.uuid4().hex[:8]}", prefix=settings.api_key_prefix
        )
        await session.commit()
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as client:
        yield client, {"Authorization": f"Bearer {token}"}
    await engine.dispose()


async def _race(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    etag: str,
    bodies: list[Any],
    headers: dict[str, str],
) -> list[int]:
    async def write(body: Any) -> int:
        r = await client.request(method, url, json=body, headers={**headers, "If-Match": etag})
        return r.status_code

    return sorted(await asyncio.gather(*(write(b) for b in bodies)))


async def test_two_subject_writers_one_wins(
    racing_client: tuple[httpx.AsyncClient, dict[str, str]],
) -> None:
    client, h = racing_client
    assert (
        await client.post("/v1/subjects", json={"external_ref": "emp-1"}, headers=h)
    ).status_code == 201
    for n in range(ROUNDS):
        etag = (await client.get("/v1/subjects/emp-1", headers=h)).headers["etag"]
        statuses = await _race(
            client,
            "PATCH",
            "/v1/subjects/emp-1",
            etag,
            [{"display_name": f"A{n}"}, {"display_name": f"B{n}"}],
            h,
        )
        assert statuses == [200, 412], f"round {n}: {statuses}"
    final = await client.get("/v1/subjects/emp-1", headers=h)
    assert final.json()["display_name"] in {f"A{ROUNDS - 1}", f"B{ROUNDS - 1}"}
    assert final.headers["etag"].endswith(f'.{ROUNDS + 1}"')  # exactly one update per round


async def test_two_draft_writers_one_wins(
    racing_client: tuple[httpx.AsyncClient, dict[str, str]],
) -> None:
    client, h = racing_client
    r = await client.post("/v1/frameworks", json=small_framework(), headers=h)
    assert r.status_code == 201
    for n in range(ROUNDS):
        etag = (await client.get("/v1/frameworks/eng-ladder/versions/1", headers=h)).headers["etag"]
        statuses = await _race(
            client,
            "PUT",
            "/v1/frameworks/eng-ladder/versions/1",
            etag,
            [small_framework(name=f"A{n}"), small_framework(name=f"B{n}")],
            h,
        )
        assert statuses == [200, 412], f"round {n}: {statuses}"
