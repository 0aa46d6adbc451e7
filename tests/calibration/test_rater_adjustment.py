"""The framework setting rater_adjustment (issue 17): scores use the latest recorded rater-effect
estimate of their framework version, on Postgres and SQLite.

A hand-computable design on the small framework (scale 0-3): managers m1, m2 and m3 rate three
people alike on every competency, m1 one point above the other two; m1 alone also rates Dee, a
newcomer peer rates Dee's coding beside m1, and Dee rates herself. The fit is exact: m1's effect
is +2/3 and m2's and m3's −1/3 (centred on the group), so Dee's ratings by m1 lose 2/3 of a point.
"""

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from app.calibration import estimates_repository as estimates
from app.db import remember_tenant
from app.frameworks.compile import compile_framework
from app.frameworks.document import FrameworkDocument
from app.scoring import Rating, evaluate
from app.scoring.calibration import (
    RecordedEffect,
    adjust_cohort_ratings,
    adjust_subject_ratings,
)
from app.scoring.cohort import CohortRatings
from tests.api.test_webhooks import (
    allow_private,  # noqa: F401 - a fixture
    subscribed,
)
from tests.conftest import Tenant
from tests.factories import small_framework

pytestmark = pytest.mark.anyio

AS_OF = "2026-11-01T00:00:00Z"
KEY = "eng-ladder"
BASE = {
    "p1": {"coding": 1, "design": 2, "influence": 1},
    "p2": {"coding": 2, "design": 1, "influence": 2},
    "p3": {"coding": 2, "design": 2, "influence": 1},
}
DEE_BY_M1 = {"coding": 3, "design": 2, "influence": 0}  # influence 0 − 2/3 is clamped to 0
M1 = 2 / 3
THRESHOLDS = {"min_ratings": 3, "min_subjects": 3}


def _framework(mode: str | None) -> dict[str, Any]:
    doc = small_framework()
    if mode is not None:
        doc["settings"] = {"rater_adjustment": mode}
    return doc


def _assessment(ref: str, rater: str, role: str, values: dict[str, int]) -> dict[str, Any]:
    return {
        "subject_ref": ref,
        "framework": {"key": KEY},
        "rater_ref": rater,
        "rater_role": role,
        "assessed_at": "2026-09-01T00:00:00Z",
        "ratings": [{"competency": k, "proficiency": v} for k, v in values.items()],
    }


async def seed(client: httpx.AsyncClient, tenant: Tenant, mode: str | None) -> None:
    """The framework (published, with the mode), the people and their ratings."""
    h = tenant.headers
    r = await client.post("/v1/frameworks", json=_framework(mode), headers=h)
    assert r.status_code == 201, r.text
    r = await client.post(f"/v1/frameworks/{KEY}/versions/1/publish", headers=h)
    assert r.status_code == 200, r.text
    people = [{"external_ref": ref, "track": "ic"} for ref in [*BASE, "dee", "m1"]]
    assert (await client.post("/v1/subjects/bulk", json=people, headers=h)).status_code == 201
    body = []
    for ref, values in BASE.items():
        for rater in ("m1", "m2", "m3"):
            lift = 1 if rater == "m1" else 0
            body.append(
                _assessment(ref, rater, "manager", {k: v + lift for k, v in values.items()})
            )
    body.append(_assessment("dee", "m1", "manager", DEE_BY_M1))
    body.append(_assessment("dee", "newbie", "peer", {"coding": 2}))
    body.append(_assessment("dee", "dee", "self", {"coding": 3, "design": 3, "influence": 3}))
    r = await client.post("/v1/assessments/bulk", json=body, headers=h)
    assert r.status_code == 201, r.text


async def record(client: httpx.AsyncClient, tenant: Tenant, **extra: Any) -> httpx.Response:
    body = {
        "framework": {"key": KEY},
        "as_of": AS_OF,
        "thresholds": THRESHOLDS,
        "include_fair_averages": False,
        "record": True,
        **extra,
    }
    return await client.post("/v1/calibration/rater-effects", json=body, headers=tenant.headers)


async def score(
    client: httpx.AsyncClient, tenant: Tenant, ref: str = "dee", etag: str | None = None
) -> httpx.Response:
    headers = {**tenant.headers, **({"If-None-Match": etag} if etag else {})}
    return await client.get(
        f"/v1/subjects/{ref}/score", params={"framework": KEY, "as_of": AS_OF}, headers=headers
    )


def _values(answer: dict[str, Any]) -> dict[str, float | None]:
    return {c["key"]: c["value"] for c in answer["competencies"]}


def _dee_coding(m1_value: float) -> float:
    """Dee's coding: manager m1 (weight 3) and peer newbie (weight 2, rated 2); self excluded
    from the others' mean but weighted 1 in the value: (3·m1 + 2·2 + 1·3) / 6."""
    return (3 * m1_value + 2 * 2 + 1 * 3) / 6


async def test_apply_subtracts_each_raters_recorded_effect(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    await seed(client, tenant_a, "apply")
    before = await score(client, tenant_a)
    assert before.status_code == 200, before.text
    note = before.json()["explanation"]["rater_adjustment"]
    assert note["mode"] == "apply" and note["estimate_id"] is None and note["ratings"] == []
    assert "No rater-effect estimate" in note["note"]
    assert _values(before.json())["coding"] == pytest.approx(_dee_coding(3))
    # The memo holds the score: the second read is a hit with the same ETag.
    again = await score(client, tenant_a)
    assert again.headers["ETag"] == before.headers["ETag"]
    assert 'memo;desc="hit"' in again.headers["Server-Timing"]

    r = await record(client, tenant_a)
    assert r.status_code == 200, r.text
    raters = {x["rater_ref"]: x for x in r.json()["raters"]}
    assert raters["m1"]["effect"] == pytest.approx(M1)
    assert raters["m2"]["effect"] == pytest.approx(-1 / 3)
    assert raters["newbie"]["status"] == "insufficient_data"
    estimate = r.json()["estimate"]
    assert estimate["raters"] == len(raters)

    after = await score(client, tenant_a, etag=before.headers["ETag"])
    assert after.status_code == 200  # the old ETag no longer holds: no 304, no stale memo
    assert after.headers["ETag"] != before.headers["ETag"]
    assert 'memo;desc="miss"' in after.headers["Server-Timing"]
    answer = after.json()
    values = _values(answer)
    assert values["coding"] == pytest.approx(_dee_coding(3 - M1))
    assert values["design"] == pytest.approx((3 * (2 - M1) + 3) / 4)
    assert values["influence"] == pytest.approx((3 * 0 + 3) / 4)  # clamped at the scale's 0
    note = answer["explanation"]["rater_adjustment"]
    assert note["estimate_id"] == estimate["id"] and note["group"] == 0
    rows = {(x["rater_ref"], x["competency"]): x for x in note["ratings"]}
    coding = rows[("m1", "coding")]
    assert coding["rated"] == 3 and coding["effect"] == pytest.approx(M1)
    assert coding["value"] == pytest.approx(coding["rated"] - coding["effect"])
    assert coding["reason"] == "adjusted" and not coding["clamped"]
    influence = rows[("m1", "influence")]
    assert influence["value"] == 0 and influence["clamped"]
    assert rows[("dee", "coding")]["reason"] == "self"
    assert rows[("newbie", "coding")]["reason"] == "insufficient_data"
    assert rows[("newbie", "coding")]["value"] == 2
    # The contributions the engine reports carry the adjusted values.
    m1 = next(c for c in answer["explanation"]["contributions"]["coding"] if c["rater_ref"] == "m1")
    assert m1["proficiency"] == pytest.approx(3 - M1)
    # Gaps follow the adjusted values too.
    gaps = await client.get(
        "/v1/subjects/dee/gaps", params={"framework": KEY, "as_of": AS_OF}, headers=tenant_a.headers
    )
    actual = {i["competency"]: i["actual"] for i in gaps.json()["items"]}
    assert actual["coding"] == pytest.approx(_dee_coding(3 - M1))
    # The stateless evaluation of the same ratings gives the same adjusted answer.
    stateless = await client.post(
        "/v1/evaluate",
        json={
            "framework": {"key": KEY},
            "as_of": AS_OF,
            "track": "ic",
            "ratings": [
                {
                    "competency": x["competency"],
                    "proficiency": x["rated"],
                    "rater_ref": x["rater_ref"],
                    "rater_role": x["role"],
                    "assessed_at": x["assessed_at"],
                }
                for x in note["ratings"]
            ],
        },
        headers=tenant_a.headers,
    )
    assert stateless.status_code == 200, stateless.text
    assert _values(stateless.json()["score"]) == pytest.approx(values)
    assert stateless.json()["score"]["level_index"] == pytest.approx(answer["level_index"])
    # The cohort evaluation scores the same adjusted ratings: each person as their score says.
    cohort = await client.post(
        "/v1/cohorts/evaluate",
        json={"framework": {"key": KEY}, "as_of": AS_OF},
        headers=tenant_a.headers,
    )
    assert cohort.status_code == 200, cohort.text
    assert cohort.json()["rater_adjustment"]["estimate_id"] == estimate["id"]
    for person in cohort.json()["people"]:
        alone = (await score(client, tenant_a, person["subject_ref"])).json()
        assert person["level_index"] == pytest.approx(alone["level_index"])
        assert person["coverage"] == pytest.approx(alone["coverage"])
    dee = next(p for p in cohort.json()["people"] if p["subject_ref"] == "dee")
    assert dee["level_index"] == pytest.approx(answer["level_index"])
    # A person every manager rated keeps their plain mean: the three effects cancel.
    p1 = _values((await score(client, tenant_a, "p1")).json())
    assert p1["coding"] == pytest.approx(BASE["p1"]["coding"] + 1 / 3)


async def test_preview_shows_the_fair_score_beside_the_plain_one(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    await seed(client, tenant_a, "preview")
    h = tenant_a.headers
    plain = (await score(client, tenant_a)).json()
    assert plain["fair"] is None
    assert (await record(client, tenant_a)).status_code == 200
    answer = (await score(client, tenant_a)).json()
    assert _values(answer) == _values(plain)
    assert answer["level_index"] == plain["level_index"]
    assert answer["fair"]["values"]["coding"] == pytest.approx(_dee_coding(3 - M1))
    assert answer["fair"]["values"]["influence"] == pytest.approx(0.75)
    assert answer["fair"]["level_index"] <= plain["level_index"]
    assert answer["explanation"]["rater_adjustment"]["mode"] == "preview"
    params = {"framework": KEY, "as_of": AS_OF}
    gaps = (await client.get("/v1/subjects/dee/gaps", params=params, headers=h)).json()
    assert gaps["fair"]["readiness"] < gaps["readiness"]  # m1's leniency lifted Dee
    plan = (await client.get("/v1/subjects/dee/recommendations", params=params, headers=h)).json()
    assert plan["fair"] == gaps["fair"] and plan["readiness_now"] == gaps["readiness"]
    history = await client.get("/v1/subjects/dee/history", params={"framework": KEY}, headers=h)
    last = history.json()["points"][-1]
    assert last["level_index"] == pytest.approx(answer["level_index"])
    assert last["fair_level_index"] == pytest.approx(answer["fair"]["level_index"])
    what_if = await client.post(
        "/v1/subjects/dee/what-if",
        json={"framework": {"key": KEY}, "as_of": AS_OF, "changes": {"design": 3}},
        headers=tenant_a.headers,
    )
    assert what_if.status_code == 200, what_if.text
    fair = what_if.json()["score"]["fair"]
    assert fair["values"]["design"] == 3 and fair["values"]["coding"] == pytest.approx(
        _dee_coding(3 - M1)
    )


async def test_none_is_unaffected_by_a_recorded_estimate(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    await seed(client, tenant_a, None)
    before = (await score(client, tenant_a)).json()
    assert before["explanation"]["settings"]["rater_adjustment"] == "none"
    assert (await record(client, tenant_a)).status_code == 200
    after = (await score(client, tenant_a)).json()
    assert after == before
    assert after["fair"] is None and after["explanation"]["rater_adjustment"] is None


async def test_estimates_stay_in_their_tenant_and_need_admin(
    client: httpx.AsyncClient, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    await seed(client, tenant_a, "apply")
    await seed(client, tenant_b, "apply")
    analyst = await tenant_a.key("analytics:read")
    r = await client.post(
        "/v1/calibration/rater-effects",
        json={"framework": {"key": KEY}, "as_of": AS_OF, "record": True},
        headers={"Authorization": f"Bearer {analyst}"},
    )
    assert r.status_code == 403
    assert r.headers["content-type"].startswith("application/problem+json")
    note = (await score(client, tenant_a)).json()["explanation"]["rater_adjustment"]
    assert note["estimate_id"] is None  # the refused request stored nothing
    assert (await record(client, tenant_a)).status_code == 200
    assert (await score(client, tenant_a)).json()["explanation"]["rater_adjustment"]["estimate_id"]
    other = (await score(client, tenant_b)).json()
    assert other["explanation"]["rater_adjustment"]["estimate_id"] is None
    assert _values(other)["coding"] == pytest.approx(_dee_coding(3))
    events = (await client.get("/v1/audit-events", headers=tenant_a.headers)).json()["items"]
    assert any(e["action"] == "calibration.estimate_recorded" for e in events)


async def test_erasing_a_rater_removes_them_from_the_estimate(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    await seed(client, tenant_a, "apply")
    assert (await record(client, tenant_a)).status_code == 200
    adjusted = await score(client, tenant_a)
    assert _values(adjusted.json())["coding"] == pytest.approx(_dee_coding(3 - M1))
    r = await client.delete("/v1/subjects/m1", headers=tenant_a.headers)
    assert r.status_code == 204, r.text
    after = await score(client, tenant_a)
    assert after.headers["ETag"] != adjusted.headers["ETag"]
    rows = after.json()["explanation"]["rater_adjustment"]["ratings"]
    assert all(x["reason"] != "adjusted" for x in rows if x["rater_ref"] == "m1")
    assert _values(after.json())["coding"] == pytest.approx(_dee_coding(3))
    async with tenant_a.sessionmaker() as session:
        remember_tenant(session, tenant_a.id)
        conn = await session.connection()
        left = await conn.execute(
            text("SELECT count(*) FROM rater_effect_estimate_rater WHERE rater_ref = 'm1'")
        )
        assert left.scalar_one() == 0


async def test_the_setting_round_trips_through_file_and_diff(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    h = tenant_a.headers
    assert (
        await client.post("/v1/frameworks", json=_framework(None), headers=h)
    ).status_code == 201
    assert (await client.post(f"/v1/frameworks/{KEY}/versions/1/publish", headers=h)).is_success
    r = await client.post(
        "/v1/frameworks/import", json=_framework("apply"), headers=h, params={"publish": "false"}
    )
    assert r.is_success, r.text
    version = r.json()["version"]
    exported = await client.get(f"/v1/frameworks/{KEY}/versions/{version}/export", headers=h)
    assert "rater_adjustment" in exported.text and "apply" in exported.text
    diff = await client.get(
        f"/v1/frameworks/{KEY}/diff", params={"from": 1, "to": version}, headers=h
    )
    changes = [c for c in diff.json()["changes"] if c.get("field") == "rater_adjustment"]
    assert [(c["section"], c["before"], c["after"]) for c in changes] == [
        ("settings", "none", "apply")
    ]


def test_an_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="rater_adjustment"):
        FrameworkDocument.model_validate(_framework("sometimes"))


FW = compile_framework(FrameworkDocument.model_validate(small_framework()), 1)
ROLES = ["self", "manager", "peer", "direct_report", "external", "calibrated"]
STATUSES = ["ok", "insufficient_data", "not_comparable"]


@st.composite
def _ratings(draw: st.DrawFn) -> list[Rating]:
    n = draw(st.integers(0, 12))
    return [
        Rating(
            competency=draw(st.sampled_from(["coding", "design", "influence"])),
            proficiency=float(draw(st.integers(0, 3))),
            rater_ref=draw(st.sampled_from(["a", "b", "c", "d"])),
            role=draw(st.sampled_from(ROLES)),
            assessed_at=datetime(2026, draw(st.integers(1, 10)), 1, tzinfo=UTC),
            sequence=i,
        )
        for i in range(n)
    ]


@settings(max_examples=200, deadline=None)
@given(
    ratings=_ratings(),
    statuses=st.dictionaries(
        st.tuples(st.sampled_from(ROLES), st.sampled_from(["a", "b", "c", "d"])),
        st.tuples(st.sampled_from(STATUSES), st.integers(0, 2)),
    ),
)
def test_all_effects_zero_apply_equals_none(
    ratings: list[Rating], statuses: dict[tuple[str, str], tuple[str, int]]
) -> None:
    effects = {
        k: RecordedEffect(status, 0.0 if status == "ok" else None, group)
        for k, (status, group) in statuses.items()
    }
    adjusted = adjust_subject_ratings(ratings, effects, FW.scale_min, FW.scale_max)
    as_of = datetime(2026, 11, 1, tzinfo=UTC)
    assert evaluate(FW, adjusted.ratings, as_of=as_of, track="ic") == evaluate(
        FW, ratings, as_of=as_of, track="ic"
    )
    assert all(n.value == n.rating.proficiency for n in adjusted.notes)


@settings(max_examples=200, deadline=None)
@given(
    people=st.lists(_ratings(), min_size=1, max_size=4),
    recorded=st.dictionaries(
        st.tuples(st.sampled_from(ROLES), st.sampled_from(["a", "b", "c", "d"])),
        st.tuples(st.sampled_from(STATUSES), st.integers(0, 2), st.integers(-4, 4)),
    ),
)
def test_the_cohort_adjusts_each_rating_as_the_person_path_does(
    people: list[list[Rating]], recorded: dict[tuple[str, str], tuple[str, int, int]]
) -> None:
    effects = {
        k: RecordedEffect(status, effect / 2 if status == "ok" else None, group)
        for k, (status, group, effect) in recorded.items()
    }
    pairs = sorted({(r.role, r.rater_ref) for person in people for r in person})
    rows = [(i, r) for i, person in enumerate(people) for r in person]
    ids = [pairs.index((r.role, r.rater_ref)) for _, r in rows]
    found = [effects.get(pair) for pair in pairs]
    effect = np.array(
        [f.effect if f is not None and f.effect is not None else np.nan for f in found]
    )
    group = np.array([f.group if f is not None and f.effect is not None else -1 for f in found])
    cohort = CohortRatings(
        subject_index=np.array([i for i, _ in rows], dtype=np.int32),
        competency_index=np.array(
            [[c.key for c in FW.competencies].index(r.competency) for _, r in rows],
            dtype=np.int32,
        ),
        proficiency=np.array([r.proficiency for _, r in rows]),
        role=np.array([ROLES.index(r.role) for _, r in rows], dtype=np.int8),
        rater=np.array(ids, dtype=np.int64),
        assessed_at=np.zeros(len(rows), dtype=np.int64),
        sequence=np.array([r.sequence for _, r in rows], dtype=np.int64),
        n_subjects=len(people),
    )
    index = np.array(ids, dtype=np.int64)
    together = adjust_cohort_ratings(
        cohort, effect[index] if rows else effect, group[index] if rows else group, 0, 3
    )
    alone = [
        r.proficiency
        for person in people
        for r in adjust_subject_ratings(person, effects, 0, 3).ratings
    ]
    assert together.proficiency.tolist() == pytest.approx(alone)


async def test_an_estimate_of_a_built_in_framework_is_the_tenants_own(
    client: httpx.AsyncClient, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    r = await record(client, tenant_a, framework={"key": "product-management"})
    assert r.status_code == 200, r.text
    assert r.json()["estimate"]["raters"] == 0  # nobody rated yet: an empty estimate
    async with tenant_b.sessionmaker() as session:
        remember_tenant(session, tenant_b.id)
        conn = await session.connection()
        if conn.dialect.name == "postgresql":  # row-level security: b sees none of a's
            seen = await conn.execute(text("SELECT count(*) FROM rater_effect_estimate"))
            assert seen.scalar_one() == 0


async def test_effects_are_read_in_chunks_of_refs(
    client: httpx.AsyncClient, tenant_a: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    await seed(client, tenant_a, "apply")
    estimate = (await record(client, tenant_a)).json()["estimate"]
    wanted = [("manager", "m1"), ("manager", "m2"), ("peer", "newbie"), ("peer", "m1")]
    async with tenant_a.sessionmaker() as session:
        remember_tenant(session, tenant_a.id)
        whole = await estimates.effects_of(session, tenant_a.id, uuid.UUID(estimate["id"]), wanted)
        monkeypatch.setattr(estimates, "CHUNK", 1)
        chunked = await estimates.effects_of(
            session, tenant_a.id, uuid.UUID(estimate["id"]), wanted
        )
    assert chunked == whole
    assert set(whole) == {("manager", "m1"), ("manager", "m2"), ("peer", "newbie")}
    assert whole["manager", "m1"].effect == pytest.approx(M1)


async def test_sessions_and_readiness_events_score_as_the_api_under_apply(
    client: httpx.AsyncClient,
    tenant_a: Tenant,
    allow_private: Any,  # noqa: F811 - the fixture imported above
) -> None:
    """A calibration session's snapshot and a readiness.changed event describe each person as
    their score does: with `apply`, adjusted by the recorded effects."""
    await seed(client, tenant_a, "apply")
    assert (await record(client, tenant_a)).status_code == 200
    h = tenant_a.headers
    adjusted = (await score(client, tenant_a)).json()
    assert adjusted["explanation"]["rater_adjustment"]["estimate_id"] is not None
    r = await client.post(
        "/v1/calibration/sessions",
        json={"name": "Q4", "framework": {"key": KEY, "version": 1}, "as_of": AS_OF},
        headers=h,
    )
    assert r.status_code == 201, r.text
    dee = next(m for m in r.json()["members"] if m["subject_ref"] == "dee")
    assert dee["level_index"] == pytest.approx(adjusted["level_index"], abs=1e-6)

    hook = await subscribed(client, tenant_a, "readiness.changed")
    body = _assessment("dee", "m2", "manager", {"design": 3})
    body["assessed_at"] = "2026-11-20T00:00:00Z"
    assert (await client.post("/v1/assessments", json=body, headers=h)).status_code == 201
    now = await client.get("/v1/subjects/dee/score", params={"framework": KEY}, headers=h)
    r = await client.get(f"/v1/webhooks/{hook}/deliveries", headers=h)
    changes = [d["payload"]["data"] for d in r.json()["items"] if d["event"] == "readiness.changed"]
    assert len(changes) == 1
    assert changes[0]["after"]["level_index"] == pytest.approx(now.json()["level_index"], abs=1e-4)


async def test_recording_an_estimate_under_apply_announces_whom_it_moved(
    client: httpx.AsyncClient,
    tenant_a: Tenant,
    allow_private: Any,  # noqa: F811 - the fixture imported above
) -> None:
    """Under `apply` a recorded estimate changes scores: readiness.changed subscribers hear of
    each person whose readiness moved, with the scores the API answers before and after."""
    await seed(client, tenant_a, "apply")
    h = tenant_a.headers
    hook = await subscribed(client, tenant_a, "readiness.changed")

    async def standings() -> dict[str, dict[str, Any]]:
        out = {}
        for ref in [*BASE, "dee"]:
            r = await client.get(f"/v1/subjects/{ref}/score", params={"framework": KEY}, headers=h)
            assert r.status_code == 200, r.text
            out[ref] = r.json()
        return out

    before = await standings()
    assert (await record(client, tenant_a)).status_code == 200
    after = await standings()
    moved = {
        ref
        for ref in before
        if before[ref]["level_index"] != pytest.approx(after[ref]["level_index"], abs=1e-4)
    }
    assert moved  # m1's leniency is taken out of the people m1 rated
    r = await client.get(f"/v1/webhooks/{hook}/deliveries", headers=h)
    changes = {
        d["payload"]["data"]["subject_ref"]: d["payload"]["data"]
        for d in r.json()["items"]
        if d["event"] == "readiness.changed"
    }
    assert set(changes) == moved
    for ref, change in changes.items():
        for name, score in (("before", before[ref]), ("after", after[ref])):
            assert change[name]["level_index"] == pytest.approx(score["level_index"], abs=1e-4)


async def test_recording_an_estimate_without_apply_announces_nothing(
    client: httpx.AsyncClient,
    tenant_a: Tenant,
    allow_private: Any,  # noqa: F811 - the fixture imported above
) -> None:
    await seed(client, tenant_a, "preview")
    hook = await subscribed(client, tenant_a, "readiness.changed")
    assert (await record(client, tenant_a)).status_code == 200
    r = await client.get(f"/v1/webhooks/{hook}/deliveries", headers=tenant_a.headers)
    assert r.json()["items"] == []
