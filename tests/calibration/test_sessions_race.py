"""Closing a calibration session under a real race (committed data, a real pool): of two
concurrent closes one wins and the other gets 409; a proposal racing a close is either written
by it or refused with 409, never stored in a closed session unwritten.

On SQLite, which has no row locks, a write request takes the database's write lock when its
transaction begins, so the second of two overlapping writes waits for the first and then
answers as it would on Postgres."""

import asyncio
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from app.auth import service as auth_service
from app.config import Settings
from app.db import create_engine, make_sessionmaker
from app.main import create_app
from tests.api.test_calibration import seed
from tests.calibration.test_sessions import BASE, open_session, proposal
from tests.conftest import Database, Tenant

pytestmark = pytest.mark.anyio

ROUNDS = 5


@pytest.fixture
async def racing(
    database: Database, settings: Settings
) -> AsyncIterator[tuple[httpx.AsyncClient, Tenant]]:
    """A client on a real connection pool (no shared test transaction) and a committed tenant."""
    app = create_app(settings)
    engine = create_engine(settings)
    app.state.engine = engine
    app.state.sessionmaker = make_sessionmaker(engine)
    async with app.state.sessionmaker() as session:
        tenant, token = await auth_service.bootstrap_tenant(
            session, f"race-{uuid.uuid4().hex[:8]}", prefix=settings.api_key_prefix
        )
        await session.commit()
    committed = Tenant(tenant.id, tenant.slug, token, app.state.sessionmaker, settings)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as client:
        await seed(client, committed)
        yield client, committed
    await engine.dispose()


async def _calibrated(client: httpx.AsyncClient, tenant: Tenant, session_id: str) -> int:
    """How many ratings the session wrote (its calibrated assessments' ratings)."""
    r = await client.get(
        "/v1/assessments",
        params={"rater_role": "calibrated", "limit": 200},
        headers=tenant.headers,
    )
    rater = f"calibration-session:{session_id}"
    return sum(len(a["ratings"]) for a in r.json()["items"] if a["rater_ref"] == rater)


async def test_two_closes_one_wins(racing: tuple[httpx.AsyncClient, Tenant]) -> None:
    client, tenant = racing
    h = tenant.headers
    for n in range(ROUNDS):
        session_id = (await open_session(client, tenant, name=f"race {n}"))["id"]
        r = await client.post(f"{BASE}/{session_id}/proposals", json=proposal(), headers=h)
        assert r.status_code == 201, r.text
        url = f"{BASE}/{session_id}/close"
        answers = await asyncio.gather(client.post(url, headers=h), client.post(url, headers=h))
        won, lost = sorted(a.status_code for a in answers)
        assert won == 200, n
        assert lost == 409, n
        assert await _calibrated(client, tenant, session_id) == 1
        assert (await client.post(url, headers=h)).status_code == 409  # a retry, afterwards


async def test_a_proposal_racing_a_close_is_written_or_refused(
    racing: tuple[httpx.AsyncClient, Tenant],
) -> None:
    client, tenant = racing
    h = tenant.headers
    for n in range(ROUNDS):
        session_id = (await open_session(client, tenant, name=f"race {n}"))["id"]
        r = await client.post(f"{BASE}/{session_id}/proposals", json=proposal(), headers=h)
        assert r.status_code == 201, r.text
        closed, late = await asyncio.gather(
            client.post(f"{BASE}/{session_id}/close", headers=h),
            client.post(f"{BASE}/{session_id}/proposals", json=proposal("pm-2"), headers=h),
        )
        assert closed.status_code == 200, closed.text
        assert late.status_code in {201, 409}, late.text
        written = 2 if late.status_code == 201 else 1
        assert closed.json()["calibrated_ratings"] == written
        assert await _calibrated(client, tenant, session_id) == written


async def test_two_first_proposals_of_one_cell_make_one(
    racing: tuple[httpx.AsyncClient, Tenant],
) -> None:
    client, tenant = racing
    h = tenant.headers
    for n in range(ROUNDS):
        session_id = (await open_session(client, tenant, name=f"race {n}"))["id"]
        url = f"{BASE}/{session_id}/proposals"
        answers = await asyncio.gather(
            client.post(url, json=proposal(value=3), headers=h),
            client.post(url, json=proposal(value=4), headers=h),
        )
        codes = [a.status_code for a in answers]
        assert sorted(codes) == [200, 201], n
        [standing] = (await client.get(url, headers=h)).json()["items"]
        # The one that came second (200) replaced the first.
        last = answers[codes.index(200)]
        assert standing["value"] == last.json()["value"], n
