"""Rater-effects charts: valid Vega-Lite, one bar per rater and scale value with the JSON's counts
beside the cohort's, one dot and interval per measured rater, many raters capped, and the same
pictures through POST /v1/calibration/rater-effects by Accept."""

import random
from typing import Any

import httpx
import pytest

from app.calibration.schemas import RaterEffectsResponse, Thresholds
from app.charts import calibration, render
from tests.api.test_calibration import FRAMEWORK, seed
from tests.api.test_scores import AS_OF
from tests.charts.svg_marks import assert_valid_spec, marks, number, title_and_desc
from tests.conftest import Tenant

SCALE = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]


def rater(i: int, rng: random.Random) -> dict[str, Any]:
    measured = i % 4 != 3
    effect = round(rng.uniform(-1.5, 1.5), 6) if measured else None
    distribution = [rng.randint(0, 40) for _ in SCALE]
    return {
        "rater_ref": f"rater-{i:03d}",
        "role": "manager" if i % 2 else "peer",
        "group": 1 if measured else None,
        "status": "ok" if measured else "not_comparable",
        "effect": effect,
        "standard_error": round(rng.uniform(0.05, 0.4), 6) if measured else None,
        "ratings": sum(distribution),
        "shared_ratings": sum(distribution) if measured else 0,
        "subjects": 10,
        "mean_square": 1.0 if measured else None,
        "between_ratio": None,
        "within_ratio": None,
        "flags": [{"kind": "lenient", "evidence": {}}] if effect and effect > 1 else [],
        "distribution": distribution,
    }


def effects_body(n: int, seed_value: int = 3) -> dict[str, Any]:
    """A rater-effects answer with `n` raters, in exactly the shape the route answers."""
    rng = random.Random(seed_value)
    raters = [rater(i, rng) for i in range(n)]
    body = {
        "framework": {"key": "product-management", "version": 2},
        "as_of": "2026-11-01T00:00:00Z",
        "window_days": 365,
        "unknown_refs": [],
        "skipped": [],
        "thresholds": Thresholds().model_dump(mode="json"),
        "fit": {
            "sigma": 0.5,
            "degrees_of_freedom": 100,
            "iterations": 3,
            "ratings": 500,
            "shared_ratings": 400,
        },
        "groups": [{"group": 1, "raters": n}],
        "raters": raters,
        "scale": SCALE,
        "cohort_distribution": [sum(r["distribution"][j] for r in raters) for j in range(6)],
        "agreement": [],
        "self_ratings": {"effect": None, "standard_error": None, "people": []},
        "fair_averages": None,
    }
    RaterEffectsResponse.model_validate(body)  # the test's body is a real answer's shape
    return body


def label(r: dict[str, Any]) -> str:
    return f"{r['rater_ref']} ({r['role']})"


def test_distributions_draw_each_rater_beside_the_cohort() -> None:
    body = effects_body(6)
    spec = calibration.build(body)
    assert_valid_spec(spec)
    svg = render.render(spec, "svg")
    bars = marks(svg, "bar")
    assert len(bars) == (len(body["raters"]) + 1) * len(SCALE)
    drawn = {(b["Rater"], number(b["Rating"])): b for b in bars}
    panels = [(calibration.COHORT_PANEL, body["cohort_distribution"])]
    panels += [(label(r), r["distribution"]) for r in body["raters"]]
    cohort_total = sum(body["cohort_distribution"])
    for panel, counts in panels:
        for value, count in zip(SCALE, counts, strict=True):
            bar = drawn[panel, value]
            assert number(bar["Ratings"]) == count
            assert number(bar["Share of ratings"].rstrip("%")) == pytest.approx(
                100 * count / sum(counts), abs=1e-4
            )
    # The cohort's share is drawn in every panel, the same everywhere.
    ticks = marks(svg, "tick")
    assert len(ticks) == len(bars)
    for tick in ticks:
        j = SCALE.index(number(tick["Rating"]))
        assert number(tick["Cohort's share"]) == pytest.approx(
            body["cohort_distribution"][j] / cohort_total, abs=1e-9
        )
    title, desc = title_and_desc(svg)
    assert "each rater beside the cohort" in title and "2026-11-01 00:00 UTC" in title
    assert "cohort" in desc


def test_many_raters_show_the_largest_effects_and_stay_small() -> None:
    body = effects_body(200)
    spec = calibration.build(body)
    assert_valid_spec(spec)
    svg = render.render(spec, "svg")
    shown = spec["facet"]["sort"]
    assert len(shown) == calibration.RATER_PANEL_CAP + 1
    assert len(marks(svg, "bar")) == len(shown) * len(SCALE)
    measured = sorted(
        (r for r in body["raters"] if r["effect"] is not None), key=lambda r: -abs(r["effect"])
    )
    assert shown[1:] == [label(r) for r in measured[: calibration.RATER_PANEL_CAP]]
    assert f"{calibration.RATER_PANEL_CAP} of 200 raters" in title_and_desc(svg)[0]
    assert len(svg) < 150_000


def test_effects_draw_one_dot_and_interval_per_measured_rater() -> None:
    body = effects_body(12)
    spec = calibration.build(body, chart="effects")
    assert_valid_spec(spec)
    svg = render.render(spec, "svg")
    z = body["thresholds"]["z"]
    measured = {label(r): r for r in body["raters"] if r["effect"] is not None}
    dots = {d["Rater"]: d for d in marks(svg, "point")}
    assert set(dots) == set(measured)
    intervals = {m["Rater (role)"]: m for m in marks(svg, "rule mark") if "Rater (role)" in m}
    assert set(intervals) == set(measured)
    for name, r in measured.items():
        assert number(dots[name]["Effect"]) == pytest.approx(r["effect"], abs=1e-4)
        low, high = (number(intervals[name][k]) for k in ("Interval from", "to"))
        assert low == pytest.approx(r["effect"] - z * r["standard_error"], abs=1e-4)
        assert high == pytest.approx(r["effect"] + z * r["standard_error"], abs=1e-4)
        assert dots[name]["Flag"] == ("lenient" if r["flags"] else "neither")
    limit = body["thresholds"]["effect_points"]
    rules = sorted(number(m["Rule at"]) for m in marks(svg, "rule mark") if "Rule at" in m)
    assert rules == [-limit, 0.0, limit]
    assert "1.96·SE" in title_and_desc(svg)[0]


# Through the API, on Postgres and SQLite.

URL = "/v1/calibration/rater-effects"
BODY = {"framework": FRAMEWORK, "as_of": AS_OF, "filter": {"attributes": {"team": "growth"}}}
SVG = "image/svg+xml"


@pytest.mark.anyio
async def test_rater_effects_route_answers_charts_with_the_json_numbers(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    await seed(client, tenant_a)
    h = tenant_a.headers
    answer = (await client.post(URL, json=BODY, headers=h)).json()
    r = await client.post(URL, json=BODY, headers={**h, "Accept": SVG})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith(SVG)
    drawn = {
        (b["Rater"], number(b["Rating"])): number(b["Ratings"]) for b in marks(r.content, "bar")
    }
    expected = {
        (calibration.COHORT_PANEL, v): n
        for v, n in zip(answer["scale"], answer["cohort_distribution"], strict=True)
    }
    for x in answer["raters"]:
        expected |= {
            (label(x), v): n for v, n in zip(answer["scale"], x["distribution"], strict=True)
        }
    assert drawn == expected

    r = await client.post(URL, json=BODY, headers={**h, "Accept": SVG}, params={"chart": "effects"})
    assert r.status_code == 200, r.text
    dots = {d["Rater"]: number(d["Effect"]) for d in marks(r.content, "point")}
    measured = {label(x): x["effect"] for x in answer["raters"] if x["effect"] is not None}
    assert measured and dots.keys() == measured.keys()
    for name, effect in measured.items():
        assert dots[name] == pytest.approx(effect, abs=1e-4)

    spec = await client.post(
        URL, json=BODY, headers={**h, "Accept": "application/vnd.vegalite.v5+json"}
    )
    assert spec.status_code == 200
    assert_valid_spec(spec.json())


@pytest.mark.anyio
async def test_rater_effects_route_refuses_an_unknown_accept(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    await seed(client, tenant_a)
    r = await client.post(URL, json=BODY, headers={**tenant_a.headers, "Accept": "text/html"})
    assert r.status_code == 406
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "image/png" in r.json()["available"]
    bad = await client.post(
        URL, json=BODY, headers={**tenant_a.headers, "Accept": SVG}, params={"chart": "pie"}
    )
    assert bad.status_code == 422
