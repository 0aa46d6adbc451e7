"""Framework evolution over HTTP: the diff of two versions, a competency map carrying older
ratings into scores and cohorts, the impact preview (JSON and CSV), release notes and the
framework.published webhook."""

import csv
import io
from typing import Any

import httpx
import pytest

from tests.api.test_subjects_assessments import subject
from tests.api.test_webhooks import (
    allow_private,  # noqa: F401 - a fixture
    subscribed,
)
from tests.conftest import Tenant
from tests.factories import small_framework

pytestmark = pytest.mark.anyio

PROBLEM = "application/problem+json"
AS_OF = "2026-11-01T00:00:00Z"
BASE = "/v1/frameworks/eng-ladder"
# ref: (coding, design, influence) given by a manager under v1
PEOPLE = {"ann": (3, 2, 1), "ben": (2, 2, 1), "cid": (1, 1, 1), "dee": (2, 1, 3)}


def renamed_v2(**extra: Any) -> dict[str, Any]:
    """v1 with coding renamed to programming and mid requiring design 3 (critical)."""
    doc = small_framework()
    coding = doc["competencies"][0]
    coding["key"], coding["name"] = "programming", "Programming"
    doc["competencies"][1]["expectations"]["mid"] = {"required": 3, "critical": True}
    doc["activities"][0]["develops"] = {"programming": 1}
    doc["competency_map"] = {
        "complete": False,
        "entries": [{"from": "coding", "to": "programming"}],
    }
    doc["release_notes"] = "Coding is now Programming; mid engineers need strong design."
    doc.update(extra)
    return doc


async def setup_v1(client: httpx.AsyncClient, tenant: Tenant) -> None:
    h = tenant.headers
    r = await client.post(
        "/v1/frameworks", json=small_framework(), headers=h, params={"publish": True}
    )
    assert r.status_code == 201, r.text
    people = [subject(ref, track="ic", current_level="mid") for ref in PEOPLE]
    assert (await client.post("/v1/subjects/bulk", json=people, headers=h)).status_code == 201
    body = [
        {
            "subject_ref": ref,
            "framework": {"key": "eng-ladder", "version": 1},
            "rater_ref": "m1",
            "rater_role": "manager",
            "assessed_at": "2026-10-01T00:00:00Z",
            "ratings": [
                {"competency": k, "proficiency": v}
                for k, v in zip(("coding", "design", "influence"), values, strict=True)
            ],
        }
        for ref, values in PEOPLE.items()
    ]
    r = await client.post("/v1/assessments/bulk", json=body, headers=h)
    assert r.status_code == 201, r.text


async def draft_v2(
    client: httpx.AsyncClient, tenant: Tenant, doc: dict[str, Any]
) -> httpx.Response:
    return await client.post(f"{BASE}/versions", json=doc, headers=tenant.headers)


async def test_diff_lists_the_edits_with_before_and_after(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    await setup_v1(client, tenant_a)
    assert (await draft_v2(client, tenant_a, renamed_v2())).status_code == 201
    r = await client.get(f"{BASE}/diff", params={"from": 1, "to": 2}, headers=tenant_a.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["from_status"], body["to_status"]) == ("published", "draft")
    found = {(c["section"], c["op"], c["key"], c["level"], c["field"]) for c in body["changes"]}
    # The map's rename pairs coding with programming: a change of key and name, no removal.
    assert ("competencies", "changed", "programming", None, "key") in found
    assert ("competencies", "changed", "programming", None, "name") in found
    assert not any(c[1] in ("added", "removed") for c in found)
    assert ("expectations", "changed", "design", "mid", "required") in found
    assert ("expectations", "changed", "design", "mid", "critical") in found
    assert ("activities", "changed", "pairing", None, "develops") in found
    required = next(c for c in body["changes"] if c["field"] == "required")
    assert (required["before"], required["after"]) == (2, 3)
    assert "Mid now requires Design 3 (was 2)" in body["summary"]
    assert (
        "Competency renamed: **Coding** (`coding`) → **Programming** (`programming`)"
        in (body["summary"])
    )
    assert body["competency_map"] == [
        {"kind": "rename", "from": ["coding"], "to": ["programming"], "weights": {}}
    ]
    assert body["release_notes"].startswith("Coding is now Programming")
    # Defaults: the published version against the newest.
    default = await client.get(f"{BASE}/diff", headers=tenant_a.headers)
    assert default.json()["changes"] == body["changes"]


async def test_diff_of_an_unknown_version_is_a_404_problem(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    await setup_v1(client, tenant_a)
    r = await client.get(f"{BASE}/diff", params={"from": 1, "to": 9}, headers=tenant_a.headers)
    assert r.status_code == 404
    assert r.headers["content-type"] == PROBLEM
    r = await client.get(f"{BASE}/diff", params={"from": 0}, headers=tenant_a.headers)
    assert r.status_code == 422


@pytest.mark.parametrize(
    ("cmap", "loc"),
    [
        ({"entries": [{"from": "nope", "to": "programming"}]}, ["entries", 0, "from"]),
        ({"entries": [{"from": "coding", "to": "nope"}]}, ["entries", 0, "to"]),
        (
            {"complete": True, "entries": [{"from": "coding", "to": "programming"}]},
            ["complete"],
        ),
        (
            {"entries": [{"from": ["coding", "design"], "to": ["programming", "design"]}]},
            ["entries", 0],
        ),
    ],
)
async def test_a_map_that_does_not_fit_is_refused(
    client: httpx.AsyncClient, tenant_a: Tenant, cmap: dict[str, Any], loc: list[Any]
) -> None:
    await setup_v1(client, tenant_a)
    r = await draft_v2(client, tenant_a, renamed_v2(competency_map=cmap))
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == PROBLEM
    assert ["body", "competency_map", *loc] in [e["loc"] for e in r.json()["errors"]]
    # Nothing was stored.
    versions = await client.get(f"{BASE}/versions", headers=tenant_a.headers)
    assert [v["version"] for v in versions.json()["items"]] == [1]


async def test_a_complete_map_and_a_map_on_a_first_version(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    complete = {
        "complete": True,
        "entries": [
            {"from": "coding", "to": "programming"},
            {"from": "design", "to": "design"},
            {"from": "influence", "to": "influence"},
        ],
    }
    first = small_framework(competency_map=complete)
    r = await client.post("/v1/frameworks", json=first, headers=tenant_a.headers)
    assert r.status_code == 422
    assert r.json()["errors"][0]["type"] == "no_previous_version"
    await setup_v1(client, tenant_a)
    assert (
        await draft_v2(client, tenant_a, renamed_v2(competency_map=complete))
    ).status_code == 201


async def _score(client: httpx.AsyncClient, tenant: Tenant, ref: str) -> dict[str, Any]:
    r = await client.get(
        f"/v1/subjects/{ref}/score",
        params={"framework": "eng-ladder", "as_of": AS_OF},
        headers=tenant.headers,
    )
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_ratings_of_v1_are_carried_through_the_map_into_scores_and_cohorts(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    await setup_v1(client, tenant_a)
    assert (await draft_v2(client, tenant_a, renamed_v2())).status_code == 201
    r = await client.post(f"{BASE}/versions/2/publish", headers=tenant_a.headers)
    assert r.status_code == 200, r.text
    score = await _score(client, tenant_a, "ann")
    values = {c["key"]: c["value"] for c in score["competencies"] if c["value"] is not None}
    assert values == {"programming": 3, "design": 2, "influence": 1}
    assert score["explanation"]["competency_maps"] == [
        {
            "version": 2,
            "entries": [
                {"kind": "rename", "from": ["coding"], "to": ["programming"], "weights": {}}
            ],
        }
    ]
    r = await client.post(
        "/v1/cohorts/evaluate",
        json={"framework": {"key": "eng-ladder"}, "as_of": AS_OF, "include_heatmap": False},
        headers=tenant_a.headers,
    )
    assert r.status_code == 200, r.text
    people = {p["subject_ref"]: p for p in r.json()["people"]}
    for ref in PEOPLE:
        single = await _score(client, tenant_a, ref)
        assert people[ref]["level_index"] == pytest.approx(single["level_index"])


async def test_impact_preview_says_who_moves_and_why(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    await setup_v1(client, tenant_a)
    assert (await draft_v2(client, tenant_a, renamed_v2())).status_code == 201
    h = tenant_a.headers
    before = {ref: await _score(client, tenant_a, ref) for ref in PEOPLE}
    r = await client.post(f"{BASE}/versions/2/impact", json={"as_of": AS_OF}, headers=h)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["before_version"], body["after_version"]) == (1, 2)
    summary = body["summary"]
    assert summary["subjects"] == len(PEOPLE)
    # Design below 3 no longer meets mid (3, critical): ann, ben and dee fall back to junior.
    movers = {m["subject_ref"]: m for m in body["movers"]}
    assert set(movers) == {"ann", "ben", "dee"}
    for ref, mover in movers.items():
        assert mover["direction"] == "down"
        assert mover["level_before"]["key"] == before[ref]["attained_level"]["key"] == "mid"
        assert mover["level_after"]["key"] == "junior"
    assert summary["moved_down"] == 3 and summary["moved_up"] == 0
    assert summary["unchanged"] == 1
    assert summary["level_counts_before"]["mid"] - summary["level_counts_after"]["mid"] == 3
    assert summary["ratings_no_longer_count"] == 0  # coding is carried as programming
    assert summary["top_competencies"][0]["competency"] == "design"
    mid = next(c for c in summary["readiness_changes"] if c["level"] == "mid")
    assert mid["lowered"] >= 3 and mid["raised"] == 0
    # Paged: one mover per page, in ref order, until the cursor runs out.
    seen, cursor = [], None
    while True:
        params: dict[str, Any] = {"limit": 1} | ({"cursor": cursor} if cursor else {})
        r = await client.post(
            f"{BASE}/versions/2/impact", json={"as_of": AS_OF}, params=params, headers=h
        )
        page = r.json()
        assert len(page["movers"]) == 1
        seen += [m["subject_ref"] for m in page["movers"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ["ann", "ben", "dee"]
    # CSV: every mover.
    r = await client.post(
        f"{BASE}/versions/2/impact", json={"as_of": AS_OF}, params={"format": "csv"}, headers=h
    )
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [(row["subject_ref"], row["level_before"], row["level_after"]) for row in rows] == [
        ("ann", "mid", "junior"),
        ("ben", "mid", "junior"),
        ("dee", "mid", "junior"),
    ]
    # Nothing was stored: the published version still scores as before.
    assert (await _score(client, tenant_a, "ann"))["level_index"] == before["ann"]["level_index"]


async def test_without_a_map_retired_ratings_no_longer_count(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    await setup_v1(client, tenant_a)
    doc = renamed_v2()
    del doc["competency_map"]
    assert (await draft_v2(client, tenant_a, doc)).status_code == 201
    r = await client.post(
        f"{BASE}/versions/2/impact",
        json={"as_of": AS_OF, "filter": {"track": "ic"}},
        headers=tenant_a.headers,
    )
    assert r.status_code == 200, r.text
    summary = r.json()["summary"]
    assert summary["ratings_no_longer_count"] == len(PEOPLE)
    assert summary["ratings_no_longer_count_refs"] == sorted(PEOPLE)
    causes = {c["competency"]: c for c in summary["top_competencies"]}
    assert causes["coding"]["in_after"] is False


async def test_impact_needs_analytics_scope_and_a_known_version(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    await setup_v1(client, tenant_a)
    r = await client.post(f"{BASE}/versions/7/impact", json={}, headers=tenant_a.headers)
    assert r.status_code == 404
    assert r.headers["content-type"] == PROBLEM
    r = await client.post(f"{BASE}/versions/1/impact", json={"bogus": 1}, headers=tenant_a.headers)
    assert r.status_code == 422


@pytest.mark.usefixtures("allow_private")
async def test_publishing_sends_the_release_notes_and_diff_summary(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    h = tenant_a.headers
    hook = await subscribed(client, tenant_a, "framework.published")
    await setup_v1(client, tenant_a)
    assert (await draft_v2(client, tenant_a, renamed_v2())).status_code == 201
    assert (await client.post(f"{BASE}/versions/2/publish", headers=h)).status_code == 200
    r = await client.get(f"/v1/webhooks/{hook}/deliveries", headers=h)
    payloads = [d["payload"] for d in r.json()["items"] if d["event"] == "framework.published"]
    data = payloads[0]["data"]
    assert data["framework"] == {"key": "eng-ladder", "version": 2}
    assert data["previous_version"] == 1
    assert data["release_notes"].startswith("Coding is now Programming")
    assert "Mid now requires Design 3 (was 2)" in data["summary"]
    assert data["competency_map"][0]["kind"] == "rename"


async def test_a_new_draft_copied_from_the_newest_starts_without_its_map(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    await setup_v1(client, tenant_a)
    assert (await draft_v2(client, tenant_a, renamed_v2())).status_code == 201
    assert (
        await client.post(f"{BASE}/versions/2/publish", headers=tenant_a.headers)
    ).status_code == 200
    r = await client.post(f"{BASE}/versions", headers=tenant_a.headers)
    assert r.status_code == 201, r.text
    document = r.json()["document"]
    assert document["competency_map"] is None and document["release_notes"] is None
    assert document["competencies"][0]["key"] == "programming"


def merged_v2() -> dict[str, Any]:
    """v1 with coding and design merged into engineering (coding weighs 3, design 1)."""
    doc = small_framework()
    coding, _design, influence = doc["competencies"]
    coding.update(key="engineering", name="Engineering")
    doc["competencies"] = [coding, influence]
    doc["activities"][0]["develops"] = {"engineering": 1}
    doc["activities"][1]["develops"] = {"engineering": 1, "influence": 1}
    doc["competency_map"] = {
        "complete": True,
        "entries": [
            {"from": ["coding", "design"], "to": "engineering", "weights": {"coding": 3}},
            {"from": "influence", "to": "influence"},
        ],
    }
    return doc


async def test_a_merge_carries_the_weighted_mean_into_scores_and_cohorts(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    await setup_v1(client, tenant_a)
    assert (await draft_v2(client, tenant_a, merged_v2())).status_code == 201
    assert (
        await client.post(f"{BASE}/versions/2/publish", headers=tenant_a.headers)
    ).status_code == 200
    r = await client.post(
        "/v1/cohorts/evaluate",
        json={"framework": {"key": "eng-ladder"}, "as_of": AS_OF, "include_heatmap": True},
        headers=tenant_a.headers,
    )
    assert r.status_code == 200, r.text
    cohort = r.json()
    people = {p["subject_ref"]: p for p in cohort["people"]}
    for ref, (coding, design, _) in PEOPLE.items():
        score = await _score(client, tenant_a, ref)
        values = {c["key"]: c["value"] for c in score["competencies"]}
        assert values["engineering"] == pytest.approx((3 * coding + design) / 4)
        assert people[ref]["level_index"] == pytest.approx(score["level_index"])
        assert score["explanation"]["competency_maps"][0]["entries"][0]["kind"] == "merge"


async def test_readiness_changed_counts_ratings_carried_through_a_map(
    client: httpx.AsyncClient,
    tenant_a: Tenant,
    allow_private: Any,  # noqa: F811 - the fixture imported above
) -> None:
    """The before/after of a readiness.changed event are the scores the API answers, so ratings
    given under v1 and carried through v2's map count in both."""
    h = tenant_a.headers
    await setup_v1(client, tenant_a)
    assert (await draft_v2(client, tenant_a, renamed_v2())).status_code == 201
    assert (await client.post(f"{BASE}/versions/2/publish", headers=h)).status_code == 200
    hook = await subscribed(client, tenant_a, "readiness.changed")

    async def standing() -> dict[str, Any]:
        r = await client.get(
            "/v1/subjects/ann/score", params={"framework": "eng-ladder"}, headers=h
        )
        assert r.status_code == 200, r.text
        return dict(r.json())

    before = await standing()
    assert before["attained_level"] is not None  # the carried coding rating counts in the API
    r = await client.post(
        "/v1/assessments",
        json={
            "subject_ref": "ann",
            "framework": {"key": "eng-ladder", "version": 2},
            "rater_ref": "m2",
            "rater_role": "manager",
            "assessed_at": "2026-11-01T00:00:00Z",
            "ratings": [{"competency": "design", "proficiency": 3}],
        },
        headers=h,
    )
    assert r.status_code == 201, r.text
    after = await standing()
    r = await client.get(f"/v1/webhooks/{hook}/deliveries", headers=h)
    changes = [d["payload"]["data"] for d in r.json()["items"] if d["event"] == "readiness.changed"]
    assert len(changes) == 1
    change = changes[0]
    assert change["subject_ref"] == "ann"
    for name, score in (("before", before), ("after", after)):
        assert change[name]["attained_level"] == score["attained_level"]["key"], name
        assert change[name]["level_index"] == pytest.approx(score["level_index"], abs=1e-4), name
