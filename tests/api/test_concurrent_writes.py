"""Concurrent writes on a real connection pool: each one is stored, none answers 5xx.

On the embedded SQLite store a write request's transaction takes the database's write lock when
it begins (BEGIN IMMEDIATE), so a second writer waits for the first (up to the busy timeout)
instead of failing when it tries to upgrade a read snapshot another writer has since moved past.
"""

import asyncio

import httpx
import pytest

from tests.api.test_subjects_assessments import assessment, subject
from tests.calibration.test_sessions_race import racing  # noqa: F401 (a fixture)
from tests.conftest import Tenant

pytestmark = pytest.mark.anyio

WRITERS = 12


async def test_concurrent_writers_all_succeed(racing: tuple[httpx.AsyncClient, Tenant]) -> None:  # noqa: F811
    client, tenant = racing
    h = tenant.headers
    created = await asyncio.gather(
        *(
            client.post("/v1/subjects", json=subject(f"writer-{n}"), headers=h)
            for n in range(WRITERS)
        )
    )
    assert [r.status_code for r in created] == [201] * WRITERS, [r.text for r in created]
    # Every one reads the subject (a snapshot), then writes: the pattern that lost its snapshot.
    rated = await asyncio.gather(
        *(
            client.post(
                "/v1/assessments",
                json=assessment(f"writer-{n % 3}", rater=f"mgr-{n}", when="2026-10-01T09:00:00Z"),
                headers=h,
            )
            for n in range(WRITERS)
        )
    )
    assert [r.status_code for r in rated] == [201] * WRITERS, [r.text for r in rated]
    listed = await client.get("/v1/assessments", params={"limit": 200}, headers=h)
    mine = [a for a in listed.json()["items"] if a["rater_ref"].startswith("mgr-")]
    assert len(mine) == WRITERS
