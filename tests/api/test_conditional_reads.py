"""Gaps, recommendations and history carry an ETag too, and answer If-None-Match with 304.

A dashboard that polls where people stand polls what they miss and what to do next as well.
Each of these reads names its inputs by a weak ETag (the subject, its assessments, the framework
version, the recorded rater effects, the read's own parameters, and for the plan the completed
activities): while they hold, If-None-Match costs the read of the inputs and no scoring, planning
or rendering. These run on Postgres and on SQLite.
"""

from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from app.charts.negotiate import SVG, VEGA_LITE
from app.config import Settings
from tests.api.test_score_reads import make_app, top_marks
from tests.api.test_scores import seed_pm
from tests.conftest import Tenant

pytestmark = pytest.mark.anyio

BASE = "/v1/subjects/emp-1"
AS_OF = {"as_of": "2026-10-20T00:00:00Z"}
READS: dict[str, dict[str, str]] = {
    "gaps": AS_OF,
    "recommendations": AS_OF,
    "history": {},
}


@pytest.mark.parametrize("read", list(READS))
async def test_if_none_match_answers_304_until_the_inputs_change(
    client: httpx.AsyncClient,
    tenant_a: Tenant,
    settings: Settings,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    read: str,
) -> None:
    await seed_pm(client, tenant_a)
    h, url, params = tenant_a.headers, f"{BASE}/{read}", READS[read]
    first = await client.get(url, params=params, headers=h)
    assert first.status_code == 200, first.text
    etag = first.headers["etag"]
    assert etag.startswith('W/"')
    for sent in (etag, etag.removeprefix("W/"), f'"other", {etag}', "*"):
        r = await client.get(url, params=params, headers={**h, "If-None-Match": sent})
        assert (r.status_code, r.content, r.headers["etag"]) == (304, b"", etag), sent
        assert r.headers["vary"] == "Accept"
        assert "content-type" not in r.headers
    r = await client.get(url, params=params, headers={**h, "If-None-Match": '"other"'})
    assert (r.status_code, r.headers["etag"], r.content) == (200, etag, first.content)
    # Another worker names the same state by the same ETag.
    other = make_app(settings, engine, sessionmaker)
    transport = httpx.ASGITransport(app=other)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        again = await c.get(url, params=params, headers={**h, "If-None-Match": etag})
        assert again.status_code == 304
    # A new assessment changes it.
    body = top_marks("2026-10-15T00:00:00Z")
    assert (await client.post("/v1/assessments", json=body, headers=h)).status_code == 201
    changed = await client.get(url, params=params, headers={**h, "If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["etag"] != etag
    assert changed.content != first.content


async def test_the_parameters_of_a_read_are_part_of_its_etag(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    await seed_pm(client, tenant_a)
    h = tenant_a.headers

    async def etag(read: str, **params: Any) -> str:
        r = await client.get(f"{BASE}/{read}", params={**AS_OF, **params}, headers=h)
        assert r.status_code == 200, r.text
        return r.headers["etag"]

    gaps = await etag("gaps")
    assert gaps == await etag("gaps")
    assert gaps != await etag("gaps", target_level="director")
    assert gaps != await etag("gaps", track="ic")
    assert gaps != await etag("gaps", as_of="2027-12-01T00:00:00Z")  # the ratings left the window
    plan = await etag("recommendations")
    assert plan != await etag("recommendations", budget_hours=10)
    assert plan != await etag("recommendations", max_steps=1)
    score = await etag("score")
    history = (await client.get(f"{BASE}/history", headers=h)).headers["etag"]
    assert history != (await client.get(f"{BASE}/history?track=ic", headers=h)).headers["etag"]
    # Four reads of the same inputs, four resources: no ETag stands for another's body.
    assert len({gaps, plan, score, history}) == 4


async def test_a_completed_activity_changes_the_plan_and_nothing_else(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    await seed_pm(client, tenant_a)
    h = tenant_a.headers
    plan = await client.get(f"{BASE}/recommendations", params=AS_OF, headers=h)
    gaps = await client.get(f"{BASE}/gaps", params=AS_OF, headers=h)
    done = {"activity": plan.json()["steps"][0]["activity"], "completed_at": "2026-10-20T00:00:00Z"}
    r = await client.post(f"{BASE}/completed-activities", json=done, headers=h)
    assert r.status_code == 201
    conditional = {**h, "If-None-Match": plan.headers["etag"]}
    after = await client.get(f"{BASE}/recommendations", params=AS_OF, headers=conditional)
    assert after.status_code == 200
    assert after.json()["excluded_activities"] == [done["activity"]]
    conditional = {**h, "If-None-Match": gaps.headers["etag"]}
    same = await client.get(f"{BASE}/gaps", params=AS_OF, headers=conditional)
    assert same.status_code == 304


@pytest.mark.parametrize("read", list(READS))
async def test_each_representation_has_its_own_etag(
    client: httpx.AsyncClient, tenant_a: Tenant, read: str
) -> None:
    await seed_pm(client, tenant_a)
    h, url, params = tenant_a.headers, f"{BASE}/{read}", READS[read]
    as_json = (await client.get(url, params=params, headers=h)).headers["etag"]
    spec = await client.get(url, params=params, headers={**h, "Accept": VEGA_LITE})
    assert spec.status_code == 200
    assert spec.headers["etag"] != as_json
    same = {**h, "Accept": VEGA_LITE, "If-None-Match": spec.headers["etag"]}
    assert (await client.get(url, params=params, headers=same)).status_code == 304
    # The spec's ETag never answers for the SVG, nor the JSON's for the spec.
    svg = {**h, "Accept": SVG, "If-None-Match": spec.headers["etag"]}
    assert (await client.get(url, params=params, headers=svg)).status_code == 200
    json_tag = {**h, "Accept": VEGA_LITE, "If-None-Match": as_json}
    assert (await client.get(url, params=params, headers=json_tag)).status_code == 200


async def test_a_refusal_comes_before_the_etag(
    client: httpx.AsyncClient, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    """If-None-Match never turns a 404 or 401 into a 304."""
    await seed_pm(client, tenant_a)
    for read, params in READS.items():
        url = f"{BASE}/{read}"
        etag = (await client.get(url, params=params, headers=tenant_a.headers)).headers["etag"]
        other = await client.get(
            url, params=params, headers={**tenant_b.headers, "If-None-Match": "*"}
        )
        assert other.status_code == 404
        anonymous = await client.get(url, params=params, headers={"If-None-Match": etag})
        assert anonymous.status_code == 401


async def test_the_routes_declare_etag_and_304(app: Any) -> None:
    paths = app.openapi()["paths"]
    for read in READS:
        op = paths[f"/v1/subjects/{{ref}}/{read}"]["get"]
        assert "ETag" in op["responses"]["200"]["headers"], read
        assert "ETag" in op["responses"]["304"]["headers"], read
        assert "content" not in op["responses"]["304"], read
        assert op["parameters"][-1]["name"] == "if-none-match", read
