"""xAPI over HTTP: the version header on every answer, results as ratings (opt-in), and two
requests racing with one new statement id."""

import asyncio
import uuid
from typing import Any

import asyncpg
import httpx
import pytest
from sqlmodel import col, select

from app.config import Settings
from app.db import bind_tenant, driver_url
from app.models import Assessment, Rating
from app.xapi import service as xapi_service
from app.xapi.service import scaled_to_scale
from tests.api.test_scores import AS_OF
from tests.api.test_subjects_assessments import subject
from tests.api.test_webhooks import (
    allow_private,  # noqa: F401 - a fixture
    subscribed,
)
from tests.api.test_xapi import ADL, LMS, PROBLEM, basic, setup, statement, voiding
from tests.conftest import Database, Tenant
from tests.contract.conftest import Served
from tests.contract.conftest import served as served  # the real service, a fixture
from tests.security.test_erasure_everywhere import deliveries

pytestmark = pytest.mark.anyio

BUILTIN = "https://competency-ladder.dev/xapi/activities/product-management/"
# The built-in ladder's certification develops these three competencies; its scale is 0..5.
CPM = BUILTIN + "certified_product_manager"
CPM_DEVELOPS = {"business_acumen", "execution", "market_analysis"}


# ------------------------------------------------------------------ the version header


async def test_every_answer_carries_the_version_header(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    lrs = await setup(client, tenant_a)
    sid = str(uuid.uuid4())
    answers: dict[str, httpx.Response] = {}
    answers["200"] = await client.post(
        "/xapi/statements", json=statement("completed", CPM, statement_id=sid), headers=lrs
    )
    answers["400 statement"] = await client.post(
        "/xapi/statements", json=statement("completed", "not an iri"), headers=lrs
    )
    answers["400 no version"] = await client.post(
        "/xapi/statements",
        json=statement("completed", CPM),
        headers={"Authorization": lrs["Authorization"]},
    )
    answers["401"] = await client.post(
        "/xapi/statements",
        json=statement("completed", CPM),
        headers={"X-Experience-API-Version": "1.0.3"},
    )
    reader = basic(await tenant_a.key("learning-records:read"))
    answers["403"] = await client.post(
        "/xapi/statements", json=statement("completed", CPM), headers=reader
    )
    answers["409"] = await client.put(
        "/xapi/statements",
        params={"statementId": sid},
        json=statement("passed", CPM),
        headers=lrs,
    )
    answers["404"] = await client.get(
        "/xapi/statements", params={"statementId": str(uuid.uuid4())}, headers=lrs
    )
    statuses = {what: r.status_code for what, r in answers.items()}
    assert statuses == {what: int(what.split()[0]) for what in answers}
    for what, r in answers.items():
        assert r.headers.get("X-Experience-API-Version") == "1.0.3", what
        if r.status_code >= 400:
            assert r.headers["content-type"] == PROBLEM, what
    # A 2.0 client is answered in 2.0, errors included.
    two = basic(await tenant_a.key("learning-records:write"), version="2.0.0")
    r = await client.post("/xapi/statements", json={"actor": {}}, headers=two)
    assert r.status_code == 400
    assert r.headers["X-Experience-API-Version"] == "2.0.0"


async def test_answers_made_outside_the_routes_carry_the_version_header_too(
    client: httpx.AsyncClient,
    tenant_a: Tenant,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Refusals the request guards make before routing (413, invalid UTF-8), an unknown
    /xapi/ path, a wrong method and an unexpected error (500) carry the header as well."""
    lrs = await setup(client, tenant_a)
    answers: dict[str, httpx.Response] = {}
    answers["413"] = await client.post(
        "/xapi/statements",
        content=b"[" + b" " * settings.max_request_bytes + b"]",
        headers={**lrs, "Content-Type": "application/json"},
    )
    answers["422"] = await client.get("/xapi/statements?statementId=%ED%A0%80", headers=lrs)
    answers["404"] = await client.get("/xapi/activities/state", headers=lrs)
    answers["405"] = await client.delete("/xapi/statements", headers=lrs)

    async def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError("a defect")

    monkeypatch.setattr(xapi_service, "statement", broken)
    answers["500"] = await client.get(
        "/xapi/statements", params={"statementId": str(uuid.uuid4())}, headers=lrs
    )
    assert {what: r.status_code for what, r in answers.items()} == {
        what: int(what) for what in answers
    }
    for what, r in answers.items():
        assert r.headers.get("X-Experience-API-Version") == "1.0.3", what
        assert r.headers["content-type"] == PROBLEM, what
        assert len(r.headers.get_list("X-Experience-API-Version")) == 1, what
    assert "a defect" in caplog.text  # the 500 was logged as any unexpected error is
    two = {**lrs, "X-Experience-API-Version": "2.0.0"}
    r = await client.get("/xapi/statements", params={"statementId": "x"}, headers=two)
    assert r.headers["X-Experience-API-Version"] == "2.0.0"
    assert len(r.headers.get_list("X-Experience-API-Version")) == 1


# ------------------------------------------------------------------ results as ratings


@pytest.mark.parametrize(
    ("scaled", "scale", "value"),
    [
        (0.0, (0, 1, 2, 3, 4, 5), 0),
        (1.0, (0, 1, 2, 3, 4, 5), 5),
        (0.72, (0, 1, 2, 3, 4, 5), 4),  # 3.6
        (0.5, (0, 1, 2, 3, 4, 5), 3),  # 2.5: a tie goes up
        (0.66, (0, 1, 2, 3, 4, 5), 3),  # 3.3
        (-0.4, (0, 1, 2, 3, 4, 5), 0),  # negative counts as 0
        (0.5, (1, 2, 4, 8), 4),  # 4.5 on an uneven scale: nearest value 4
        (0.9, (1, 2, 4, 8), 8),  # 7.3
        (0.25, (1, 3, 5), 2 + 1),  # 2.0: a tie between 1 and 3 goes up
    ],
)
def test_a_scaled_score_maps_onto_the_scale(
    scaled: float, scale: tuple[int, ...], value: int
) -> None:
    assert scaled_to_scale(scaled, scale) == value


async def opt_in(client: httpx.AsyncClient, tenant: Tenant, on: bool) -> None:
    r = await client.put(
        "/v1/learning-records/settings",
        json={"account_home_pages": [LMS], "result_ratings": on},
        headers=tenant.headers,
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"account_home_pages": [LMS], "result_ratings": on}


def scored(verb: str, scaled: float, sid: str, iri: str = CPM, **extra: Any) -> dict[str, Any]:
    return statement(
        verb, iri, statement_id=sid, result={"score": {"scaled": scaled}, "success": True}, **extra
    )


async def xapi_ratings(tenant: Tenant, ref: str = "emp-1") -> dict[str, dict[str, int]]:
    """rater_ref -> competency -> proficiency of the assessments made from statements."""
    async with tenant.sessionmaker() as session:
        await bind_tenant(session, tenant.id)
        rows = (
            await session.exec(
                select(Assessment.rater_ref, Rating.competency_key, Rating.proficiency)
                .join(Rating, col(Rating.assessment_id) == col(Assessment.id))
                .where(
                    col(Assessment.statement_id).is_not(None),
                    Assessment.rater_role == "external",
                )
            )
        ).all()
    out: dict[str, dict[str, int]] = {}
    for rater, key, proficiency in rows:
        out.setdefault(rater, {})[key] = proficiency
    return out


async def contributions(
    client: httpx.AsyncClient, tenant: Tenant, ref: str = "emp-1"
) -> dict[str, dict[str, int]]:
    """rater_ref -> competency -> proficiency, as the score's explanation lists them."""
    r = await client.get(
        f"/v1/subjects/{ref}/score", params={"as_of": AS_OF}, headers=tenant.headers
    )
    assert r.status_code == 200, r.text
    out: dict[str, dict[str, int]] = {}
    for key, items in r.json()["explanation"]["contributions"].items():
        for c in items:
            out.setdefault(c["rater_ref"], {})[key] = c["proficiency"]
    return out


async def test_results_become_external_ratings_only_when_opted_in(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    lrs = await setup(client, tenant_a)
    off, on, failed = (str(uuid.uuid4()) for _ in range(3))
    # Off by default: the score is a completion and nothing more.
    r = await client.post("/xapi/statements", json=scored("passed", 0.9, off), headers=lrs)
    assert r.status_code == 200, r.text
    assert await xapi_ratings(tenant_a) == {}
    before = await contributions(client, tenant_a)
    await opt_in(client, tenant_a, True)
    batch = [
        scored("passed", 0.72, on, iri=BUILTIN + "certified_product_owner"),
        # Any verb with a score is evidence, a failure too; it records no completion.
        scored("failed", 0.3, failed, iri=BUILTIN + "system_design_course"),
        # Unknown to every framework: nothing to rate.
        scored("passed", 0.9, str(uuid.uuid4()), iri="https://lms.example.com/courses/x"),
    ]
    r = await client.post("/xapi/statements", json=batch, headers=lrs)
    assert r.status_code == 200, r.text
    made = await xapi_ratings(tenant_a)
    assert set(made) == {f"xapi:{on}", f"xapi:{failed}"}
    assert set(made[f"xapi:{on}"].values()) == {4}  # 0.72 × 5 = 3.6 -> 4
    assert set(made[f"xapi:{failed}"].values()) == {2}  # 0.3 × 5 = 1.5 -> 2
    # The score's explanation names the statement as the rater of each competency.
    after = await contributions(client, tenant_a)
    assert f"xapi:{on}" not in before and after[f"xapi:{on}"] == made[f"xapi:{on}"]
    assert after[f"xapi:{failed}"] == made[f"xapi:{failed}"]
    # A replay makes no second rating.
    r = await client.post("/xapi/statements", json=batch[:1], headers=lrs)
    assert r.status_code == 200
    assert await xapi_ratings(tenant_a) == made
    # Opting out stops new ones and keeps those made.
    await opt_in(client, tenant_a, False)
    r = await client.post(
        "/xapi/statements", json=scored("passed", 1.0, str(uuid.uuid4())), headers=lrs
    )
    assert r.status_code == 200
    assert await xapi_ratings(tenant_a) == made


async def test_the_ratings_follow_the_framework_scale_and_competencies(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    lrs = await setup(client, tenant_a)
    await opt_in(client, tenant_a, True)
    sids = [str(uuid.uuid4()) for _ in range(3)]
    batch = [scored("passed", s, sid) for s, sid in zip((1.0, 0.5, -0.2), sids, strict=True)]
    r = await client.post("/xapi/statements", json=batch, headers=lrs)
    assert r.status_code == 200, r.text
    made = await xapi_ratings(tenant_a)
    assert made == {
        f"xapi:{sids[0]}": dict.fromkeys(CPM_DEVELOPS, 5),
        f"xapi:{sids[1]}": dict.fromkeys(CPM_DEVELOPS, 3),
        f"xapi:{sids[2]}": dict.fromkeys(CPM_DEVELOPS, 0),
    }


async def test_voiding_and_erasure_remove_the_ratings(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    lrs = await setup(client, tenant_a)
    await opt_in(client, tenant_a, True)
    r = await client.post("/v1/subjects", json=subject("emp-2"), headers=tenant_a.headers)
    assert r.status_code == 201, r.text
    kept, voided, erased = (str(uuid.uuid4()) for _ in range(3))
    batch = [
        scored("passed", 0.8, kept),
        scored("passed", 0.6, voided, iri=BUILTIN + "system_design_course"),
        scored("passed", 0.8, erased, ref="emp-2"),
    ]
    r = await client.post("/xapi/statements", json=batch, headers=lrs)
    assert r.status_code == 200, r.text
    assert set(await xapi_ratings(tenant_a)) == {f"xapi:{s}" for s in (kept, voided, erased)}
    r = await client.post("/xapi/statements", json=voiding(voided), headers=lrs)
    assert r.status_code == 200, r.text
    assert set(await xapi_ratings(tenant_a)) == {f"xapi:{kept}", f"xapi:{erased}"}
    assert f"xapi:{voided}" not in await contributions(client, tenant_a)
    r = await client.delete("/v1/subjects/emp-2", headers=tenant_a.headers)
    assert r.status_code == 204, r.text
    assert set(await xapi_ratings(tenant_a)) == {f"xapi:{kept}"}


@pytest.mark.usefixtures("allow_private")
async def test_ratings_from_results_are_announced_like_any_assessment(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    """Subscribers hear of ratings made from results: assessment.created for each, and
    readiness.changed with the scores the API answers before and after; voiding the statement
    moves the person back, and that is announced too."""
    lrs = await setup(client, tenant_a)
    await opt_in(client, tenant_a, True)
    hook = await subscribed(client, tenant_a, "assessment.created", "readiness.changed")

    async def standing() -> dict[str, Any]:
        r = await client.get("/v1/subjects/emp-1/score", headers=tenant_a.headers)
        assert r.status_code == 200, r.text
        score = r.json()
        return {**score, "attained_level": (score["attained_level"] or {}).get("key")}

    async def events(kind: str) -> list[dict[str, Any]]:
        log = await deliveries(client, tenant_a, hook)
        return sorted(
            (d["payload"]["data"] for d in log.values() if d["event"] == kind),
            key=lambda data: str(data),
        )

    before = await standing()
    sid = str(uuid.uuid4())
    r = await client.post("/xapi/statements", json=scored("passed", 1.0, sid), headers=lrs)
    assert r.status_code == 200, r.text
    rated = await standing()
    [created] = await events("assessment.created")
    assert created["subject_ref"] == "emp-1"
    assert created["rater_role"] == "external"
    assert created["ratings"] == len(CPM_DEVELOPS)
    assert created["framework"] == {"key": "product-management", "version": 1}
    [moved] = await events("readiness.changed")
    assert moved["subject_ref"] == "emp-1"
    for name, score in (("before", before), ("after", rated)):
        assert moved[name]["attained_level"] == score["attained_level"], name
        assert moved[name]["level_index"] == pytest.approx(score["level_index"], abs=1e-4), name
    assert moved["before"] != moved["after"]

    r = await client.post("/xapi/statements", json=voiding(sid), headers=lrs)
    assert r.status_code == 200, r.text
    back = [e for e in await events("readiness.changed") if e != moved]
    assert len(back) == 1
    assert back[0]["before"] == moved["after"]
    assert back[0]["after"]["level_index"] == pytest.approx(before["level_index"], abs=1e-4)
    assert len(await events("assessment.created")) == 1  # voiding creates nothing


# ------------------------------------------------------------------ racing statement ids


async def race(
    served: Served, database: Database, ref: str, first: dict[str, Any], second: dict[str, Any]
) -> tuple[httpx.Response, httpx.Response]:
    """Send both statements at once from two forwarders, so that each looks its id up and finds
    nothing before either stores it: a third transaction holds the id (uncommitted) until both
    wait for it at their insert, then rolls back."""
    holder = await asyncpg.connect(driver_url(database.owner_url))
    admin = {"Authorization": f"Bearer {served.token}"}
    async with httpx.AsyncClient(base_url=served.base_url, timeout=30) as client:
        keys = []
        for _ in range(2):
            r = await client.post(
                "/v1/api-keys",
                json={"name": "lrs forwarder", "scopes": ["learning-records:write"]},
                headers=admin,
            )
            assert r.status_code == 201, r.text
            keys.append(r.json()["key"])
        # Both forwarders' keys known and the service's connections open before the race.
        warm = await asyncio.gather(
            *(
                client.get(
                    "/xapi/statements",
                    params={"statementId": str(uuid.uuid4())},
                    headers=basic(key),
                )
                for key in keys * 2
            )
        )
        assert [w.status_code for w in warm] == [403] * 4  # write-only keys: known, refused
        try:
            await holder.execute("BEGIN")
            await holder.execute(
                "INSERT INTO xapi_statement (tenant_id, id, digest, verb, voided, stored_at) "
                "SELECT tenant_id, $2, 'held', 'held', false, now() FROM subject "
                "WHERE external_ref = $1",
                ref,
                uuid.UUID(first["id"]),
            )
            sends = [
                asyncio.create_task(client.post("/xapi/statements", json=body, headers=basic(key)))
                for body, key in ((first, keys[0]), (second, keys[1]))
            ]
            waiting = 0
            for _ in range(200):
                waiting = await holder.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock'"
                )
                if waiting == 2 or any(t.done() for t in sends):
                    break
                await asyncio.sleep(0.02)
            assert waiting == 2
            await holder.execute("ROLLBACK")
            one, two = await asyncio.gather(*sends)
            return one, two
        finally:
            await holder.close()


async def test_racing_requests_with_one_new_id(served: Served, database: Database) -> None:
    if database.backend != "postgres":
        pytest.skip("concurrent transactions are the Postgres path")
    ref = f"race-{uuid.uuid4().hex[:8]}"
    admin = {"Authorization": f"Bearer {served.token}"}
    async with httpx.AsyncClient(base_url=served.base_url, timeout=30) as client:
        r = await client.post("/v1/subjects", json=subject(ref), headers=admin)
        assert r.status_code == 201, r.text
        r = await client.put(
            "/v1/learning-records/settings", json={"account_home_pages": [LMS]}, headers=admin
        )
        assert r.status_code == 200, r.text
    sid = str(uuid.uuid4())
    same = statement("completed", CPM, ref=ref, statement_id=sid)
    one, two = await race(served, database, ref, same, dict(same))
    assert (one.status_code, two.status_code) == (200, 200), (one.text, two.text)
    assert one.json() == two.json() == [sid]
    other = str(uuid.uuid4())
    first = statement("completed", CPM, ref=ref, statement_id=other)
    changed = statement("passed", CPM, ref=ref, statement_id=other)
    one, two = await race(served, database, ref, first, changed)
    assert sorted([one.status_code, two.status_code]) == [200, 409], (one.text, two.text)
    loser = one if one.status_code == 409 else two
    assert loser.headers["content-type"] == PROBLEM
    assert loser.headers["X-Experience-API-Version"] == "1.0.3"
    # What is kept is the winner's content, and the loser changed nothing.
    winner_verb = ADL + ("passed" if loser is one else "completed")
    async with httpx.AsyncClient(base_url=served.base_url, timeout=30) as client:
        r = await client.get(
            "/xapi/statements",
            params={"statementId": other},
            headers={**admin, "X-Experience-API-Version": "1.0.3"},
        )
    assert r.status_code == 200, r.text
    assert r.json()["verb"]["id"] == winner_verb
