"""Score, gaps, recommendations, what-if, history and the stateless evaluate, over HTTP."""

from typing import Any

import httpx
import pytest

from tests.api.test_subjects_assessments import subject
from tests.conftest import Tenant

pytestmark = pytest.mark.anyio

AS_OF = "2026-11-01T00:00:00Z"
PM_RATINGS = {
    "customer_discovery": 3,
    "execution": 3,
    "technical_depth": 2,
    "prioritization": 3,
    "data_driven_decisions": 2,
    "stakeholder_management": 2,
    "communication": 3,
    "cross_functional_leadership": 2,
    "strategic_thinking": 2,
    "market_analysis": 2,
    "business_acumen": 2,
    "mentoring_and_coaching": 1,
    "handling_scale": 2,
    "organization_building": 1,
}


def ratings(values: dict[str, int]) -> list[dict[str, Any]]:
    return [{"competency": k, "proficiency": v} for k, v in values.items()]


async def seed_pm(client: httpx.AsyncClient, tenant: Tenant, ref: str = "emp-1") -> None:
    """A PM rated by a manager, a peer and themselves (self a point more generous)."""
    h = tenant.headers
    r = await client.post("/v1/subjects", json=subject(ref, track="management"), headers=h)
    assert r.status_code == 201
    generous = {k: min(5, v + 1) for k, v in PM_RATINGS.items()}
    for role, rater, when, values in (
        ("manager", "mgr-1", "2026-09-01T00:00:00Z", PM_RATINGS),
        ("peer", "peer-1", "2026-09-15T00:00:00Z", PM_RATINGS),
        ("self", ref, "2026-10-01T00:00:00Z", generous),
    ):
        body = {
            "subject_ref": ref,
            "framework": {"key": "product-management"},
            "rater_ref": rater,
            "rater_role": role,
            "assessed_at": when,
            "ratings": ratings(values),
        }
        r = await client.post("/v1/assessments", json=body, headers=h)
        assert r.status_code == 201, r.text


async def test_score_explanation_reproduces_every_number(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    await seed_pm(client, tenant_a)
    r = await client.get(
        "/v1/subjects/emp-1/score", params={"as_of": AS_OF}, headers=tenant_a.headers
    )
    assert r.status_code == 200, r.text
    score = r.json()
    ex = score["explanation"]
    weights = ex["settings"]["role_weights"]
    # a_c by hand: manager and peer agree, self one point higher.
    for comp in score["competencies"]:
        base = PM_RATINGS[comp["key"]]
        own = min(5, base + 1)
        expected = (weights["manager"] * base + weights["peer"] * base + weights["self"] * own) / (
            weights["manager"] + weights["peer"] + weights["self"]
        )
        assert comp["value"] == pytest.approx(expected)
        assert comp["raters"] == 3
    # Readiness of every level from the explanation's own weights and values.
    values = {c["key"]: c["value"] for c in score["competencies"]}
    by_level = {lv["level"]: lv for lv in ex["levels"]}
    for level in score["levels"]:
        rows = by_level[level["level"]]["weights"]
        total = sum(w["weight"] for w in rows)
        by_hand = (
            sum(w["weight"] * min(1.0, values[w["competency"]] / w["required"]) for w in rows)
            / total
        )
        assert level["readiness"] == pytest.approx(by_hand)
    # Level index: rank of the attained level plus readiness for the next one.
    attained, nxt = score["attained_level"], score["next_level"]
    assert attained is not None and nxt is not None
    readiness_next = next(lv["readiness"] for lv in score["levels"] if lv["level"] == nxt["key"])
    assert score["level_index"] == pytest.approx(attained["rank"] + min(0.99, readiness_next))
    assert score["confidence"] == pytest.approx(score["coverage"] * (1 - 0.5**3))
    assert ex["distinct_raters"] == 3
    assert ex["path"][:3] == ["apm", "pm", "senior_pm"]


async def test_gaps_add_up_and_plan_rises(client: httpx.AsyncClient, tenant_a: Tenant) -> None:
    await seed_pm(client, tenant_a)
    h = tenant_a.headers
    score = (
        await client.get("/v1/subjects/emp-1/score", params={"as_of": AS_OF}, headers=h)
    ).json()
    target = score["next_level"]["key"]
    gaps = (await client.get("/v1/subjects/emp-1/gaps", params={"as_of": AS_OF}, headers=h)).json()
    assert gaps["target_level"]["key"] == target
    assert sum(i["readiness_points_lost"] for i in gaps["items"]) == pytest.approx(
        1 - gaps["readiness"]
    )
    flags = [i["status"] == "critical_gap" for i in gaps["items"]]
    assert flags == sorted(flags, reverse=True)  # critical gaps first
    plan = (
        await client.get("/v1/subjects/emp-1/recommendations", params={"as_of": AS_OF}, headers=h)
    ).json()
    assert plan["steps"], plan["message"]
    before = plan["readiness_now"]
    for step in plan["steps"]:
        assert step["readiness_after"] >= step["readiness_before"] == pytest.approx(before)
        before = step["readiness_after"]
    tight = (
        await client.get(
            "/v1/subjects/emp-1/recommendations",
            params={"as_of": AS_OF, "budget_hours": 30},
            headers=h,
        )
    ).json()
    assert tight["total_hours"] <= 30


async def test_completed_activities_are_not_recommended_again(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    await seed_pm(client, tenant_a)
    h = tenant_a.headers
    plan = (
        await client.get("/v1/subjects/emp-1/recommendations", params={"as_of": AS_OF}, headers=h)
    ).json()
    first = plan["steps"][0]["activity"]
    r = await client.post(
        "/v1/subjects/emp-1/completed-activities",
        json={"activity": first, "completed_at": "2026-10-20T00:00:00Z"},
        headers=h,
    )
    assert r.status_code == 201
    again = (
        await client.get("/v1/subjects/emp-1/recommendations", params={"as_of": AS_OF}, headers=h)
    ).json()
    assert first not in [s["activity"] for s in again["steps"]]
    assert again["excluded_activities"] == [first]
    r = await client.post(
        "/v1/subjects/emp-1/completed-activities",
        json={"activity": first, "completed_at": "2026-10-20T00:00:00Z"},
        headers=h,
    )
    assert r.status_code == 409


async def test_stored_and_stateless_paths_agree(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    await seed_pm(client, tenant_a)
    h = tenant_a.headers
    generous = {k: min(5, v + 1) for k, v in PM_RATINGS.items()}
    body = {
        "framework": {"key": "product-management"},
        "as_of": AS_OF,
        "track": "management",
        "ratings": [
            *(
                {
                    "competency": k,
                    "proficiency": v,
                    "rater_ref": "mgr-1",
                    "rater_role": "manager",
                    "assessed_at": "2026-09-01T00:00:00Z",
                }
                for k, v in PM_RATINGS.items()
            ),
            *(
                {
                    "competency": k,
                    "proficiency": v,
                    "rater_ref": "peer-1",
                    "rater_role": "peer",
                    "assessed_at": "2026-09-15T00:00:00Z",
                }
                for k, v in PM_RATINGS.items()
            ),
            *(
                {
                    "competency": k,
                    "proficiency": v,
                    "rater_ref": "emp-1",
                    "rater_role": "self",
                    "assessed_at": "2026-10-01T00:00:00Z",
                }
                for k, v in generous.items()
            ),
        ],
    }
    stateless = (await client.post("/v1/evaluate", json=body, headers=h)).json()
    stored_score = (
        await client.get("/v1/subjects/emp-1/score", params={"as_of": AS_OF}, headers=h)
    ).json()
    stored_gaps = (
        await client.get("/v1/subjects/emp-1/gaps", params={"as_of": AS_OF}, headers=h)
    ).json()
    stored_plan = (
        await client.get("/v1/subjects/emp-1/recommendations", params={"as_of": AS_OF}, headers=h)
    ).json()
    for part, stored in (("score", stored_score), ("gaps", stored_gaps), ("plan", stored_plan)):
        mine = {k: v for k, v in stateless[part].items() if k != "subject_ref"}
        theirs = {k: v for k, v in stored.items() if k != "subject_ref"}
        assert mine == theirs, part


async def test_what_if_changes_nothing_stored(client: httpx.AsyncClient, tenant_a: Tenant) -> None:
    await seed_pm(client, tenant_a)
    h = tenant_a.headers
    before = (
        await client.get("/v1/subjects/emp-1/score", params={"as_of": AS_OF}, headers=h)
    ).json()
    everything = {k: 5 for k in PM_RATINGS}
    r = await client.post(
        "/v1/subjects/emp-1/what-if", json={"changes": everything, "as_of": AS_OF}, headers=h
    )
    assert r.status_code == 200, r.text
    hypothetical = r.json()
    assert hypothetical["score"]["attained_level"]["key"] == "vp_product"
    assert hypothetical["score"]["explanation"]["overrides"] == everything
    assert hypothetical["plan"]["stop_reason"] == "already_met"
    after = (
        await client.get("/v1/subjects/emp-1/score", params={"as_of": AS_OF}, headers=h)
    ).json()
    assert after == before
    r = await client.post(
        "/v1/subjects/emp-1/what-if", json={"changes": {"juggling": 3}}, headers=h
    )
    assert r.status_code == 422
    assert r.json()["errors"][0]["loc"] == ["body", "changes"]


async def test_history_and_velocity(client: httpx.AsyncClient, tenant_a: Tenant) -> None:
    await seed_pm(client, tenant_a)
    h = tenant_a.headers
    r = await client.get("/v1/subjects/emp-1/history", headers=h)
    assert r.status_code == 200
    body = r.json()
    assert [p["as_of"][:10] for p in body["points"]] == ["2026-09-01", "2026-09-15", "2026-10-01"]
    indexes = [p["level_index"] for p in body["points"]]
    days = [0, 14, 30]
    mean_d, mean_i = sum(days) / 3, sum(indexes) / 3
    slope = sum((d - mean_d) * (i - mean_i) for d, i in zip(days, indexes, strict=True)) / sum(
        (d - mean_d) ** 2 for d in days
    )
    assert body["velocity_per_90_days"] == pytest.approx(slope * 90)


async def test_score_errors(client: httpx.AsyncClient, tenant_a: Tenant) -> None:
    h = tenant_a.headers
    assert (await client.get("/v1/subjects/ghost/score", headers=h)).status_code == 404
    await client.post("/v1/subjects", json=subject("new-hire"), headers=h)
    r = await client.get("/v1/subjects/new-hire/score", headers=h)
    assert r.status_code == 422  # no assessments and no framework named
    r = await client.get(
        "/v1/subjects/new-hire/score", params={"framework": "product-management"}, headers=h
    )
    assert r.status_code == 200
    assert r.json()["attained_level"] is None
    assert r.json()["confidence"] == 0
    r = await client.get(
        "/v1/subjects/new-hire/score",
        params={"framework": "product-management", "track": "astronaut"},
        headers=h,
    )
    assert r.status_code == 422
    assert r.json()["errors"][0]["loc"] == ["query", "track"]
    r = await client.get(
        "/v1/subjects/new-hire/gaps",
        params={"framework": "product-management", "target_level": "ceo"},
        headers=h,
    )
    assert r.status_code == 422
    r = await client.get(
        "/v1/subjects/new-hire/score",
        params={"framework": "product-management", "as_of": "2026-01-01T00:00:00"},
        headers=h,
    )
    assert r.status_code == 422  # naive timestamp
