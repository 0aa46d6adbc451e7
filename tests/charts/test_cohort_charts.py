"""Cohort charts: valid Vega-Lite, one mark per cell or bar with the JSON's values, large cohorts
aggregated and small, and the same pictures through POST /v1/cohorts/evaluate by Accept."""

import json
import random
import statistics
from collections import defaultdict
from typing import Any

import httpx
import pytest

from app.charts import cohort, render
from app.cohorts.schemas import CohortResponse
from app.errors import InvalidInput
from tests.api.test_cohorts import PEOPLE, seed
from tests.api.test_scores import AS_OF
from tests.charts.svg_marks import assert_valid_spec, marks, number, title_and_desc
from tests.conftest import Tenant

LEVELS = ["apm", "pm", "senior_pm", "principal_pm"]
COMPETENCIES = [f"competency_{i}" for i in range(12)]
NO_LEVEL = "(no official level)"


def level_ref(key: str | None) -> dict[str, Any] | None:
    if key is None:
        return None
    return {"key": key, "name": key.upper(), "rank": LEVELS.index(key) + 1, "track": None}


def cohort_body(n: int, *, seed_value: int = 7, include_people: bool = True) -> dict[str, Any]:
    """A cohort answer of `n` random people, in exactly the shape the route answers."""
    rng = random.Random(seed_value)
    refs = [f"p{i:05d}" for i in range(n)]
    officials = [rng.choice([*LEVELS, None]) for _ in refs]
    attained = [rng.choice([*LEVELS, None]) for _ in refs]
    rank = {key: i + 1 for i, key in enumerate(LEVELS)}
    ready = [
        r
        for r, o, a in zip(refs, officials, attained, strict=True)
        if o and (rank[a] if a else 0) > rank[o]
    ]
    below = [
        r
        for r, o, a in zip(refs, officials, attained, strict=True)
        if o and (rank[a] if a else 0) < rank[o]
    ]
    distribution = {key: attained.count(key) for key in LEVELS} | {"none": attained.count(None)}
    people: list[dict[str, Any]] = [
        {
            "subject_ref": ref,
            "display_name": None,
            "track": None,
            "current_level": official,
            "attained_level": level_ref(level),
            "next_level": None,
            "level_index": 0.0,
            "target_level": None,
            "target_readiness": None,
            "coverage": 1.0,
            "confidence": 1.0,
            "top_gaps": [],
        }
        for ref, official, level in zip(refs, officials, attained, strict=True)
    ]
    values = [
        [None if rng.random() < 0.1 else round(rng.uniform(-3, 2), 6) for _ in COMPETENCIES]
        for _ in refs
    ]
    body = {
        "framework": {"key": "product-management", "version": 2},
        "as_of": "2026-11-01T00:00:00Z",
        "target_level": None,
        "unknown_refs": [],
        "skipped": [],
        "summary": {
            "subjects": n,
            "rated_subjects": n,
            "mean_coverage": 1.0,
            "mean_level_index": 0.0,
            "level_distribution": distribution,
            "biggest_gaps": [],
            "promotion_ready": ready,
            "below_level": below,
        },
        "people": people if include_people else None,
        "heatmap": {"competencies": COMPETENCIES, "subject_refs": refs, "values": values},
    }
    CohortResponse.model_validate(body)  # the test's body is a real answer's shape
    return body


def json_cells(heatmap: dict[str, Any]) -> dict[tuple[str, str], float]:
    """The JSON heatmap's values by (person, competency), where something is required."""
    return {
        (ref, c): v
        for ref, row in zip(heatmap["subject_refs"], heatmap["values"], strict=True)
        for c, v in zip(heatmap["competencies"], row, strict=True)
        if v is not None
    }


def rows_of(svg: bytes, row_title: str) -> dict[tuple[str, str], dict[str, str]]:
    return {(m[row_title], m["Competency"]): m for m in marks(svg, "rect mark")}


def test_heatmap_draws_one_cell_per_person_and_competency_with_the_json_value() -> None:
    body = cohort_body(20)
    spec = cohort.build(body)
    assert_valid_spec(spec)
    svg = render.render(spec, "svg")
    drawn = rows_of(svg, "Person")
    expected = json_cells(body["heatmap"])
    assert len(marks(svg, "rect mark")) == len(expected)
    assert set(drawn) == set(expected)
    for cell, value in expected.items():
        assert number(drawn[cell]["Actual − required (points)"]) == pytest.approx(value, abs=1e-9)
    title, desc = title_and_desc(svg)
    assert "20 people" in title and "as of 2026-11-01 00:00 UTC" in title
    assert "actual minus required" in desc.lower()


def test_a_large_cohort_is_drawn_by_official_level_and_stays_small() -> None:
    body = cohort_body(1000)
    spec = cohort.build(body)
    assert_valid_spec(spec)
    svg = render.render(spec, "svg")
    people = {p["subject_ref"]: p["current_level"] or NO_LEVEL for p in body["people"]}
    by_group: dict[tuple[str, str], list[float]] = defaultdict(list)
    sizes: dict[str, int] = defaultdict(int)
    for ref, row in zip(body["heatmap"]["subject_refs"], body["heatmap"]["values"], strict=True):
        sizes[people[ref]] += 1
        for c, v in zip(COMPETENCIES, row, strict=True):
            if v is not None:
                by_group[people[ref], c].append(v)
    drawn = rows_of(svg, "Official level")
    assert len(marks(svg, "rect mark")) == len(by_group) <= 5 * len(COMPETENCIES)
    for (group, c), values in by_group.items():
        cell = drawn[f"{group} ({sizes[group]})", c]
        assert number(cell["Actual − required (points)"]) == pytest.approx(
            statistics.fmean(values), abs=1e-9
        )
        assert number(cell["People"]) == len(values)
    # Rows in the ladder's order, people without an official level last.
    assert [row for row in spec["encoding"]["y"]["sort"]] == [
        f"{g} ({sizes[g]})" for g in [*LEVELS, NO_LEVEL]
    ]
    assert len(svg) < 60_000
    assert "1000 people in 5 groups" in title_and_desc(svg)[0]


def test_a_large_cohort_by_an_attribute_and_many_groups_merged() -> None:
    body = cohort_body(1000)
    refs = body["heatmap"]["subject_refs"]
    # 300 teams of different sizes and people without a team: more groups than rows allowed.
    groups: dict[str, str | None] = {
        ref: None if i % 50 == 0 else f"team-{(i * 7) % 300:03d}" for i, ref in enumerate(refs)
    }
    spec = cohort.build(body, groups=groups, group_by="team")
    assert_valid_spec(spec)
    svg = render.render(spec, "svg")
    order: list[str] = spec["encoding"]["y"]["sort"]
    assert len(order) == cohort.GROUP_CAP
    sizes = [int(label.rsplit("(", 1)[1].rstrip(")")) for label in order]
    assert sum(sizes) == 1000
    merged = order[-1]
    distinct = len(set(groups.values()))  # the teams and "no team"
    assert distinct > cohort.GROUP_CAP
    assert merged.startswith(f"({distinct - (cohort.GROUP_CAP - 1)} other groups)")
    assert len(marks(svg, "rect mark")) <= cohort.GROUP_CAP * len(COMPETENCIES)
    assert len(svg) < 250_000
    # The largest group (the people without a team) keeps its own row, with its own mean.
    no_team = [i for i, ref in enumerate(refs) if groups[ref] is None]
    label = f"(no team) ({len(no_team)})"
    assert label in order
    drawn = rows_of(svg, "Team")
    column = [body["heatmap"]["values"][i][0] for i in no_team]
    assert number(drawn[label, COMPETENCIES[0]]["Actual − required (points)"]) == pytest.approx(
        statistics.fmean(v for v in column if v is not None), abs=1e-9
    )


def test_small_cohort_by_an_attribute_is_aggregated_too() -> None:
    body = cohort_body(6)
    refs = body["heatmap"]["subject_refs"]
    groups: dict[str, str | None] = {
        ref: "growth" if i < 4 else "platform" for i, ref in enumerate(refs)
    }
    spec = cohort.build(body, groups=groups, group_by="team")
    assert spec["encoding"]["y"]["sort"] == ["growth (4)", "platform (2)"]


def test_levels_chart_has_one_bar_per_level_with_the_distribution() -> None:
    body = cohort_body(300)
    spec = cohort.build(body, chart="levels")
    assert_valid_spec(spec)
    svg = render.render(spec, "svg")
    bars = {m["Attained level"]: number(m["People"]) for m in marks(svg, "bar")}
    assert bars == body["summary"]["level_distribution"]
    assert len(marks(svg, "bar")) == len(LEVELS) + 1
    assert "300 people" in title_and_desc(svg)[0]


def test_readiness_chart_counts_promotion_ready_and_below_level_per_official_level() -> None:
    body = cohort_body(300)
    spec = cohort.build(body, chart="readiness")
    assert_valid_spec(spec)
    svg = render.render(spec, "svg")
    bars = marks(svg, "bar")
    totals: dict[str, float] = defaultdict(float)
    for bar in bars:
        totals[bar["Attained level"]] += number(bar["People"])
    summary = body["summary"]
    placed = sum(1 for p in body["people"] if p["current_level"] is not None)
    assert totals[cohort.READY] == len(summary["promotion_ready"])
    assert totals[cohort.BELOW] == len(summary["below_level"])
    assert sum(totals.values()) == placed
    officials = {p["current_level"] for p in body["people"]} - {None}
    assert len(bars) <= 3 * len(officials)
    _, desc = title_and_desc(svg)
    assert f"{len(summary['promotion_ready'])} people attained a level above" in desc


def test_titles_say_as_of_in_utc_whatever_offset_the_answer_carries() -> None:
    body = cohort_body(3) | {"as_of": "2026-11-01T02:30:00+02:00"}
    for chart in cohort.CHARTS:
        assert "as of 2026-11-01 00:30 UTC" in cohort.build(body, chart=chart)["title"]["subtitle"]


@pytest.mark.parametrize("chart", ["readiness", "heatmap"])
def test_a_chart_drawn_from_people_left_out_is_refused(chart: cohort.Chart) -> None:
    body = cohort_body(cohort.HEATMAP_PEOPLE_CAP + 1, include_people=False)
    with pytest.raises(InvalidInput) as refused:
        cohort.build(body, chart=chart)
    assert refused.value.errors and refused.value.errors[0].loc == ["body", "include_people"]
    assert cohort.build(cohort_body(5, include_people=False))["data"]["values"]


# Through the API, on Postgres and SQLite.

URL = "/v1/cohorts/evaluate"
BODY = {"framework": {"key": "product-management"}, "as_of": AS_OF}
SVG = "image/svg+xml"


@pytest.mark.anyio
async def test_cohort_route_answers_the_heatmap_as_svg_with_the_json_numbers(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    await seed(client, tenant_a)
    h = tenant_a.headers
    answer = (await client.post(URL, json=BODY, headers=h)).json()
    r = await client.post(URL, json=BODY, headers={**h, "Accept": SVG})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith(SVG)
    assert "accept" in r.headers["vary"].lower()
    drawn = rows_of(r.content, "Person")
    expected = json_cells(answer["heatmap"])
    assert expected and set(drawn) == set(expected)
    for cell, value in expected.items():
        assert number(drawn[cell]["Actual − required (points)"]) == pytest.approx(value, abs=1e-9)
    title, _ = title_and_desc(r.content)
    assert f"{answer['summary']['subjects']} people" in title

    spec = await client.post(
        URL, json=BODY, headers={**h, "Accept": "application/vnd.vegalite.v5+json"}
    )
    assert spec.status_code == 200
    assert_valid_spec(spec.json())
    assert len(spec.json()["data"]["values"]) == len(expected)

    png = await client.post(URL, json=BODY, headers={**h, "Accept": "image/png"})
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")


@pytest.mark.anyio
async def test_cohort_route_levels_readiness_and_group_by_team(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    await seed(client, tenant_a)
    h = {**tenant_a.headers, "Accept": SVG}
    answer = (await client.post(URL, json=BODY, headers=tenant_a.headers)).json()
    summary = answer["summary"]

    levels = await client.post(URL, json=BODY, headers=h, params={"chart": "levels"})
    assert levels.status_code == 200, levels.text
    drawn = {m["Attained level"]: number(m["People"]) for m in marks(levels.content, "bar")}
    assert drawn == summary["level_distribution"]

    ready = await client.post(URL, json=BODY, headers=h, params={"chart": "readiness"})
    assert ready.status_code == 200, ready.text
    totals: dict[str, float] = defaultdict(float)
    for bar in marks(ready.content, "bar"):
        totals[bar["Attained level"]] += number(bar["People"])
    assert totals[cohort.READY] == len(summary["promotion_ready"])
    assert totals[cohort.BELOW] == len(summary["below_level"])

    teams = {ref: team for ref, (_, _, team, _) in PEOPLE.items()} | {"frank": "growth"}
    by_team = await client.post(URL, json=BODY, headers=h, params={"group_by": "team"})
    assert by_team.status_code == 200, by_team.text
    groups: dict[tuple[str, str], list[float]] = defaultdict(list)
    for (ref, c), v in json_cells(answer["heatmap"]).items():
        groups[teams[ref], c].append(v)
    size = {t: list(teams.values()).count(t) for t in set(teams.values())}
    drawn_cells = rows_of(by_team.content, "Team")
    assert len(drawn_cells) == len(groups)
    for (team, c), values in groups.items():
        cell = drawn_cells[f"{team} ({size[team]})", c]
        assert number(cell["Actual − required (points)"]) == pytest.approx(
            statistics.fmean(values), abs=1e-9
        )

    # An attribute nobody has (its key may hold dots and dashes): one row for everyone.
    nobody = await client.post(URL, json=BODY, headers=h, params={"group_by": "cost.centre-1"})
    assert nobody.status_code == 200, nobody.text
    rows = {row for row, _ in rows_of(nobody.content, "Cost.centre-1")}
    assert rows == {f"(no cost.centre-1) ({len(teams)})"}


@pytest.mark.anyio
async def test_cohort_route_refuses_what_it_cannot_draw(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    await seed(client, tenant_a)
    h = tenant_a.headers
    r = await client.post(URL, json=BODY, headers={**h, "Accept": "text/html"})
    assert r.status_code == 406
    assert r.headers["content-type"].startswith("application/problem+json")
    assert SVG in r.json()["available"]

    bad = await client.post(URL, json=BODY, headers={**h, "Accept": SVG}, params={"chart": "pie"})
    assert bad.status_code == 422
    bad = await client.post(
        URL, json=BODY, headers={**h, "Accept": SVG}, params={"group_by": "no spaces"}
    )
    assert bad.status_code == 422

    no_people = {**BODY, "include_people": False}
    refused = await client.post(
        URL, json=no_people, headers={**h, "Accept": SVG}, params={"chart": "readiness"}
    )
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["loc"] == ["body", "include_people"]

    # JSON and CSV are answered as before.
    csv = await client.post(URL, json=BODY, headers=h, params={"format": "csv"})
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    plain = await client.post(URL, json=BODY, headers={**h, "Accept": "application/json"})
    assert json.loads(plain.content)["summary"]["subjects"] == len(PEOPLE) + 1
