"""Issue 14 over HTTP: one validation for ratings at every door, framework levels that could be
attained on nothing refused, request order never breaking a tie, role weights merged."""

import random
from typing import Any

import httpx
import pytest

from app.frameworks.document import parse_document
from app.interop import case
from tests.api.test_subjects_assessments import subject
from tests.conftest import Tenant
from tests.factories import small_framework
from tests.interop.test_case import export

pytestmark = pytest.mark.anyio

PROBLEM = "application/problem+json"
AS_OF = "2026-11-01T00:00:00Z"


def _errors(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    errors: list[dict[str, Any]] = response.json()["errors"]
    return errors


async def _publish(client: httpx.AsyncClient, tenant: Tenant, doc: dict[str, Any]) -> None:
    r = await client.post(
        "/v1/frameworks", json=doc, headers=tenant.headers, params={"publish": "true"}
    )
    assert r.status_code == 201, r.text


async def test_levels_that_could_be_attained_on_nothing_are_refused(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    # "mid" requires nothing above 0.
    doc = small_framework()
    for competency in doc["competencies"]:
        competency["expectations"]["mid"] = {"required": 0}
    errors = _errors(await client.post("/v1/frameworks", json=doc, headers=tenant_a.headers))
    mid = [e for e in errors if e["loc"] == ["levels", 1]]
    assert [e["type"] for e in mid] == ["level_without_expectations"]
    assert "'mid' requires no competency above 0" in mid[0]["msg"]

    # Every competency weighs 0 and no area emphasis: nothing could ever carry weight.
    doc = small_framework()
    for area in doc["areas"]:
        area["emphasis"] = {}
    for competency in doc["competencies"]:
        competency["weight"] = 0
    errors = _errors(await client.post("/v1/frameworks", json=doc, headers=tenant_a.headers))
    assert {tuple(e["loc"]) for e in errors} == {("levels", 0), ("levels", 1), ("levels", 2)}
    assert {e["type"] for e in errors} == {"level_without_weight"}

    doc = small_framework(settings={"gap_tolerance": 1.5, "gap_tolerance_mode": "fraction"})
    errors = _errors(await client.post("/v1/frameworks", json=doc, headers=tenant_a.headers))
    assert [e["loc"] for e in errors] == [["settings", "gap_tolerance"]]

    listed = (await client.get("/v1/frameworks", headers=tenant_a.headers)).json()["items"]
    assert "eng-ladder" not in {i["key"] for i in listed}


async def test_evaluate_refuses_off_scale_ratings_as_assessments_do(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    h = tenant_a.headers
    assert (await client.post("/v1/subjects", json=subject(), headers=h)).status_code == 201
    good = {"competency": "execution", "proficiency": 3, "rater_role": "manager"}
    for bad in (7, 3.5, 7.0):
        rating = {"competency": "execution", "proficiency": bad, "rater_role": "manager"}
        body = {
            "framework": {"key": "product-management"},
            "as_of": AS_OF,
            "ratings": [good, rating],
        }
        errors = _errors(await client.post("/v1/evaluate", json=body, headers=h))
        assert [e["loc"] for e in errors] == [["body", "ratings", 1, "proficiency"]]
        assert errors[0]["type"] == "out_of_scale"
        assert "is not on the scale [0, 1, 2, 3, 4, 5]" in errors[0]["msg"]
        if float(bad).is_integer():
            stored = {
                "subject_ref": "emp-1",
                "framework": {"key": "product-management"},
                "rater_ref": "mgr-1",
                "rater_role": "manager",
                "assessed_at": "2026-09-01T00:00:00Z",
                "ratings": [
                    {"competency": "execution", "proficiency": 3},
                    {"competency": "prioritization", "proficiency": int(bad)},
                ],
            }
            errors = _errors(await client.post("/v1/assessments", json=stored, headers=h))
            assert [e["loc"] for e in errors] == [["body", "ratings", 1, "proficiency"]]
            assert errors[0]["type"] == "out_of_scale"
    body = {"framework": {"key": "product-management"}, "as_of": AS_OF, "ratings": [good]}
    assert (await client.post("/v1/evaluate", json=body, headers=h)).status_code == 200


def _tied_ratings() -> list[dict[str, Any]]:
    """Date-only moments: one rater twice on one day, two calibrated raters on one day."""
    day = "2026-09-01T00:00:00Z"
    return [
        {"competency": "execution", "proficiency": 2, "rater_ref": "m", "rater_role": "manager",
         "assessed_at": day},
        {"competency": "execution", "proficiency": 5, "rater_ref": "m", "rater_role": "manager",
         "assessed_at": day},
        {"competency": "prioritization", "proficiency": 4, "rater_ref": "c1",
         "rater_role": "calibrated", "assessed_at": day},
        {"competency": "prioritization", "proficiency": 1, "rater_ref": "c2",
         "rater_role": "calibrated", "assessed_at": day},
        {"competency": "communication", "proficiency": 3, "rater_ref": "p", "rater_role": "peer",
         "assessed_at": day},
        {"competency": "communication", "proficiency": 1, "rater_ref": "me", "rater_role": "self",
         "assessed_at": day},
    ]  # fmt: skip


async def test_evaluate_answers_the_same_in_any_order_of_its_ratings(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    h = tenant_a.headers
    ratings = _tied_ratings()
    answers = []
    for seed in range(6):
        order = random.Random(seed).sample(ratings, len(ratings))
        body = {"framework": {"key": "product-management"}, "as_of": AS_OF, "ratings": order}
        r = await client.post("/v1/evaluate", json=body, headers=h)
        assert r.status_code == 200, r.text
        answers.append(r.json())
    assert all(answer == answers[0] for answer in answers)
    values = {c["key"]: c["value"] for c in answers[0]["score"]["competencies"]}
    # An exact tie keeps the higher proficiency.
    assert (values["execution"], values["prioritization"]) == (5, 4)


async def test_same_ratings_same_answer_through_evaluate_and_stored_assessments(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    # Same-day ratings by different raters (no same-rater tie): both doors agree exactly.
    h = tenant_a.headers
    assert (await client.post("/v1/subjects", json=subject(), headers=h)).status_code == 201
    ratings = [r for r in _tied_ratings() if r["proficiency"] not in (2, 1)]
    ratings.append(
        {"competency": "execution", "proficiency": 3, "rater_ref": "p", "rater_role": "peer",
         "assessed_at": "2026-09-01T00:00:00Z"}
    )  # fmt: skip
    for rating in ratings:
        body = {
            "subject_ref": "emp-1",
            "framework": {"key": "product-management"},
            "rater_ref": rating["rater_ref"],
            "rater_role": rating["rater_role"],
            "assessed_at": rating["assessed_at"],
            "ratings": [{"competency": rating["competency"], "proficiency": rating["proficiency"]}],
        }
        r = await client.post("/v1/assessments", json=body, headers=h)
        assert r.status_code == 201, r.text
    body = {
        "framework": {"key": "product-management"},
        "as_of": AS_OF,
        "track": "management",
        "ratings": ratings[::-1],
    }
    stateless = (await client.post("/v1/evaluate", json=body, headers=h)).json()
    params = {"as_of": AS_OF}
    for part, path in (("score", "score"), ("gaps", "gaps"), ("plan", "recommendations")):
        stored = (await client.get(f"/v1/subjects/emp-1/{path}", params=params, headers=h)).json()
        mine = {k: v for k, v in stateless[part].items() if k != "subject_ref"}
        theirs = {k: v for k, v in stored.items() if k != "subject_ref"}
        assert mine == theirs, part


async def test_partial_framework_role_weights_merge_with_the_defaults(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    h = tenant_a.headers
    await _publish(client, tenant_a, small_framework(settings={"role_weights": {"manager": 4}}))
    body: dict[str, Any] = {
        "framework": {"key": "eng-ladder"},
        "as_of": AS_OF,
        "ratings": [
            {"competency": "coding", "proficiency": 3, "rater_ref": "b", "rater_role": "manager"},
            {"competency": "coding", "proficiency": 1, "rater_ref": "me", "rater_role": "self"},
        ],
    }
    r = await client.post("/v1/evaluate", json=body, headers=h)
    assert r.status_code == 200, r.text
    score = r.json()["score"]
    weights = score["explanation"]["settings"]["role_weights"]
    assert weights == {"manager": 4, "peer": 2, "direct_report": 2, "external": 2, "self": 1}
    assert score["explanation"]["settings"]["gap_tolerance_mode"] == "points"
    coding = next(c for c in score["competencies"] if c["key"] == "coding")
    assert coding["value"] == pytest.approx((4 * 3 + 1 * 1) / 5)
    # The same object sent as request settings means the same thing.
    body["framework"] = {"key": "product-management"}
    body["settings"] = {"role_weights": {"manager": 4}}
    body["ratings"] = [dict(r, competency="execution") for r in body["ratings"]]
    again = (await client.post("/v1/evaluate", json=body, headers=h)).json()["score"]
    assert again["explanation"]["settings"]["role_weights"] == weights


def _one_point_per_level() -> dict[str, Any]:
    return {
        "format": "competency-framework/v1",
        "key": "career",
        "name": "Career ladder",
        "scale": [{"value": v, "label": f"L{v}"} for v in range(1, 6)],
        "levels": [{"key": f"l{r}", "name": f"Level {r}", "rank": r} for r in range(1, 6)],
        "areas": [{"key": "all", "name": "All"}],
        "competencies": [
            {
                "key": f"c{i}",
                "name": f"C{i}",
                "area": "all",
                "expectations": {f"l{r}": {"required": r} for r in range(1, 6)},
            }
            for i in range(3)
        ],
    }


async def test_import_advises_on_the_default_tolerance(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    r = await client.post(
        "/v1/frameworks/import", json=_one_point_per_level(), headers=tenant_a.headers
    )
    assert r.status_code == 201, r.text
    (advice,) = r.json()["advice"]
    assert advice.startswith("settings.gap_tolerance: requirements rise by at most 1 point(s)")
    chosen = dict(_one_point_per_level(), key="career-2", settings={"gap_tolerance": 0})
    r = await client.post("/v1/frameworks/import", json=chosen, headers=tenant_a.headers)
    assert (r.status_code, r.json()["advice"]) == (201, [])


def test_case_import_reports_the_default_tolerance_advice() -> None:
    package = export(parse_document(_one_point_per_level()))
    # A package from another tool carries no settings: the defaults apply.
    for ext in package["CFDocument"]["extensions"].values():
        if isinstance(ext, dict):
            ext.pop("settings", None)
    result = case.package_to_document(case.CFPackage.model_validate(package))
    advice = [e for e in result.report if e.what.startswith("settings.gap_tolerance")]
    assert len(advice) == 1
    assert advice[0].path == ["CFDocument"]


RATERS = (("manager", "m1"), ("manager", "m2"), ("peer", "p1"), ("self", "s"), ("calibrated", "c1"))
DAYS = ("2026-03-01", "2026-08-01", "2026-09-01", "2026-10-01")
COMPETENCIES = (
    "customer_discovery",
    "execution",
    "prioritization",
    "communication",
    "stakeholder_management",
    "mentoring_and_coaching",
)


async def test_random_ratings_answer_the_same_through_evaluate_and_stored_assessments(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    # A randomized property: assessments on random days (same-day ratings by different raters
    # included, dates only) against /v1/evaluate with the same ratings in a shuffled order.
    h = tenant_a.headers
    for seed in range(8):
        rng = random.Random(seed)
        ref = f"rand-{seed}"
        r = await client.post("/v1/subjects", json=subject(ref), headers=h)
        assert r.status_code == 201, r.text
        flat: list[dict[str, Any]] = []
        # One assessment per (rater, day) at most: a same-rater same-instant tie is the one
        # case the two doors resolve differently (creation order vs higher proficiency).
        for role, rater in RATERS:
            for day in rng.sample(DAYS, rng.randint(0, 2)):
                at = f"{day}T00:00:00Z"
                picked = rng.sample(COMPETENCIES, rng.randint(1, len(COMPETENCIES)))
                values = {key: rng.randint(0, 5) for key in picked}
                body = {
                    "subject_ref": ref,
                    "framework": {"key": "product-management"},
                    "rater_ref": rater,
                    "rater_role": role,
                    "assessed_at": at,
                    "ratings": [{"competency": k, "proficiency": v} for k, v in values.items()],
                }
                r = await client.post("/v1/assessments", json=body, headers=h)
                assert r.status_code == 201, r.text
                flat.extend(
                    {"competency": k, "proficiency": v, "rater_ref": rater, "rater_role": role,
                     "assessed_at": at}
                    for k, v in values.items()
                )  # fmt: skip
        if not flat:
            continue
        body = {
            "framework": {"key": "product-management"},
            "as_of": AS_OF,
            "track": "management",
            "ratings": rng.sample(flat, len(flat)),
        }
        r = await client.post("/v1/evaluate", json=body, headers=h)
        assert r.status_code == 200, r.text
        stateless = r.json()
        params = {"as_of": AS_OF}
        for part, path in (("score", "score"), ("gaps", "gaps"), ("plan", "recommendations")):
            got = await client.get(f"/v1/subjects/{ref}/{path}", params=params, headers=h)
            mine = {k: v for k, v in stateless[part].items() if k != "subject_ref"}
            theirs = {k: v for k, v in got.json().items() if k != "subject_ref"}
            assert mine == theirs, (seed, part)
