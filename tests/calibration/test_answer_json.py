"""The rater-effects JSON is rendered from plain rows (100,000 people as model instances cost
seconds and hundreds of MiB): it must be the documented model's JSON, byte for byte."""

import httpx
import pytest

from app.calibration.schemas import RaterEffectsResponse
from tests.api.test_calibration import _assessment, _base, effects, seed
from tests.api.test_subjects_assessments import subject
from tests.conftest import Tenant

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"include_fair_averages": False},
        {"thresholds": {"effect_points": 0.25, "min_ratings": 5}, "record": True},
    ],
)
async def test_json_is_the_validated_models_json(
    client: httpx.AsyncClient, tenant_a: Tenant, extra: dict[str, object]
) -> None:
    await seed(client, tenant_a)
    # Someone rated on three competencies only: unrated values are null in the fair averages.
    h = tenant_a.headers
    partial = subject("partial", attributes={"team": "growth"})
    assert (await client.post("/v1/subjects/bulk", json=[partial], headers=h)).status_code == 201
    first3 = dict(list(_base(1).items())[:3])
    body = [_assessment("partial", m, "manager", first3) for m in ("m2", "m3")]
    assert (await client.post("/v1/assessments/bulk", json=body, headers=h)).status_code == 201
    r = await effects(client, tenant_a, **extra)
    assert r.status_code == 200, r.text
    validated = RaterEffectsResponse.model_validate_json(r.content)
    assert r.content == validated.model_dump_json().encode()
    # Not vacuous: every long list is there, with rows in it.
    body = r.json()
    assert body["raters"] and body["self_ratings"]["people"]
    assert any(rater["flags"] for rater in body["raters"])
    if extra.get("include_fair_averages", True):
        people = {p["subject_ref"]: p for p in body["fair_averages"]["people"]}
        assert len(people) == 8  # PEOPLE, solo-person and partial
        assert people["partial"]["fair_values"].count(None) == 11
        assert None not in people["pm-0"]["fair_values"]
    else:
        assert body["fair_averages"] is None
    if extra.get("record"):
        assert body["estimate"]["raters"] == len(body["raters"])


async def test_csv_and_json_tell_the_same_raters(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    await seed(client, tenant_a)
    body = (await effects(client, tenant_a)).json()
    r = await client.post(
        "/v1/calibration/rater-effects?format=csv",
        json={
            "framework": body["framework"],
            "as_of": body["as_of"],
            "filter": {"attributes": {"team": "growth"}},
        },
        headers=tenant_a.headers,
    )
    assert r.status_code == 200, r.text
    lines = r.text.strip().splitlines()[1:]
    assert [line.split(",")[0] for line in lines] == [x["rater_ref"] for x in body["raters"]]
