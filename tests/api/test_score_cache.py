"""The score read's fast lane (app/scores/cache.py): the same answers as the ordinary route,
never a stale one, and exactly the ordinary route's refusals.

These tests need committed data seen by two connection pools (the service's and the fast
lane's), so they run on Postgres with real commits, each in a tenant of its own.
"""

import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from app.auth.ratelimit import RateLimiter
from app.config import Settings
from app.db import create_engine, make_sessionmaker
from app.main import create_app
from app.scores.cache import MAX_AGE, ScoreCache, ScoreReads, Template, stable_until
from app.scoring import Rating, ScoringSettings
from tests.api.test_scores import PM_RATINGS, ratings, seed_pm
from tests.api.test_subjects_assessments import assessment
from tests.conftest import Database, Tenant, _make_tenant
from tests.factories import small_framework

pytestmark = pytest.mark.anyio

URL = "/v1/subjects/emp-1/score"


@dataclass
class Lane:
    client: httpx.AsyncClient
    app: Any
    reads: ScoreReads
    tenant: Tenant
    other: Tenant

    async def get(self, url: str = URL, headers: dict[str, str] | None = None) -> httpx.Response:
        return await self.client.get(url, headers=headers or self.tenant.headers)

    async def ordinary(self, url: str = URL) -> httpx.Response:
        """The same request answered by the route alone."""
        self.app.state.score_reads = None
        try:
            return await self.get(url)
        finally:
            self.app.state.score_reads = self.reads


def top_marks(when: str) -> dict[str, Any]:
    """A second manager's assessment of emp-1 with the top rating everywhere."""
    return assessment(rater="mgr-2", when=when, ratings=ratings({k: 5 for k in PM_RATINGS}))


def eng_ladder(body: dict[str, Any], values: dict[str, int]) -> dict[str, Any]:
    """The same assessment made against the small test framework instead."""
    return {**body, "framework": {"key": "eng-ladder"}, "ratings": ratings(values)}


def outcome(response: httpx.Response) -> str | None:
    """hit or miss when the fast lane answered, None when the route did."""
    found = re.search(r'cache;desc="(\w+)"', response.headers.get("server-timing", ""))
    return found.group(1) if found else None


def without_moment(response: httpx.Response) -> bytes:
    """The body with its as_of and window start cut out (they are the request's moment)."""
    data = response.json()
    return response.content.replace(data["as_of"].encode(), b"AS_OF").replace(
        data["explanation"]["window_start"].encode(), b"START"
    )


async def _lane(settings: Settings) -> AsyncIterator[Lane]:
    app = create_app(settings)
    engine = create_engine(settings)
    app.state.engine = engine
    app.state.sessionmaker = sm = make_sessionmaker(engine)
    reads = await ScoreReads.start(settings, sm, app.state.rate_limiter)
    assert reads is not None
    app.state.score_reads = reads
    suffix = uuid.uuid4().hex[:8]
    tenant = await _make_tenant(sm, settings, f"lane-{suffix}")
    other = await _make_tenant(sm, settings, f"other-{suffix}")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield Lane(client, app, reads, tenant, other)
    await reads.close()
    await engine.dispose()


@pytest.fixture
async def lane(database: Database, settings: Settings) -> AsyncIterator[Lane]:
    if database.backend != "postgres":
        pytest.skip("the fast lane is Postgres only")
    async for made in _lane(settings):
        yield made


async def test_second_read_comes_from_memory_and_matches_the_route(lane: Lane) -> None:
    await seed_pm(lane.client, lane.tenant)
    first, second = await lane.get(), await lane.get()
    assert (first.status_code, outcome(first)) == (200, "miss")
    assert (second.status_code, outcome(second)) == (200, "hit")
    assert second.headers["content-type"] == "application/json"
    ordinary = await lane.ordinary()
    assert outcome(ordinary) is None
    assert without_moment(first) == without_moment(second) == without_moment(ordinary)
    # The moment is the request's own, not the one the score was first computed at.
    moments = [datetime.fromisoformat(r.json()["as_of"]) for r in (first, second)]
    assert moments[0] < moments[1] <= datetime.now(UTC)
    start = datetime.fromisoformat(second.json()["explanation"]["window_start"])
    assert moments[1] - start == timedelta(days=365)


async def test_a_new_assessment_is_seen_by_the_next_read(lane: Lane) -> None:
    await seed_pm(lane.client, lane.tenant)
    before = (await lane.get(), await lane.get())[1]
    assert outcome(before) == "hit"
    body = top_marks("2026-10-15T00:00:00Z")
    r = await lane.client.post("/v1/assessments", json=body, headers=lane.tenant.headers)
    assert r.status_code == 201
    after = await lane.get()
    assert outcome(after) == "miss"
    assert after.json()["level_index"] > before.json()["level_index"]
    assert without_moment(after) == without_moment(await lane.ordinary())


async def test_a_changed_subject_is_seen_by_the_next_read(lane: Lane) -> None:
    await seed_pm(lane.client, lane.tenant)
    assert (await lane.get()).json()["track"] == "management"
    current = await lane.client.get("/v1/subjects/emp-1", headers=lane.tenant.headers)
    r = await lane.client.patch(
        "/v1/subjects/emp-1",
        json={"track": "ic"},
        headers={**lane.tenant.headers, "If-Match": current.headers["etag"]},
    )
    assert r.status_code == 200
    after = await lane.get()
    assert (outcome(after), after.json()["track"]) == ("miss", "ic")


async def test_a_newly_published_version_is_seen_by_the_next_read(lane: Lane) -> None:
    h = lane.tenant.headers
    doc = small_framework()
    r = await lane.client.post("/v1/frameworks", json=doc, headers=h, params={"publish": True})
    assert r.status_code == 201
    r = await lane.client.post("/v1/subjects", json={"external_ref": "emp-1"}, headers=h)
    assert r.status_code == 201
    body = eng_ladder(
        assessment(role="manager", when="2026-10-01T00:00:00Z"),
        {"coding": 2, "design": 2, "influence": 1},
    )
    assert (await lane.client.post("/v1/assessments", json=body, headers=h)).status_code == 201
    first = (await lane.get(), await lane.get())[1]
    assert (outcome(first), first.json()["framework"]["version"]) == ("hit", 1)
    assert (
        await lane.client.post("/v1/frameworks/eng-ladder/versions", headers=h)
    ).status_code == 201
    r = await lane.client.post("/v1/frameworks/eng-ladder/versions/2/publish", headers=h)
    assert r.status_code == 200
    after = await lane.get()
    assert (outcome(after), after.json()["framework"]["version"]) == ("miss", 2)


async def test_bulk_loads_move_the_fingerprint_and_the_framework_follows_the_latest(
    lane: Lane,
) -> None:
    """Assessments posted in bulk, older or newer, under another framework: the remembered
    score follows exactly what the route computes."""
    h = lane.tenant.headers
    await seed_pm(lane.client, lane.tenant)  # latest assessment: 2026-10-01, product-management
    current = await lane.client.get("/v1/subjects/emp-1", headers=h)
    r = await lane.client.patch(  # a track both ladders have
        "/v1/subjects/emp-1",
        json={"track": "ic"},
        headers={**h, "If-Match": current.headers["etag"]},
    )
    assert r.status_code == 200
    r = await lane.client.post(
        "/v1/frameworks", json=small_framework(), headers=h, params={"publish": True}
    )
    assert r.status_code == 201
    assert outcome((await lane.get(), await lane.get())[1]) == "hit"

    def eng(when: str, rater: str) -> dict[str, Any]:
        body = assessment(role="peer", rater=rater, when=when)
        return eng_ladder(body, {"coding": 3, "design": 2, "influence": 2})

    for when, framework in (
        ("2026-08-01T00:00:00Z", "product-management"),  # older: the framework stays
        ("2026-11-01T00:00:00Z", "eng-ladder"),  # newer: scored against eng-ladder now
    ):
        bulk = [eng(when, "peer-a"), eng(when, "peer-b")]
        r = await lane.client.post("/v1/assessments/bulk", json=bulk, headers=h)
        assert r.status_code == 201, r.text
        after = await lane.get()
        assert after.status_code == 200, after.text
        assert (outcome(after), after.json()["framework"]["key"]) == ("miss", framework)
        assert without_moment(after) == without_moment(await lane.ordinary())
        assert outcome(await lane.get()) == "hit"


async def test_revoked_key_is_refused_even_for_a_remembered_score(lane: Lane) -> None:
    await seed_pm(lane.client, lane.tenant)
    token = await lane.tenant.key("analytics:read")
    reader = {"Authorization": f"Bearer {token}"}
    assert outcome(await lane.get(headers=reader)) in {"hit", "miss"}
    assert outcome(await lane.get(headers=reader)) == "hit"
    key_id = uuid.UUID(hex=token.split("_")[1])
    r = await lane.client.delete(f"/v1/api-keys/{key_id}", headers=lane.tenant.headers)
    assert r.status_code in {200, 204}, r.text
    refused = await lane.get(headers=reader)
    assert refused.status_code == 401
    assert refused.headers["content-type"] == "application/problem+json"


async def test_refusals_are_those_of_the_route(lane: Lane) -> None:
    await seed_pm(lane.client, lane.tenant)
    assert outcome(await lane.get()) == "miss"
    wrong_secret = lane.tenant.admin_key[:-4] + (
        "AAAA" if not lane.tenant.admin_key.endswith("AAAA") else "BBBB"
    )
    no_scope = await lane.tenant.key("subjects:read")
    cases = [
        ({"Authorization": f"Bearer {wrong_secret}"}, URL, 401),
        ({}, URL, 401),
        ({"Authorization": f"Bearer {no_scope}"}, URL, 403),
        (lane.other.headers, URL, 404),  # another tenant's subject does not exist for it
        (lane.tenant.headers, "/v1/subjects/nobody/score", 404),
        (lane.tenant.headers, "/v1/subjects/bad%20ref/score", 422),
    ]
    for headers, url, status in cases:
        r = await lane.client.get(url, headers=headers)
        assert (r.status_code, outcome(r)) == (status, None), (url, headers, r.text)
        assert r.headers["content-type"] == "application/problem+json"
    r = await lane.client.post(
        "/v1/subjects", json={"external_ref": "new"}, headers=lane.tenant.headers
    )
    assert r.status_code == 201
    r = await lane.get("/v1/subjects/new/score")
    assert (r.status_code, outcome(r)) == (422, None)  # no assessments: name the framework
    # Query parameters are the route's business.
    r = await lane.get(URL + "?track=ic")
    assert (r.status_code, outcome(r), r.json()["track"]) == (200, None, "ic")


async def test_tenants_sharing_one_lookup_connection_see_only_their_own(
    database: Database, settings: Settings
) -> None:
    if database.backend != "postgres":
        pytest.skip("the fast lane is Postgres only")
    # One connection in the lane's pool: it switches tenant between the requests.
    async for lane in _lane(settings.model_copy(update={"db_pool_size": 1})):
        for tenant in (lane.tenant, lane.other):
            await seed_pm(lane.client, tenant)
        body = top_marks("2026-10-20T00:00:00Z")
        r = await lane.client.post("/v1/assessments", json=body, headers=lane.other.headers)
        assert r.status_code == 201
        answers: dict[str, set[bytes]] = {"a": set(), "b": set()}
        for _ in range(3):
            for name, tenant in (("a", lane.tenant), ("b", lane.other)):
                r = await lane.get(headers=tenant.headers)
                assert r.status_code == 200 and outcome(r) in {"hit", "miss"}
                answers[name].add(without_moment(r))
        assert len(answers["a"]) == len(answers["b"]) == 1
        assert answers["a"] != answers["b"]
        lane.app.state.score_reads = None
        r = await lane.get(headers=lane.other.headers)
        assert {without_moment(r)} == answers["b"]


async def test_erased_subject_is_gone_at_once(lane: Lane) -> None:
    await seed_pm(lane.client, lane.tenant)
    assert outcome((await lane.get(), await lane.get())[1]) == "hit"
    r = await lane.client.delete("/v1/subjects/emp-1", headers=lane.tenant.headers)
    assert r.status_code == 204
    assert len(lane.reads.cache) == 0  # the erasing worker lets go of the score at once
    r = await lane.get()
    assert (r.status_code, outcome(r)) == (404, None)


async def test_another_worker_lets_go_of_an_erased_score_at_its_next_read(lane: Lane) -> None:
    await seed_pm(lane.client, lane.tenant)
    assert outcome((await lane.get(), await lane.get())[1]) == "hit"
    lane.app.state.score_reads = None  # the erasure is handled by "another worker"
    r = await lane.client.delete("/v1/subjects/emp-1", headers=lane.tenant.headers)
    assert r.status_code == 204
    lane.app.state.score_reads = lane.reads
    assert len(lane.reads.cache) == 1
    r = await lane.get()
    assert (r.status_code, outcome(r)) == (404, None)
    assert len(lane.reads.cache) == 0


async def test_remembered_scores_are_recomputed_after_the_maximum_age(lane: Lane) -> None:
    await seed_pm(lane.client, lane.tenant)
    start = datetime.now(UTC)
    lane.reads.clock = lambda: start
    assert outcome(await lane.get()) == "miss"
    lane.reads.clock = lambda: start + MAX_AGE - timedelta(microseconds=1)
    assert outcome(await lane.get()) == "hit"
    lane.reads.clock = lambda: start + MAX_AGE
    assert outcome(await lane.get()) == "miss"


async def test_a_rating_leaving_the_window_ends_the_remembered_score(lane: Lane) -> None:
    await seed_pm(lane.client, lane.tenant)
    # The manager's rating of 2026-09-01 is the first to leave the 365-day window.
    edge = datetime(2027, 9, 1, tzinfo=UTC)
    lane.reads.clock = lambda: edge - timedelta(minutes=5)
    assert outcome(await lane.get()) == "miss"
    lane.reads.clock = lambda: edge - timedelta(microseconds=1)
    inside = await lane.get()
    assert outcome(inside) == "hit"
    assert inside.json()["explanation"]["distinct_raters"] == 3
    lane.reads.clock = lambda: edge
    outside = await lane.get()
    assert outcome(outside) == "miss"
    assert outside.json()["explanation"]["distinct_raters"] == 2
    assert outside.json()["as_of"] == "2027-09-01T00:00:00Z"
    ordinary = await lane.ordinary(URL + "?as_of=2027-09-01T00:00:00Z")
    assert ordinary.content == outside.content


async def test_rate_limit_applies_to_remembered_scores(lane: Lane) -> None:
    await seed_pm(lane.client, lane.tenant)
    # One limiter for the route and the fast lane, as create_app and the lifespan share it.
    lane.app.state.rate_limiter = lane.reads.limiter = RateLimiter(per_minute=2, burst=2)
    token = await lane.tenant.key("analytics:read")
    reader = {"Authorization": f"Bearer {token}"}
    responses = [await lane.get(headers=reader) for _ in range(3)]
    assert [(r.status_code, outcome(r)) for r in responses] == [
        (200, "miss"),
        (200, "hit"),
        (429, None),
    ]
    assert responses[2].headers["content-type"] == "application/problem+json"


def test_template_puts_each_moment_in_its_place() -> None:
    window = timedelta(days=10)
    sentinel = datetime(1901, 2, 3, 4, 5, 6, 789012, tzinfo=UTC)
    start = sentinel - window
    body = (
        b'{"as_of":"1901-02-03T04:05:06.789012Z","x":1,'
        b'"explanation":{"window_start":"1901-01-24T04:05:06.789012Z",'
        b'"as_of":"1901-02-03T04:05:06.789012Z"}}'
    )
    assert start.isoformat().startswith("1901-01-24")
    template = Template.cut(body, window)
    assert template is not None
    moment = datetime(2026, 5, 6, 7, 8, 9, tzinfo=UTC)
    assert template.fill(moment) == (
        b'{"as_of":"2026-05-06T07:08:09Z","x":1,'
        b'"explanation":{"window_start":"2026-04-26T07:08:09Z",'
        b'"as_of":"2026-05-06T07:08:09Z"}}'
    )
    # A body where the moment does not appear exactly as expected is not kept.
    assert Template.cut(b'{"as_of":"1901-02-03T04:05:06.789012Z"}', window) is None


def test_stable_until_is_the_next_rating_to_enter_or_leave_the_window() -> None:
    settings = ScoringSettings(window_days=10)
    now = datetime(2026, 1, 20, tzinfo=UTC)

    def rating(day: int) -> Rating:
        return Rating("c", 2.0, "r", "manager", datetime(2026, 1, day, tzinfo=UTC), 0)

    # Jan 5 leaves on Jan 15 (past), Jan 12 leaves on Jan 22, Jan 25 enters on Jan 25.
    assert stable_until([rating(5), rating(12), rating(25)], settings, now) == datetime(
        2026, 1, 22, tzinfo=UTC
    )
    assert stable_until([rating(25)], settings, now) == datetime(2026, 1, 25, tzinfo=UTC)
    assert stable_until([rating(1)], settings, now).year == 9999


def test_cache_stays_within_its_byte_budget() -> None:
    cache = ScoreCache(max_bytes=250)
    tenant, fp = uuid.uuid4(), (uuid.uuid4(), 1, uuid.uuid4(), 1, (uuid.uuid4(),))
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    never = datetime(9999, 1, 1, tzinfo=UTC)
    from app.scores.cache import Entry

    for i in range(5):
        template = Template((b"x" * 100,), (), timedelta(days=1))
        cache.put((tenant, f"s{i}"), Entry(fp, moment, never, template))
    assert cache.bytes <= 250
    assert len(cache) == 2
    assert cache.get((tenant, "s4"), fp, moment) is not None
    assert cache.get((tenant, "s0"), fp, moment) is None
    other = (fp[0], 2, fp[2], fp[3], fp[4])
    assert cache.get((tenant, "s4"), other, moment) is None  # another fingerprint
    assert cache.get((tenant, "s4"), fp, never) is None  # past its span
