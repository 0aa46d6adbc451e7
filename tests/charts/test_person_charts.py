"""Score, gaps, plan and history as charts: the same numbers, authorization and ETags as JSON.

Every spec validates against the Vega-Lite v5 schema (the copy altair bundles); every SVG
parses, is labelled for screen readers, and draws one mark per competency whose size is the
JSON's value.
"""

import json
import re
import xml.etree.ElementTree as ET
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from app.charts.memo import memo_of
from app.charts.negotiate import CHART_TYPES, PNG, SVG, VEGA_LITE
from app.charts.person import PANEL_WIDTH_PX
from app.config import Settings
from tests.api.test_score_reads import make_app
from tests.api.test_scores import seed_pm
from tests.charts.svg_marks import SVG_NS, assert_valid_spec, parse
from tests.conftest import Tenant

pytestmark = pytest.mark.anyio

PATHS = {
    "score": "/v1/subjects/emp-1/score",
    "gaps": "/v1/subjects/emp-1/gaps",
    "recommendations": "/v1/subjects/emp-1/recommendations",
    "history": "/v1/subjects/emp-1/history",
}
# The built-in ladder's scale runs 0-5, drawn across the whole panel.
SCALE_MAX = 5.0


def svg_root(response: httpx.Response) -> ET.Element:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == SVG
    return parse(response.content)


def bars(root: ET.Element) -> dict[str, ET.Element]:
    """The bar marks by their screen-reader label's subject (the text before the colon)."""
    found = {}
    for el in root.iter(f"{SVG_NS}path"):
        if el.get("aria-roledescription") == "bar":
            label = el.get("aria-label", "")
            found[label.split(":", 1)[0]] = el
    return found


def points(root: ET.Element) -> list[str]:
    return [
        el.get("aria-label", "")
        for el in root.iter(f"{SVG_NS}path")
        if el.get("aria-roledescription") == "point"
    ]


def bar_length(el: ET.Element) -> float:
    """The horizontal length of a bar drawn as `M x,y h LENGTH v ... Z` (0 when not drawn)."""
    found = re.search(r"h(-?[\d.]+)", el.get("d", ""))
    return float(found.group(1)) if found else 0.0


def label_number(el: ET.Element, name: str) -> float:
    found = re.search(re.escape(name) + r" (-?[\d.]+)", el.get("aria-label", ""))
    assert found, el.get("aria-label")
    return float(found.group(1))


def assert_accessible(root: ET.Element) -> None:
    title = root.find(f"{SVG_NS}title")
    desc = root.find(f"{SVG_NS}desc")
    assert title is not None and title.text and desc is not None and desc.text
    assert root.get("role") == "img"
    assert root.get("aria-labelledby") == f"{title.get('id')} {desc.get('id')}"


@pytest.fixture
async def seeded(client: httpx.AsyncClient, tenant_a: Tenant) -> Tenant:
    await seed_pm(client, tenant_a)
    return tenant_a


async def test_json_stays_the_default(client: httpx.AsyncClient, seeded: Tenant) -> None:
    for path in PATHS.values():
        plain = await client.get(path, headers=seeded.headers)
        starred = await client.get(path, headers={**seeded.headers, "Accept": "*/*"})
        assert plain.status_code == starred.status_code == 200
        assert plain.headers["content-type"] == "application/json"
        assert plain.headers["vary"] == "Accept"
        assert isinstance(plain.json(), dict)


@pytest.mark.parametrize("name", list(PATHS))
async def test_specs_validate_against_the_vega_lite_schema(
    client: httpx.AsyncClient, seeded: Tenant, name: str
) -> None:
    r = await client.get(PATHS[name], headers={**seeded.headers, "Accept": VEGA_LITE})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == VEGA_LITE
    spec = r.json()
    assert_valid_spec(spec)
    assert spec["$schema"] == "https://vega.github.io/schema/vega-lite/v5.json"
    assert spec["title"]["text"] and spec["title"]["subtitle"] and spec["description"]
    assert "url" not in json.dumps(spec.get("data", {}))  # data inlined


async def test_score_svg_draws_each_competency_at_its_value(
    client: httpx.AsyncClient, seeded: Tenant
) -> None:
    score = (await client.get(PATHS["score"], headers=seeded.headers)).json()
    root = svg_root(await client.get(PATHS["score"], headers={**seeded.headers, "Accept": SVG}))
    assert_accessible(root)
    target = score["next_level"]["key"]
    expected = next(lv for lv in score["explanation"]["levels"] if lv["level"] == target)
    names = {c["key"]: c for c in score["competencies"]}
    drawn = bars(root)
    for weight in expected["weights"]:
        comp = names[weight["competency"]]
        bar = drawn.pop(comp["name"])
        assert label_number(bar, "actual") == pytest.approx(weight["actual"], abs=0.005)
        assert label_number(bar, "required") == weight["required"]
        assert bar_length(bar) == pytest.approx(
            weight["actual"] / SCALE_MAX * PANEL_WIDTH_PX, abs=1
        )
        label = bar.get("aria-label", "")
        assert ("critical" in label) == weight["critical"]
        assert ("blind spot" in label) == comp["blind_spot"]
    # What is left is one readiness bar per level of the track, at the JSON's readiness.
    levels = {lv["name"]: lv for lv in score["levels"]}
    names_of = {lv["level"]: lv["name"] for lv in score["levels"]}
    assert set(drawn) == {names_of[key] for key in score["explanation"]["path"]}
    for name, bar in drawn.items():
        assert label_number(bar, "readiness") == pytest.approx(
            levels[name]["readiness"] * 100, abs=0.05
        )
    # seed_pm's self ratings are a point above the others: blind spots are there to mark.
    assert any(c["blind_spot"] for c in score["competencies"])


async def test_score_chart_for_a_chosen_level(client: httpx.AsyncClient, seeded: Tenant) -> None:
    h = {**seeded.headers, "Accept": VEGA_LITE}
    spec = (await client.get(PATHS["score"], params={"level": "director"}, headers=h)).json()
    assert "Director" in spec["title"]["text"]
    r = await client.get(PATHS["score"], params={"level": "astronaut"}, headers=h)
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"


async def test_gaps_svg_adds_up_to_the_shortfall(client: httpx.AsyncClient, seeded: Tenant) -> None:
    gaps = (await client.get(PATHS["gaps"], headers=seeded.headers)).json()
    root = svg_root(await client.get(PATHS["gaps"], headers={**seeded.headers, "Accept": SVG}))
    assert_accessible(root)
    drawn = bars(root)
    assert len(drawn) == len(gaps["items"])
    lost = {i["name"]: i["readiness_points_lost"] for i in gaps["items"]}
    longest = max(lost.values())
    longest_px = max(bar_length(b) for b in drawn.values())
    for name, bar in drawn.items():
        assert label_number(bar, name=name + ":") == pytest.approx(lost[name] * 100, abs=0.05)
        assert bar_length(bar) / longest_px == pytest.approx(lost[name] / longest, abs=0.01)
    assert sum(lost.values()) == pytest.approx(1 - gaps["readiness"], abs=1e-9)


async def test_plan_and_history_svgs_draw_each_point(
    client: httpx.AsyncClient, seeded: Tenant
) -> None:
    plan = (await client.get(PATHS["recommendations"], headers=seeded.headers)).json()
    root = svg_root(
        await client.get(PATHS["recommendations"], headers={**seeded.headers, "Accept": SVG})
    )
    assert_accessible(root)
    drawn = points(root)
    assert len(drawn) == len(plan["steps"]) + 1  # today, then after each step
    for label, step in zip(drawn[1:], plan["steps"], strict=True):
        assert step["title"] in label
        assert f"readiness {step['readiness_after'] * 100:.1f}%" in label

    history = (await client.get(PATHS["history"], headers=seeded.headers)).json()
    root = svg_root(await client.get(PATHS["history"], headers={**seeded.headers, "Accept": SVG}))
    assert_accessible(root)
    drawn = points(root)
    assert len(drawn) == len(history["points"]) == 3
    for label, point in zip(drawn, history["points"], strict=True):
        assert f"level index {point['level_index']:.2f}" in label
    assert f"{history['velocity_per_90_days']:+.2f}" in root.findtext(f"{SVG_NS}desc", "")


async def test_png(client: httpx.AsyncClient, seeded: Tenant) -> None:
    r = await client.get(PATHS["score"], headers={**seeded.headers, "Accept": PNG})
    assert r.status_code == 200
    assert r.headers["content-type"] == PNG
    assert r.content.startswith(b"\x89PNG\r\n\x1a\n")


@pytest.mark.parametrize("name", list(PATHS))
async def test_an_accept_it_cannot_produce_is_406_with_the_list(
    client: httpx.AsyncClient, seeded: Tenant, name: str
) -> None:
    r = await client.get(PATHS[name], headers={**seeded.headers, "Accept": "text/csv"})
    assert r.status_code == 406
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["available"] == list(CHART_TYPES)


def _problem(response: httpx.Response) -> tuple[int, str, Any]:
    body = response.json()
    return response.status_code, response.headers["content-type"], body["type"]


@pytest.mark.parametrize("name", list(PATHS))
async def test_same_refusals_as_json(
    client: httpx.AsyncClient, seeded: Tenant, tenant_b: Tenant, name: str
) -> None:
    no_scope = {"Authorization": f"Bearer {await seeded.key('subjects:read')}"}
    cases = {
        401: ({}, PATHS[name]),
        403: (no_scope, PATHS[name]),
        404: (tenant_b.headers, PATHS[name]),  # another tenant's person
    }
    for status, (headers, path) in cases.items():
        as_json = await client.get(path, headers=headers)
        assert as_json.status_code == status
        for media in (VEGA_LITE, SVG, PNG):
            as_chart = await client.get(path, headers={**headers, "Accept": media})
            assert _problem(as_chart) == _problem(as_json), media


async def test_each_representation_has_its_own_etag(
    client: httpx.AsyncClient, seeded: Tenant
) -> None:
    url, h = PATHS["score"], seeded.headers
    etags = {}
    for media in CHART_TYPES:
        r = await client.get(url, headers={**h, "Accept": media})
        assert r.status_code == 200
        assert r.headers["vary"] == "Accept"
        etags[media] = r.headers["etag"]
    assert len(set(etags.values())) == len(CHART_TYPES)
    for media, etag in etags.items():
        same = await client.get(url, headers={**h, "Accept": media, "If-None-Match": etag})
        assert same.status_code == 304, media
        assert same.headers["etag"] == etag
        for other in CHART_TYPES:
            if other != media:
                r = await client.get(url, headers={**h, "Accept": other, "If-None-Match": etag})
                assert r.status_code == 200, (media, other)


async def test_remembered_svg_is_a_fresh_rendering_at_the_new_moment(
    client: httpx.AsyncClient,
    app: Any,
    seeded: Tenant,
    settings: Settings,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """Two moments with the same numbers: the second SVG comes from the memo with its own
    "as of", and is byte for byte what a worker without memo renders."""
    h = {**seeded.headers, "Accept": SVG}
    first = await client.get(PATHS["score"], params={"as_of": "2026-11-01T00:00:00Z"}, headers=h)
    second = await client.get(PATHS["score"], params={"as_of": "2026-11-02T08:30:00Z"}, headers=h)
    assert first.headers["etag"] == second.headers["etag"]  # the same numbers
    assert "2026-11-02 08:30 UTC" in second.text and "2026-11-01" not in second.text
    cold = make_app(settings, engine, sessionmaker, score_cache_mb=0)
    transport = httpx.ASGITransport(app=cold)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as fresh:
        again = await fresh.get(PATHS["score"], params={"as_of": "2026-11-02T08:30:00Z"}, headers=h)
    assert again.content == second.content
    assert len(memo_of(app)) == 1
    assert len(memo_of(cold)) == 0


async def test_erasing_the_subject_forgets_its_charts(
    client: httpx.AsyncClient, seeded: Tenant, app: Any
) -> None:
    r = await client.get(PATHS["score"], headers={**seeded.headers, "Accept": SVG})
    assert r.status_code == 200 and len(memo_of(app)) == 1
    assert (await client.delete("/v1/subjects/emp-1", headers=seeded.headers)).status_code == 204
    r = await client.get(PATHS["score"], headers={**seeded.headers, "Accept": SVG})
    assert r.status_code == 404
    assert len(memo_of(app)) == 0
