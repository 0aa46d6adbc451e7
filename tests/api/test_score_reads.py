"""Score reads through the ordinary route: remembered renderings, ETags and 304s.

A repeated read is answered from the worker's memo only while the fingerprint read with it (the
subject, its assessments, the framework version) and the span of moments in which the same
ratings count still hold; otherwise it is computed again. Every answer equals the one computed
with the memo turned off (``SCORE_CACHE_MB=0``), and every refusal is the route's own. These run
on Postgres and on SQLite (where a digest of the ratings stands in for the trigger's revision).
"""

import logging
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from app.auth.ratelimit import RateLimiter
from app.config import Settings
from app.main import create_app
from app.scores import repository as score_repository
from app.scores.memo import (
    MAX_AGE,
    SENTINEL,
    Entry,
    ScoreMemo,
    Template,
    etag_matches,
    make_etag,
    stable_span,
)
from app.scoring import Rating
from tests.api.test_scores import PM_RATINGS, ratings, seed_pm
from tests.api.test_subjects_assessments import assessment
from tests.conftest import Tenant
from tests.factories import small_framework

pytestmark = pytest.mark.anyio

URL = "/v1/subjects/emp-1/score"


def top_marks(when: str) -> dict[str, Any]:
    """A second manager's assessment of emp-1 with the top rating everywhere."""
    return assessment(rater="mgr-2", when=when, ratings=ratings({k: 5 for k in PM_RATINGS}))


def eng_ladder(body: dict[str, Any], values: dict[str, int]) -> dict[str, Any]:
    """The same assessment made against the small test framework instead."""
    return {**body, "framework": {"key": "eng-ladder"}, "ratings": ratings(values)}


def outcome(response: httpx.Response) -> str | None:
    """hit, miss or not-modified, as the score route reports it in Server-Timing."""
    found = re.search(r'memo;desc="([\w-]+)"', response.headers.get("server-timing", ""))
    return found.group(1) if found else None


def without_moment(response: httpx.Response) -> bytes:
    """The body with its as_of and window start cut out (they are the request's moment)."""
    data = response.json()
    return response.content.replace(data["as_of"].encode(), b"AS_OF").replace(
        data["explanation"]["window_start"].encode(), b"START"
    )


def make_app(
    settings: Settings, engine: AsyncEngine, sm: async_sessionmaker[AsyncSession], **changes: Any
) -> Any:
    """Another app (another worker) on the test's database connection."""
    app = create_app(settings.model_copy(update=changes))
    app.state.engine = engine
    app.state.sessionmaker = sm
    return app


@pytest.fixture
async def computed(
    settings: Settings, engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession]
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the same service with the memo turned off: every read is computed."""
    app = make_app(settings, engine, sessionmaker, score_cache_mb=0)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


async def test_second_read_comes_from_memory_and_matches_the_computed_one(
    client: httpx.AsyncClient, computed: httpx.AsyncClient, tenant_a: Tenant, app: Any
) -> None:
    await seed_pm(client, tenant_a)
    h = tenant_a.headers
    first, second = await client.get(URL, headers=h), await client.get(URL, headers=h)
    assert (first.status_code, outcome(first)) == (200, "miss")
    assert (second.status_code, outcome(second)) == (200, "hit")
    assert second.headers["content-type"] == "application/json"
    assert (app.state.score_memo.hits, app.state.score_memo.misses) == (1, 1)
    plain = await computed.get(URL, headers=h)
    assert outcome(plain) == "miss"
    assert without_moment(first) == without_moment(second) == without_moment(plain)
    assert first.headers["etag"] == second.headers["etag"] == plain.headers["etag"]
    # The moment is the request's own, not the one the score was first computed at.
    moments = [datetime.fromisoformat(r.json()["as_of"]) for r in (first, second)]
    assert moments[0] < moments[1] <= datetime.now(UTC)
    assert second.json()["explanation"]["as_of"] == second.json()["as_of"]
    start = datetime.fromisoformat(second.json()["explanation"]["window_start"])
    assert moments[1] - start == timedelta(days=365)


async def test_keys_from_memory_on_a_session_bound_to_one_connection(
    client: httpx.AsyncClient, tenant_a: Tenant, app: Any
) -> None:
    """With the key answered from memory the request begins no transaction; a session bound
    to one connection (as the tests' sessions are) is not an engine to send the statement
    alone on, so the remembered read takes the request's transaction instead of failing."""
    await seed_pm(client, tenant_a)
    app.state.key_cache.trust()  # what the key listener does once it listens
    h = tenant_a.headers
    reads = [await client.get(URL, headers=h) for _ in range(3)]
    assert [(r.status_code, outcome(r)) for r in reads] == [
        (200, "miss"),
        (200, "hit"),
        (200, "hit"),
    ]


async def test_a_new_assessment_is_seen_by_the_next_read(
    client: httpx.AsyncClient, computed: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    await seed_pm(client, tenant_a)
    h = tenant_a.headers
    before = (await client.get(URL, headers=h), await client.get(URL, headers=h))[1]
    assert outcome(before) == "hit"
    r = await client.post("/v1/assessments", json=top_marks("2026-10-15T00:00:00Z"), headers=h)
    assert r.status_code == 201
    after = await client.get(URL, headers=h)
    assert outcome(after) == "miss"
    assert after.json()["level_index"] > before.json()["level_index"]
    assert after.headers["etag"] != before.headers["etag"]
    assert without_moment(after) == without_moment(await computed.get(URL, headers=h))


async def test_a_changed_subject_is_seen_by_the_next_read(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    await seed_pm(client, tenant_a)
    h = tenant_a.headers
    assert (await client.get(URL, headers=h)).json()["track"] == "management"
    current = await client.get("/v1/subjects/emp-1", headers=h)
    r = await client.patch(
        "/v1/subjects/emp-1",
        json={"track": "ic"},
        headers={**h, "If-Match": current.headers["etag"]},
    )
    assert r.status_code == 200
    after = await client.get(URL, headers=h)
    assert (outcome(after), after.json()["track"]) == ("miss", "ic")


async def test_a_newly_published_version_is_seen_by_the_next_read(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    h = tenant_a.headers
    r = await client.post(
        "/v1/frameworks", json=small_framework(), headers=h, params={"publish": True}
    )
    assert r.status_code == 201
    assert (
        await client.post("/v1/subjects", json={"external_ref": "emp-1"}, headers=h)
    ).status_code == 201
    body = eng_ladder(
        assessment(role="manager", when="2026-10-01T00:00:00Z"),
        {"coding": 2, "design": 2, "influence": 1},
    )
    assert (await client.post("/v1/assessments", json=body, headers=h)).status_code == 201
    first = (await client.get(URL, headers=h), await client.get(URL, headers=h))[1]
    assert (outcome(first), first.json()["framework"]["version"]) == ("hit", 1)
    assert (await client.post("/v1/frameworks/eng-ladder/versions", headers=h)).status_code == 201
    r = await client.post("/v1/frameworks/eng-ladder/versions/2/publish", headers=h)
    assert r.status_code == 200
    after = await client.get(URL, headers=h)
    assert (outcome(after), after.json()["framework"]["version"]) == ("miss", 2)


async def test_bulk_loads_move_the_fingerprint_and_the_framework_follows_the_latest(
    client: httpx.AsyncClient, computed: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    """Assessments posted in bulk, older or newer, under another framework: the remembered
    score follows exactly what is computed."""
    h = tenant_a.headers
    await seed_pm(client, tenant_a)  # latest assessment: 2026-10-01, product-management
    current = await client.get("/v1/subjects/emp-1", headers=h)
    r = await client.patch(  # a track both ladders have
        "/v1/subjects/emp-1",
        json={"track": "ic"},
        headers={**h, "If-Match": current.headers["etag"]},
    )
    assert r.status_code == 200
    r = await client.post(
        "/v1/frameworks", json=small_framework(), headers=h, params={"publish": True}
    )
    assert r.status_code == 201
    assert outcome((await client.get(URL, headers=h), await client.get(URL, headers=h))[1]) == "hit"

    def eng(when: str, rater: str) -> dict[str, Any]:
        body = assessment(role="peer", rater=rater, when=when)
        return eng_ladder(body, {"coding": 3, "design": 2, "influence": 2})

    for when, framework in (
        ("2026-08-01T00:00:00Z", "product-management"),  # older: the framework stays
        ("2026-11-01T00:00:00Z", "eng-ladder"),  # newer: scored against eng-ladder now
    ):
        bulk = [eng(when, "peer-a"), eng(when, "peer-b")]
        r = await client.post("/v1/assessments/bulk", json=bulk, headers=h)
        assert r.status_code == 201, r.text
        after = await client.get(URL, headers=h)
        assert after.status_code == 200, after.text
        assert after.json()["framework"]["key"] == framework
        assert without_moment(after) == without_moment(await computed.get(URL, headers=h))
        assert outcome(await client.get(URL, headers=h)) == "hit"


async def test_revoked_key_is_refused_even_for_a_remembered_score(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    await seed_pm(client, tenant_a)
    token = await tenant_a.key("analytics:read")
    reader = {"Authorization": f"Bearer {token}"}
    assert (await client.get(URL, headers=reader)).status_code == 200
    assert outcome(await client.get(URL, headers=reader)) == "hit"
    key_id = uuid.UUID(hex=token.split("_")[1])
    r = await client.delete(f"/v1/api-keys/{key_id}", headers=tenant_a.headers)
    assert r.status_code in {200, 204}, r.text
    refused = await client.get(URL, headers=reader)
    assert refused.status_code == 401
    assert refused.headers["content-type"] == "application/problem+json"


async def test_refusals_are_the_ordinary_ones(
    client: httpx.AsyncClient, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    await seed_pm(client, tenant_a)
    h = tenant_a.headers
    first = await client.get(URL, headers=h)
    assert outcome(first) == "miss"
    etag = {"If-None-Match": first.headers["etag"]}
    wrong_secret = tenant_a.admin_key[:-4] + (
        "AAAA" if not tenant_a.admin_key.endswith("AAAA") else "BBBB"
    )
    no_scope = await tenant_a.key("subjects:read")
    cases = [
        ({"Authorization": f"Bearer {wrong_secret}"}, URL, 401),
        ({}, URL, 401),
        ({"Authorization": f"Bearer {no_scope}"}, URL, 403),
        (tenant_b.headers, URL, 404),  # another tenant's subject does not exist for it
        (h, "/v1/subjects/nobody/score", 404),
        (h, "/v1/subjects/bad%20ref/score", 422),
    ]
    for headers, url, status in cases:
        for extra in ({}, etag):  # a known ETag changes nothing about a refusal
            r = await client.get(url, headers={**headers, **extra})
            assert r.status_code == status, (url, headers, extra, r.text)
            assert r.headers["content-type"] == "application/problem+json"
            assert "etag" not in r.headers
    r = await client.post("/v1/subjects", json={"external_ref": "new"}, headers=h)
    assert r.status_code == 201
    r = await client.get("/v1/subjects/new/score", headers=h)
    assert r.status_code == 422  # no assessments: name the framework
    assert r.json()["errors"][0]["loc"] == ["query", "framework"]
    r = await client.get(URL, params={"framework": "nope"}, headers=h)
    assert r.status_code == 404
    r = await client.get(URL, params={"framework": "product-management", "version": 99}, headers=h)
    assert r.status_code == 404
    r = await client.get(URL, params={"track": "nope"}, headers=h)
    assert r.status_code == 422
    # Query parameters are remembered apart.
    r = await client.get(URL, params={"track": "ic"}, headers=h)
    assert (r.status_code, outcome(r), r.json()["track"]) == (200, "miss", "ic")
    r = await client.get(URL, params={"track": "ic"}, headers=h)
    assert (outcome(r), r.json()["track"]) == ("hit", "ic")
    assert r.headers["etag"] != first.headers["etag"]
    assert (await client.get(URL, headers=h)).json()["track"] == "management"


async def test_tenants_see_only_their_own(
    client: httpx.AsyncClient, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    for tenant in (tenant_a, tenant_b):
        await seed_pm(client, tenant)
    r = await client.post(
        "/v1/assessments", json=top_marks("2026-10-20T00:00:00Z"), headers=tenant_b.headers
    )
    assert r.status_code == 201
    answers: dict[str, set[bytes]] = {"a": set(), "b": set()}
    for _ in range(3):
        for name, tenant in (("a", tenant_a), ("b", tenant_b)):
            r = await client.get(URL, headers=tenant.headers)
            assert r.status_code == 200
            answers[name].add(without_moment(r))
    assert len(answers["a"]) == len(answers["b"]) == 1
    assert answers["a"] != answers["b"]


async def test_erased_subject_is_gone_at_once(
    client: httpx.AsyncClient, tenant_a: Tenant, app: Any
) -> None:
    await seed_pm(client, tenant_a)
    h = tenant_a.headers
    assert outcome((await client.get(URL, headers=h), await client.get(URL, headers=h))[1]) == "hit"
    assert (await client.delete("/v1/subjects/emp-1", headers=h)).status_code == 204
    assert len(app.state.score_memo) == 0  # the erasing worker lets go of the score at once
    r = await client.get(URL, headers=h)
    assert r.status_code == 404


async def test_another_worker_lets_go_of_an_erased_score_at_its_next_read(
    client: httpx.AsyncClient,
    tenant_a: Tenant,
    app: Any,
    settings: Settings,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    await seed_pm(client, tenant_a)
    h = tenant_a.headers
    assert outcome((await client.get(URL, headers=h), await client.get(URL, headers=h))[1]) == "hit"
    other = make_app(settings, engine, sessionmaker)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=other), base_url="http://t"
    ) as c:
        assert (await c.delete("/v1/subjects/emp-1", headers=h)).status_code == 204
    assert len(app.state.score_memo) == 1
    for extra in ({}, {"If-None-Match": "*"}):
        r = await client.get(URL, headers={**h, **extra})
        assert r.status_code == 404
        assert len(app.state.score_memo) == 0


async def test_remembered_scores_are_recomputed_after_the_maximum_age(
    client: httpx.AsyncClient, tenant_a: Tenant, app: Any
) -> None:
    await seed_pm(client, tenant_a)
    memo: ScoreMemo = app.state.score_memo
    start = 1000.0
    memo.clock = lambda: start
    assert outcome(await client.get(URL, headers=tenant_a.headers)) == "miss"
    memo.clock = lambda: start + MAX_AGE.total_seconds() - 0.001
    assert outcome(await client.get(URL, headers=tenant_a.headers)) == "hit"
    memo.clock = lambda: start + MAX_AGE.total_seconds()
    assert outcome(await client.get(URL, headers=tenant_a.headers)) == "miss"


async def test_a_rating_leaving_the_window_ends_the_remembered_score(
    client: httpx.AsyncClient, computed: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    await seed_pm(client, tenant_a)
    h = tenant_a.headers
    # The manager's rating of 2026-09-01 is the first to leave the 365-day window.
    edge = datetime(2027, 9, 1, tzinfo=UTC)

    def at(moment: datetime) -> dict[str, str]:
        return {"as_of": moment.isoformat()}

    r = await client.get(URL, params=at(edge - timedelta(minutes=5)), headers=h)
    assert outcome(r) == "miss"
    inside = await client.get(URL, params=at(edge - timedelta(microseconds=1)), headers=h)
    assert outcome(inside) == "hit"
    assert inside.json()["explanation"]["distinct_raters"] == 3
    assert inside.headers["etag"] == r.headers["etag"]  # the same numbers, the same ETag
    outside = await client.get(URL, params=at(edge), headers=h)
    assert outcome(outside) == "miss"
    assert outside.json()["explanation"]["distinct_raters"] == 2
    assert outside.json()["as_of"] == "2027-09-01T00:00:00Z"
    assert outside.headers["etag"] != inside.headers["etag"]
    plain = await computed.get(URL, params=at(edge), headers=h)
    assert plain.content == outside.content
    # An offset other than UTC is answered as given, from memory too.
    local = await client.get(URL, params={"as_of": "2027-09-01T02:00:00+02:00"}, headers=h)
    assert outcome(local) == "hit"
    assert local.json()["as_of"] == "2027-09-01T02:00:00+02:00"
    plain = await computed.get(URL, params={"as_of": "2027-09-01T02:00:00+02:00"}, headers=h)
    assert plain.content == local.content


async def test_rate_limit_applies_to_remembered_scores(
    client: httpx.AsyncClient, tenant_a: Tenant, app: Any
) -> None:
    await seed_pm(client, tenant_a)
    app.state.rate_limiter = RateLimiter(per_minute=2, burst=2)
    token = await tenant_a.key("analytics:read")
    reader = {"Authorization": f"Bearer {token}"}
    responses = [await client.get(URL, headers=reader) for _ in range(3)]
    assert [r.status_code for r in responses] == [200, 200, 429]
    assert outcome(responses[1]) == "hit"
    assert responses[2].headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("memo_mb", [64, 0])
async def test_if_none_match_answers_304_while_the_score_holds(
    client: httpx.AsyncClient,
    tenant_a: Tenant,
    settings: Settings,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    memo_mb: int,
) -> None:
    await seed_pm(client, tenant_a)
    h = tenant_a.headers
    app = make_app(settings, engine, sessionmaker, score_cache_mb=memo_mb)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        first = await c.get(URL, headers=h)
        etag = first.headers["etag"]
        assert etag.startswith('W/"')
        for sent in (etag, etag.removeprefix("W/"), f'"other", {etag}', "*"):
            r = await c.get(URL, headers={**h, "If-None-Match": sent})
            assert (r.status_code, r.content, r.headers["etag"]) == (304, b"", etag), sent
            assert outcome(r) == "not-modified"
            assert "content-type" not in r.headers
        r = await c.get(URL, headers={**h, "If-None-Match": '"other"'})
        assert (r.status_code, r.headers["etag"]) == (200, etag)
        body = top_marks("2026-10-15T00:00:00Z")
        assert (await client.post("/v1/assessments", json=body, headers=h)).status_code == 201
        r = await c.get(URL, headers={**h, "If-None-Match": etag})
        assert r.status_code == 200
        assert r.headers["etag"] != etag
        # Another worker (or one that restarted) names the same state by the same ETag.
        again = await client.get(URL, headers={**h, "If-None-Match": r.headers["etag"]})
        assert again.status_code == 304


async def test_the_score_route_declares_etag_and_304(app: Any) -> None:
    op = app.openapi()["paths"]["/v1/subjects/{ref}/score"]["get"]
    assert "ETag" in op["responses"]["200"]["headers"]
    assert "ETag" in op["responses"]["304"]["headers"]
    assert "content" not in op["responses"]["304"]
    assert op["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ScoreRead"
    }
    # The shared query parameters keep their names and order on every score read.
    names = [p["name"] for p in op["parameters"]]
    assert names == ["ref", "level", "framework", "version", "as_of", "track", "if-none-match"]
    expected = {
        "gaps": ["ref", "target_level", "framework", "version", "as_of", "track", "if-none-match"],
        "recommendations": [
            *("ref", "target_level", "budget_hours", "max_steps"),
            *("framework", "version", "as_of", "track", "if-none-match"),
        ],
        "history": ["ref", "framework", "version", "track", "if-none-match"],
    }
    for path, wanted in expected.items():
        params = app.openapi()["paths"][f"/v1/subjects/{{ref}}/{path}"]["get"]["parameters"]
        assert [p["name"] for p in params] == wanted


def test_template_puts_each_moment_in_its_place() -> None:
    window = timedelta(days=10)
    body = (
        b'{"as_of":"1901-02-03T04:05:06.789012Z","x":1,'
        b'"explanation":{"window_start":"1901-01-24T04:05:06.789012Z",'
        b'"as_of":"1901-02-03T04:05:06.789012Z"}}'
    )
    assert (SENTINEL - window).isoformat().startswith("1901-01-24")
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


def test_stable_span_is_between_the_ratings_entering_and_leaving_the_window() -> None:
    now = datetime(2026, 1, 20, tzinfo=UTC)

    def rating(day: int) -> Rating:
        return Rating("c", 2.0, "r", "manager", datetime(2026, 1, day, tzinfo=UTC), 0)

    # Jan 5 left on Jan 15, Jan 12 leaves on Jan 22, Jan 25 enters on Jan 25.
    assert stable_span([rating(5), rating(12), rating(25)], 10, now) == (
        datetime(2026, 1, 15, tzinfo=UTC),
        datetime(2026, 1, 22, tzinfo=UTC),
    )
    assert stable_span([rating(25)], 10, now)[1] == datetime(2026, 1, 25, tzinfo=UTC)
    since, until = stable_span([rating(1)], 10, now)
    assert (since, until.year) == (datetime(2026, 1, 11, tzinfo=UTC), 9999)
    # The edge itself belongs to the new span.
    assert stable_span([rating(12)], 10, datetime(2026, 1, 22, tzinfo=UTC))[0] == datetime(
        2026, 1, 22, tzinfo=UTC
    )


def test_etag_matching_is_weak_and_takes_lists() -> None:
    fp = (uuid.uuid4(), 1, 2, uuid.uuid4(), 1, None)
    span = (datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC))
    etag = make_etag(fp, (None, None, None), span)
    assert etag == make_etag(fp, (None, None, None), span)
    assert etag != make_etag((*fp[:5], f"{uuid.uuid4()}:1"), (None, None, None), span)
    assert etag != make_etag(fp, (None, None, "ic"), span)
    assert etag != make_etag(fp, (None, None, None), (span[0], datetime(2026, 3, 1, tzinfo=UTC)))
    assert etag_matches(etag, etag) and etag_matches(etag.removeprefix("W/"), etag)
    assert etag_matches(f'"x", {etag}', etag) and etag_matches(" * ", etag)
    assert not etag_matches(None, etag) and not etag_matches('"x"', etag)


def test_memo_stays_within_its_byte_budget_and_zero_turns_it_off() -> None:
    memo = ScoreMemo(max_bytes=250)
    tenant = uuid.uuid4()
    fp = (uuid.uuid4(), 1, 1, uuid.uuid4(), 1, None)
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    never = datetime(9999, 1, 1, tzinfo=UTC)

    def entry() -> Entry:
        return Entry(
            fp, moment, never, 'W/"e"', Template((b"x" * 100,), (), timedelta(days=1)), memo.clock()
        )

    variant = (None, None, None)
    for i in range(5):
        memo.put((tenant, f"s{i}"), variant, entry())
    assert memo.bytes <= 250
    assert len(memo) == 2
    assert memo.get((tenant, "s4"), variant, moment) is not None
    assert memo.get((tenant, "s0"), variant, moment) is None
    assert memo.get((tenant, "s4"), (None, None, "ic"), moment) is None  # another variant
    assert memo.get((tenant, "s4"), variant, never) is None  # past its span
    memo.forget((tenant, "s4"))
    assert (len(memo), memo.bytes) == (1, 100)
    off = ScoreMemo(max_bytes=0)
    off.put((tenant, "s"), variant, entry())
    assert len(off) == 0 and not off.enabled


@pytest.mark.parametrize(
    "error",
    [TimeoutError(), asyncpg.InternalClientError("cannot switch to state 12")],
    ids=["timeout", "out-of-step"],
)
async def test_a_database_failure_during_the_read_is_503(
    client: httpx.AsyncClient,
    tenant_a: Tenant,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    error: Exception,
) -> None:
    await seed_pm(client, tenant_a)
    assert (await client.get(URL, headers=tenant_a.headers)).status_code == 200

    async def fail(*_args: Any, **_kwargs: Any) -> None:
        raise error

    monkeypatch.setattr(score_repository, "score_inputs", fail)
    with caplog.at_level(logging.WARNING):
        r = await client.get(URL, headers=tenant_a.headers)
    assert r.status_code == 503, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert int(r.headers["retry-after"]) > 0
    assert r.json()["type"].endswith("/unavailable")
    assert not [rec for rec in caplog.records if rec.levelno >= logging.ERROR], caplog.text
