"""POST /v1/calibration/rater-effects on real data, on Postgres and SQLite: effects, groups,
insufficient data, fair averages, scope, tenancy and bad input."""

import csv
import io
from typing import Any

import httpx
import pytest

from tests.api.test_scores import AS_OF, PM_RATINGS, ratings
from tests.api.test_subjects_assessments import subject
from tests.conftest import Tenant

pytestmark = pytest.mark.anyio

FRAMEWORK = {"key": "product-management"}
# Each person is rated by two of three managers; m1 rates everyone one point above the others.
PAIRS = [("m1", "m2"), ("m2", "m3"), ("m1", "m3")] * 2
PEOPLE = [f"pm-{i}" for i in range(len(PAIRS))]


def _assessment(ref: str, rater: str, role: str, values: dict[str, int]) -> dict[str, Any]:
    return {
        "subject_ref": ref,
        "framework": FRAMEWORK,
        "rater_ref": rater,
        "rater_role": role,
        "assessed_at": "2026-09-01T00:00:00Z",
        "ratings": ratings(values),
    }


def _base(i: int) -> dict[str, int]:
    # Person i's true levels: the PM profile, some competencies a point up (never above 4).
    return {k: min(4, v + (j + i) % 2) for j, (k, v) in enumerate(PM_RATINGS.items())}


async def seed(client: httpx.AsyncClient, tenant: Tenant) -> None:
    h = tenant.headers
    refs = [*PEOPLE, "solo-person"]
    people = [subject(ref, attributes={"team": "growth"}) for ref in refs]
    people.append(subject("other-team", attributes={"team": "platform"}))
    assert (await client.post("/v1/subjects/bulk", json=people, headers=h)).status_code == 201
    body = []
    for i, (ref, pair) in enumerate(zip(PEOPLE, PAIRS, strict=True)):
        for rater in pair:
            lift = 1 if rater == "m1" else 0
            body.append(
                _assessment(ref, rater, "manager", {k: v + lift for k, v in _base(i).items()})
            )
        body.append(_assessment(ref, ref, "self", {k: min(5, v + 2) for k, v in _base(i).items()}))
    # A newcomer beside m2 on one person's three competencies: too little evidence.
    first3 = dict(list(_base(0).items())[:3])
    body.append(_assessment(PEOPLE[0], "newbie", "peer", first3))
    # Someone nobody else rates: never compared with anyone.
    body.append(_assessment("solo-person", "lonely", "manager", _base(0)))
    assert (await client.post("/v1/assessments/bulk", json=body, headers=h)).status_code == 201


async def effects(client: httpx.AsyncClient, tenant: Tenant, **extra: Any) -> httpx.Response:
    body = {"framework": FRAMEWORK, "as_of": AS_OF, "filter": {"attributes": {"team": "growth"}}}
    return await client.post(
        "/v1/calibration/rater-effects", json={**body, **extra}, headers=tenant.headers
    )


async def test_lenient_manager_is_measured_and_flagged(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    await seed(client, tenant_a)
    r = await effects(client, tenant_a)
    assert r.status_code == 200, r.text
    answer = r.json()
    raters = {(x["role"], x["rater_ref"]): x for x in answer["raters"]}
    assert set(raters) == {
        ("manager", "m1"),
        ("manager", "m2"),
        ("manager", "m3"),
        ("peer", "newbie"),
        ("manager", "lonely"),
    }
    m1, m2, m3 = (raters[("manager", m)] for m in ("m1", "m2", "m3"))
    # m1 is +1 against m2 and m3; centred over the three: +2/3, −1/3, −1/3.
    assert m1["effect"] == pytest.approx(2 / 3, abs=1e-9)
    assert m2["effect"] == pytest.approx(-1 / 3, abs=1e-9)
    assert m3["effect"] == pytest.approx(-1 / 3, abs=1e-9)
    assert [f["kind"] for f in m1["flags"]] == ["lenient"]
    assert m1["flags"][0]["evidence"]["effect"] == pytest.approx(2 / 3, abs=1e-9)
    assert m1["group"] == m2["group"] == m3["group"] == 0
    assert m1["subjects"] == 4 and m1["ratings"] == 4 * 14
    newbie = raters[("peer", "newbie")]
    assert newbie["status"] == "insufficient_data"
    assert newbie["effect"] is None and newbie["group"] == 0
    lonely = raters[("manager", "lonely")]
    assert lonely["status"] == "not_comparable"
    assert lonely["group"] is None and lonely["effect"] is None
    assert answer["groups"] == [{"group": 0, "raters": 4}]
    # Distributions: one count per scale value, m1's shifted one point up.
    assert answer["scale"] == [0, 1, 2, 3, 4, 5]
    assert sum(m1["distribution"]) == 56
    assert sum(answer["cohort_distribution"]) == sum(x["ratings"] for x in answer["raters"])
    # Agreement rises to 1 once m1's leniency is removed (where the newbie did not rate).
    agreement = {a["competency"]: a for a in answer["agreement"]}
    assert agreement["prioritization"]["alpha_adjusted"] == pytest.approx(1.0)
    assert agreement["prioritization"]["alpha"] < 1.0
    # Self ratings two points above the managers' fair consensus, for everyone.
    selves = {p["subject_ref"]: p for p in answer["self_ratings"]["people"]}
    assert set(selves) == set(PEOPLE)
    assert all(p["inflated"] for p in selves.values())
    assert answer["self_ratings"]["effect"] == pytest.approx(2.0 - 1 / 3, abs=0.2)


async def test_fair_averages_remove_the_effect(client: httpx.AsyncClient, tenant_a: Tenant) -> None:
    await seed(client, tenant_a)
    answer = (await effects(client, tenant_a)).json()
    fair = answer["fair_averages"]
    people = {p["subject_ref"]: p for p in fair["people"]}
    j = fair["competencies"].index("prioritization")  # the newbie did not rate it
    # pm-0 by m1 (base + 1) and m2 (base), weight 3 each, and themselves (weight 1); fair, m1's
    # +2/3 and m2's −1/3 come off and the self rating stays as it is.
    base = _base(0)["prioritization"]
    own = min(5, base + 2)
    assert people["pm-0"]["values"][j] == pytest.approx((3 * (base + 1) + 3 * base + own) / 7)
    fair_managers = 3 * (base + 1 - 2 / 3) + 3 * (base + 1 / 3)
    assert people["pm-0"]["fair_values"][j] == pytest.approx((fair_managers + own) / 7)
    # pm-1 by m2 and m3, both −1/3: fair values rise.
    assert people["pm-1"]["fair_values"][j] > people["pm-1"]["values"][j]
    assert people["pm-0"]["fair_level_index"] <= people["pm-0"]["level_index"]
    without = (await effects(client, tenant_a, include_fair_averages=False)).json()
    assert without["fair_averages"] is None


async def test_list_of_refs_and_unknown_refs(client: httpx.AsyncClient, tenant_a: Tenant) -> None:
    await seed(client, tenant_a)
    r = await effects(client, tenant_a, filter=None, subject_refs=["pm-0", "pm-1", "ghost"])
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["unknown_refs"] == ["ghost"]
    assert {p["subject_ref"] for p in answer["fair_averages"]["people"]} == {"pm-0", "pm-1"}
    # pm-0 (m1, m2) and pm-1 (m2, m3) link the three managers through m2.
    raters = {x["rater_ref"]: x for x in answer["raters"]}
    assert raters["m1"]["group"] == raters["m3"]["group"] == 0


async def test_needs_analytics_scope_and_stays_in_its_tenant(
    client: httpx.AsyncClient, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    await seed(client, tenant_a)
    token = await tenant_a.key("subjects:read")
    r = await client.post(
        "/v1/calibration/rater-effects",
        json={"framework": FRAMEWORK},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 403
    assert r.headers["content-type"].startswith("application/problem+json")
    other = (await effects(client, tenant_b, filter=None)).json()
    assert other["raters"] == [] and other["groups"] == []
    assert other["fair_averages"]["people"] == []


@pytest.mark.parametrize(
    ("extra", "status"),
    [
        ({"framework": {"key": "no-such-ladder"}}, 404),
        ({"filter": {"track": "wizards"}}, 422),
        ({"window_days": 0}, 422),
        ({"thresholds": {"z": -1}}, 422),
        ({"thresholds": {"min_ratings": "10"}}, 422),
        ({"surprise": True}, 422),
    ],
)
async def test_bad_input_is_a_problem(
    client: httpx.AsyncClient, tenant_a: Tenant, extra: dict[str, Any], status: int
) -> None:
    r = await effects(client, tenant_a, **extra)
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")


async def test_tables_as_csv(client: httpx.AsyncClient, tenant_a: Tenant) -> None:
    await seed(client, tenant_a)
    body = {"framework": FRAMEWORK, "as_of": AS_OF, "filter": {"attributes": {"team": "growth"}}}
    h = tenant_a.headers
    path = "/v1/calibration/rater-effects"
    r = await client.post(path, params={"format": "csv"}, json=body, headers=h)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    m1 = next(row for row in rows if row["rater_ref"] == "m1")
    assert float(m1["effect"]) == pytest.approx(2 / 3)
    assert m1["flags"] == "lenient" and m1["group"] == "0"
    assert sum(int(m1[f"count_{v}"]) for v in range(6)) == 56
    lonely = next(row for row in rows if row["rater_ref"] == "lonely")
    assert lonely["effect"] == "" and lonely["group"] == ""
    r = await client.post(
        path, params={"format": "csv", "table": "fair_averages"}, json=body, headers=h
    )
    people = {row["subject_ref"]: row for row in csv.DictReader(io.StringIO(r.text))}
    assert set(people) == {*PEOPLE, "solo-person"}
    assert float(people["pm-1"]["fair_prioritization"]) > float(people["pm-1"]["prioritization"])


@pytest.mark.parametrize("as_of", ["0001-01-02T00:00:00Z", "9999-12-31T23:59:59Z"])
async def test_extreme_dates_are_no_server_error(
    client: httpx.AsyncClient, tenant_a: Tenant, as_of: str
) -> None:
    # A window reaching before the year 1 begins there (an overflow and a 500 once, then 422).
    r = await effects(client, tenant_a, as_of=as_of, window_days=36_500)
    assert r.status_code == 200, r.text
    assert r.json()["as_of"] == as_of


async def test_the_shared_cohort_loader_takes_a_window_before_year_one(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    # Cohort evaluation reads its cohort through the same loader (it answered 500, then 422).
    r = await client.post(
        "/v1/cohorts/evaluate",
        json={"framework": FRAMEWORK, "as_of": "0001-01-02T00:00:00Z"},
        headers=tenant_a.headers,
    )
    assert r.status_code == 200, r.text
    assert r.json()["as_of"] == "0001-01-02T00:00:00Z"
