"""Cohort evaluation equals the per-subject answers, filters stay inside the tenant, CSV works."""

import csv
import io
from typing import Any

import httpx
import pytest

from app.cohorts.schemas import CohortResponse
from tests.api.test_scores import AS_OF, PM_RATINGS, ratings
from tests.api.test_subjects_assessments import subject
from tests.conftest import Tenant

pytestmark = pytest.mark.anyio

PEOPLE = {
    # ref: (track, official level, team, manager's ratings shift from the PM profile)
    "alice": ("management", "pm", "growth", 0),
    "bob": ("management", "pm", "growth", -1),
    "carol": ("ic", "senior_pm", "platform", 2),
    "dan": (None, "apm", "platform", 1),
    "erin": ("management", "senior_pm", "growth", -2),
}


def shifted(delta: int) -> dict[str, int]:
    return {k: max(0, min(5, v + delta)) for k, v in PM_RATINGS.items()}


async def seed(client: httpx.AsyncClient, tenant: Tenant) -> None:
    h = tenant.headers
    subjects = [
        subject(ref, track=t, current_level=lv, attributes={"team": team})
        for ref, (t, lv, team, _) in PEOPLE.items()
    ]
    subjects.append(
        subject("frank", track="management", current_level="pm", attributes={"team": "growth"})
    )  # never rated
    assert (await client.post("/v1/subjects/bulk", json=subjects, headers=h)).status_code == 201
    body: list[dict[str, Any]] = []
    for ref, (_, _, _, delta) in PEOPLE.items():
        for role, rater, when, d in (
            ("manager", "m1", "2026-09-01T00:00:00Z", delta),
            ("peer", "p1", "2026-09-10T00:00:00Z", delta + 1),
            ("self", ref, "2026-09-20T00:00:00Z", delta + 1),
        ):
            body.append(
                {
                    "subject_ref": ref,
                    "framework": {"key": "product-management"},
                    "rater_ref": rater,
                    "rater_role": role,
                    "assessed_at": when,
                    "ratings": ratings(shifted(d)),
                }
            )
    body.append(
        {
            "subject_ref": "erin",
            "framework": {"key": "product-management"},
            "rater_ref": "panel",
            "rater_role": "calibrated",
            "assessed_at": "2026-10-01T00:00:00Z",
            "ratings": ratings({"execution": 4}),
        }
    )
    assert (await client.post("/v1/assessments/bulk", json=body, headers=h)).status_code == 201


async def test_cohort_matches_per_subject_scores(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    await seed(client, tenant_a)
    h = tenant_a.headers
    r = await client.post(
        "/v1/cohorts/evaluate",
        json={"framework": {"key": "product-management"}, "as_of": AS_OF},
        headers=h,
    )
    assert r.status_code == 200, r.text
    # The body is exactly what the documented model serializes to (people are built as plain
    # rows for speed): same fields, order, number and date formats.
    assert CohortResponse.model_validate_json(r.content).model_dump_json().encode() == r.content
    cohort = r.json()
    people = {p["subject_ref"]: p for p in cohort["people"]}
    assert set(people) == {*PEOPLE, "frank"}
    for ref, person in people.items():
        score = (
            await client.get(
                f"/v1/subjects/{ref}/score",
                params={"as_of": AS_OF, "framework": "product-management"},
                headers=h,
            )
        ).json()
        # The same level, in the same shape, as the score names it.
        assert person["attained_level"] == score["attained_level"]
        assert person["next_level"] == score["next_level"]
        assert person["level_index"] == pytest.approx(score["level_index"], abs=1e-9)
        assert person["confidence"] == pytest.approx(score["confidence"], abs=1e-9)
        assert person["coverage"] == pytest.approx(score["coverage"], abs=1e-9)
        if person["target_level"]:
            assert person["target_readiness"] == pytest.approx(score["readiness_next"], abs=1e-9)
            gaps = (
                await client.get(
                    f"/v1/subjects/{ref}/gaps",
                    params={"as_of": AS_OF, "framework": "product-management"},
                    headers=h,
                )
            ).json()
            lost = {i["competency"]: i["readiness_points_lost"] for i in gaps["items"]}
            for gap in person["top_gaps"]:
                assert gap["readiness_points_lost"] == pytest.approx(
                    lost[gap["competency"]], abs=1e-9
                )
            top = sorted(lost.values(), reverse=True)[: len(person["top_gaps"])]
            assert [g["readiness_points_lost"] for g in person["top_gaps"]] == pytest.approx(
                top, abs=1e-9
            )
    summary = cohort["summary"]
    assert summary["subjects"] == 6
    assert summary["rated_subjects"] == 5
    assert sum(summary["level_distribution"].values()) == 6
    assert summary["level_distribution"]["none"] >= 1  # frank
    ranks = {
        "apm": 1,
        "pm": 2,
        "senior_pm": 3,
        "principal_pm": 4,
        "group_pm": 4,
        "director": 5,
        "vp_product": 6,
    }
    for ref, person in people.items():
        mine = (person["attained_level"] or {}).get("rank", 0)
        official = ranks[person["current_level"]]
        assert (ref in summary["promotion_ready"]) == (mine > official)
        assert (ref in summary["below_level"]) == (mine < official)
    lost_means = [g["mean_readiness_points_lost"] for g in summary["biggest_gaps"]]
    assert lost_means == sorted(lost_means, reverse=True)
    heat = cohort["heatmap"]
    row = heat["values"][heat["subject_refs"].index("alice")]
    alice_score = (
        await client.get("/v1/subjects/alice/score", params={"as_of": AS_OF}, headers=h)
    ).json()
    values = {c["key"]: c["value"] or 0 for c in alice_score["competencies"]}
    target = people["alice"]["target_level"]["key"]
    required = {
        w["competency"]: w["required"]
        for lv in alice_score["explanation"]["levels"]
        if lv["level"] == target
        for w in lv["weights"]
    }
    for key, cell in zip(heat["competencies"], row, strict=True):
        assert cell == pytest.approx(values[key] - required[key], abs=1e-6)


async def test_filters_and_lists_stay_in_the_tenant(
    client: httpx.AsyncClient, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    await seed(client, tenant_a)
    h = tenant_a.headers
    r = await client.post(
        "/v1/cohorts/evaluate",
        json={
            "framework": {"key": "product-management"},
            "filter": {"attributes": {"team": "platform"}},
        },
        headers=h,
    )
    assert sorted(p["subject_ref"] for p in r.json()["people"]) == ["carol", "dan"]
    r = await client.post(
        "/v1/cohorts/evaluate",
        json={
            "framework": {"key": "product-management"},
            "subject_refs": ["alice", "nobody"],
            "include_heatmap": False,
        },
        headers=h,
    )
    assert [p["subject_ref"] for p in r.json()["people"]] == ["alice"]
    assert r.json()["unknown_refs"] == ["nobody"]
    assert r.json()["heatmap"] is None
    # Tenant B sees none of A's people, by list or by filter.
    hb = tenant_b.headers
    r = await client.post(
        "/v1/cohorts/evaluate",
        json={"framework": {"key": "product-management"}, "subject_refs": list(PEOPLE)},
        headers=hb,
    )
    assert r.json()["people"] == []
    assert r.json()["unknown_refs"] == sorted(PEOPLE)
    r = await client.post(
        "/v1/cohorts/evaluate",
        json={
            "framework": {"key": "product-management"},
            "filter": {"attributes": {"team": "growth"}},
        },
        headers=hb,
    )
    assert r.json()["summary"]["subjects"] == 0


async def test_csv_tables(client: httpx.AsyncClient, tenant_a: Tenant) -> None:
    await seed(client, tenant_a)
    h = tenant_a.headers
    body = {"framework": {"key": "product-management"}, "as_of": AS_OF}
    r = await client.post("/v1/cohorts/evaluate", params={"format": "csv"}, json=body, headers=h)
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [row["subject_ref"] for row in rows] == sorted([*PEOPLE, "frank"])
    r = await client.post(
        "/v1/cohorts/evaluate", params={"format": "csv", "table": "heatmap"}, json=body, headers=h
    )
    header = next(csv.reader(io.StringIO(r.text)))
    assert header[0] == "subject_ref"
    assert "execution" in header


async def test_cohort_errors(client: httpx.AsyncClient, tenant_a: Tenant) -> None:
    h = tenant_a.headers
    r = await client.post("/v1/cohorts/evaluate", json={"framework": {"key": "nope"}}, headers=h)
    assert r.status_code == 404
    r = await client.post(
        "/v1/cohorts/evaluate",
        json={"framework": {"key": "product-management"}, "target_level": "ceo"},
        headers=h,
    )
    assert r.status_code == 422


async def test_one_subject_on_an_unknown_track_does_not_block_the_cohort(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    # A subject stored with a misspelt track made the whole tenant's cohort a 422 whose `loc`
    # pointed at a field the request did not have: score the rest, list who was skipped and why.
    await seed(client, tenant_a)
    h = tenant_a.headers
    typo = subject("typo", track="managment", current_level="pm", attributes={"team": "growth"})
    assert (await client.post("/v1/subjects", json=typo, headers=h)).status_code == 201
    r = await client.post(
        "/v1/cohorts/evaluate",
        json={"framework": {"key": "product-management"}, "as_of": AS_OF},
        headers=h,
    )
    assert r.status_code == 200, r.text
    cohort = r.json()
    assert {p["subject_ref"] for p in cohort["people"]} == {*PEOPLE, "frank"}
    assert cohort["summary"]["subjects"] == len(PEOPLE) + 1
    assert [s["subject_ref"] for s in cohort["skipped"]] == ["typo"]
    assert "managment" in cohort["skipped"][0]["reason"]
    # Asking for an unknown track in the filter is the request's own mistake: 422 at its field.
    r = await client.post(
        "/v1/cohorts/evaluate",
        json={"framework": {"key": "product-management"}, "filter": {"track": "managment"}},
        headers=h,
    )
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["loc"] == ["body", "filter", "track"]
