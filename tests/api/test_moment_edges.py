"""Moments at the calendar's ends, never answered 500 (they were by the score, gaps, plan,
history, what-if, stateless evaluation and impact preview).

A window that would begin before the year 1 begins at its first moment: nothing can be dated
earlier, so it holds the ratings the window means. A moment whose UTC time is past the year 9999
(no column can store it) is refused with a 422 problem by every read that takes `as_of`."""

from typing import Any

import httpx
import pytest

from tests.api.test_subjects_assessments import assessment, subject
from tests.conftest import Tenant

pytestmark = pytest.mark.anyio

PROBLEM = "application/problem+json"
# Within a year of 0001-01-01T00:00Z: the built-in ladder's window (365 days) would begin before.
EARLY = "0001-06-01T00:00:00Z"
EARLIEST = "0001-01-01T00:00:00Z"
# 9999-12-31T23:00 two hours behind UTC: 10000-01-01T01:00Z, which no database column holds.
PAST_9999 = "9999-12-31T23:00:00-02:00"
RATINGS = [
    {
        "competency": "execution",
        "proficiency": 3,
        "rater_ref": "mgr-1",
        "rater_role": "manager",
        "assessed_at": "2026-10-01T09:00:00Z",
    }
]
FRAMEWORK = {"key": "product-management"}


@pytest.fixture
async def rated(client: httpx.AsyncClient, tenant_a: Tenant) -> Tenant:
    r = await client.post("/v1/subjects", json=subject(), headers=tenant_a.headers)
    assert r.status_code == 201, r.text
    r = await client.post("/v1/assessments", json=assessment(), headers=tenant_a.headers)
    assert r.status_code == 201, r.text
    return tenant_a


def _reads(as_of: Any) -> list[tuple[str, str, dict[str, Any] | None, dict[str, Any] | None]]:
    """Every read that takes `as_of`: method, path, query, body."""
    return [
        ("GET", "/v1/subjects/emp-1/score", {"as_of": as_of}, None),
        ("GET", "/v1/subjects/emp-1/gaps", {"as_of": as_of}, None),
        ("GET", "/v1/subjects/emp-1/recommendations", {"as_of": as_of}, None),
        ("POST", "/v1/subjects/emp-1/what-if", None, {"changes": {"execution": 4}, "as_of": as_of}),
        (
            "POST",
            "/v1/evaluate",
            None,
            {"framework": FRAMEWORK, "ratings": RATINGS, "as_of": as_of},
        ),
        ("POST", "/v1/cohorts/evaluate", None, {"framework": FRAMEWORK, "as_of": as_of}),
        ("POST", "/v1/frameworks/product-management/versions/1/impact", None, {"as_of": as_of}),
        ("POST", "/v1/calibration/rater-effects", None, {"framework": FRAMEWORK, "as_of": as_of}),
        (
            "POST",
            "/v1/calibration/sessions",
            None,
            {"name": "edge", "framework": FRAMEWORK, "as_of": as_of},
        ),
    ]


async def _call(
    client: httpx.AsyncClient, tenant: Tenant, read: tuple[str, str, Any, Any]
) -> httpx.Response:
    method, path, query, body = read
    return await client.request(method, path, params=query, json=body, headers=tenant.headers)


def _as_of_refusal(response: httpx.Response, where: str) -> str:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    (error,) = response.json()["errors"]
    assert error["loc"] == [where, "as_of"], error
    return str(error["msg"])


async def test_a_window_reaching_before_the_year_1_begins_at_its_first_moment(
    client: httpx.AsyncClient, rated: Tenant
) -> None:
    r = await client.post(
        "/v1/assessments",
        json=assessment(rater="mgr-2", when="0001-01-02T00:00:00Z"),
        headers=rated.headers,
    )
    assert r.status_code == 201, r.text
    r = await client.get("/v1/subjects/emp-1/score", params={"as_of": EARLY}, headers=rated.headers)
    assert r.status_code == 200, r.text
    explanation = r.json()["explanation"]
    assert explanation["window_start"] == EARLIEST
    assert [c["rater_ref"] for c in explanation["contributions"]["execution"]] == ["mgr-2"]
    # A second read comes from the memo, its moments filled in the same way.
    again = await client.get(
        "/v1/subjects/emp-1/score", params={"as_of": EARLY}, headers=rated.headers
    )
    assert again.content == r.content
    # The history scores the person at each assessment's date, the first in year 1.
    history = await client.get("/v1/subjects/emp-1/history", headers=rated.headers)
    assert history.status_code == 200, history.text
    assert history.json()["points"][0]["as_of"] == "0001-01-02T00:00:00Z"


@pytest.mark.parametrize("index", range(len(_reads(None))))
async def test_every_read_answers_a_moment_early_in_the_year_1(
    client: httpx.AsyncClient, rated: Tenant, index: int
) -> None:
    read = _reads(EARLY)[index]
    response = await _call(client, rated, read)
    assert response.status_code in (200, 201), response.text


@pytest.mark.parametrize("index", range(len(_reads(None))))
async def test_a_moment_past_the_year_9999_in_utc_is_refused(
    client: httpx.AsyncClient, rated: Tenant, index: int
) -> None:
    read = _reads(PAST_9999)[index]
    message = _as_of_refusal(await _call(client, rated, read), "query" if read[2] else "body")
    assert "years 1 to 9999" in message


@pytest.mark.parametrize("index", range(len(_reads(None))))
async def test_the_ends_of_the_calendar_themselves_are_answered(
    client: httpx.AsyncClient, rated: Tenant, index: int
) -> None:
    for as_of in (EARLIEST, "9999-12-31T23:59:59Z"):
        read = _reads(as_of)[index]
        method, path, query, body = read
        if path == "/v1/calibration/sessions" and body is not None:
            read = (method, path, query, {**body, "name": f"edge {as_of}"})  # names are unique
        response = await _call(client, rated, read)
        assert response.status_code in (200, 201), (as_of, response.text)


async def test_a_number_is_not_a_moment(client: httpx.AsyncClient, rated: Tenant) -> None:
    # Numbers were taken as Unix times by the cohort and impact reads; every other as_of, like
    # the document, wants an RFC 3339 date-time.
    for read in _reads(1_700_000_000)[3:]:
        _as_of_refusal(await _call(client, rated, read), "body")
