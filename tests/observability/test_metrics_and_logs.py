"""Issue 16: after a scenario of requests, /metrics has each series with the counts made, and
every log line is JSON carrying the request id its response returned, with no secret, name,
ref or evidence text anywhere in the logs."""

import io
import json
import logging
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from app.auth.keys import DEFAULT_KEY_PREFIX, parse_token
from app.config import Settings
from app.main import create_app
from app.observability.logging import JsonFormatter
from app.webhooks.dispatcher import Dispatcher
from tests.conftest import Tenant

pytestmark = pytest.mark.anyio

METRICS_TOKEN = "scrape-token-0123456789"
# What must never reach a log line: a person's name and ref, evidence text, keys.
NAME = "Zebulon Quixote-Marchetti"
REF = "pii-ref-7731"
BULK_REF = "pii-bulk-4410"
EVIDENCE = "EVIDENCE: led the Q3 pricing overhaul with finance"
RATER = "rater-pii-5521"

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(text: str) -> Samples:
    """Every sample of an exposition, by name and sorted labels."""
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(s: Samples, name: str, **labels: str) -> float:
    return s.get((name, tuple(sorted(labels.items()))), 0.0)


def total(s: Samples, name: str, **labels: str) -> float:
    """The sum over every sample of ``name`` whose labels include ``labels``."""
    return sum(
        v
        for (n, ls), v in s.items()
        if n == name and all((k, want) in ls for k, want in labels.items())
    )


@pytest.fixture
def observed_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"metrics_token": METRICS_TOKEN, "webhooks_allow_private_targets": True}
    )


@pytest.fixture
def observed_app(
    observed_settings: Settings,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> Any:
    application = create_app(observed_settings)
    application.state.engine = engine
    application.state.sessionmaker = sessionmaker
    return application


@pytest.fixture
async def observed(observed_app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=observed_app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """Everything logged at the service's default level, formatted as the server formats it."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    # The test's own HTTP client logs the URLs it calls; the service's lines are what count.
    handler.addFilter(lambda record: not record.name.startswith(("httpx", "httpcore")))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


async def scrape(client: httpx.AsyncClient) -> Samples:
    r = await client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return samples(r.text)


def person(ref: str) -> dict[str, Any]:
    return {
        "external_ref": ref,
        "display_name": NAME,
        "track": "ic",
        "current_level": "pm",
        "attributes": {"team": "pricing"},
    }


def assessment(ref: str, value: int = 3) -> dict[str, Any]:
    return {
        "subject_ref": ref,
        "framework": {"key": "product-management"},
        "rater_ref": RATER,
        "rater_role": "manager",
        "assessed_at": "2026-10-01T09:00:00Z",
        "ratings": [
            {"competency": "execution", "proficiency": value, "evidence": EVIDENCE},
            {"competency": "communication", "proficiency": value},
        ],
    }


async def test_metrics_count_a_scenario_and_logs_follow_each_request(
    observed: httpx.AsyncClient,
    tenant_a: Tenant,
    log_lines: io.StringIO,
    observed_settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    h = tenant_a.headers
    before = await scrape(observed)
    responses: list[httpx.Response] = []

    async def call(method: str, url: str, **kwargs: Any) -> httpx.Response:
        r = await observed.request(method, url, **kwargs)
        responses.append(r)
        return r

    r = await call(
        "POST",
        "/v1/webhooks",
        json={"url": "http://127.0.0.1:9/hooks", "events": ["assessment.created"]},
        headers=h,
    )
    assert r.status_code == 201, r.text
    assert (await call("POST", "/v1/subjects", json=person(REF), headers=h)).status_code == 201
    r = await call(
        "POST",
        "/v1/assessments",
        json=assessment(REF),
        headers={**h, "X-Request-ID": "lb-7f3a9c21-req"},
    )
    assert r.status_code == 201, r.text
    assert r.headers["x-request-id"] == "lb-7f3a9c21-req"
    for _ in range(3):
        r = await call("GET", f"/v1/subjects/{REF}/score", headers=h)
        assert r.status_code == 200, r.text
    r = await call(
        "POST", "/v1/subjects/bulk", json=[person(f"{BULK_REF}-{i}") for i in range(3)], headers=h
    )
    assert r.status_code == 201, r.text
    bulk = [assessment(f"{BULK_REF}-{i}", 2) for i in range(3)]
    r = await call("POST", "/v1/assessments/bulk", json=bulk, headers=h)
    assert r.status_code == 201, r.text
    r = await call(
        "POST",
        "/v1/cohorts/evaluate",
        json={"framework": {"key": "product-management"}},
        headers=h,
    )
    assert r.status_code == 200, r.text
    cohort_size = len(r.json()["people"])
    assert cohort_size == 4
    # Errors: a bad key, an unknown person, invalid input, a path no route has, a request id
    # that is not safe to repeat.
    bad_key = {"Authorization": "Bearer cl_nope_nope", "X-Request-ID": "x" * 500}
    r = await call("GET", f"/v1/subjects/{REF}/score", headers=bad_key)
    assert r.status_code == 401
    assert r.headers["x-request-id"] != "x" * 500
    r = await call("GET", "/v1/subjects/pii-nobody-9/score", headers=h)
    assert r.status_code == 404
    r = await call("POST", "/v1/subjects", json={"external_ref": REF, "nonsense": 1}, headers=h)
    assert r.status_code == 422
    r = await call("GET", f"/nowhere/{REF}", headers={"X-Request-ID": "bad id\twith tab"})
    assert r.status_code == 404
    assert (await call("DELETE", f"/v1/subjects/{REF}", headers=h)).status_code == 204
    # One dispatcher round: the receiver is not listening, so every attempt fails.
    attempts = await Dispatcher(sessionmaker, observed_settings).dispatch_once()
    assert attempts >= 1

    after = await scrape(observed)

    def delta(name: str, **labels: str) -> float:
        return total(after, name, **labels) - total(before, name, **labels)

    # Requests: by route template, method and status; the first scrape counts too.
    made = Counter((r.request.method, r.status_code) for r in responses)
    assert delta("ladder_http_requests_total") == len(responses) + 1
    score_route = "/v1/subjects/{ref}/score"
    assert delta("ladder_http_requests_total", route=score_route, method="GET", status="200") == 3
    assert delta("ladder_http_requests_total", route=score_route, status="401") == 1
    assert delta("ladder_http_requests_total", route=score_route, status="404") == 1
    assert delta("ladder_http_requests_total", route="unmatched", status="404") == 1
    assert delta("ladder_http_requests_total", route="/metrics", status="200") == 1
    assert delta("ladder_http_requests_total", method="POST") == sum(
        n for (method, _), n in made.items() if method == "POST"
    )
    assert delta("ladder_http_request_duration_seconds_count", route=score_route) == 5
    assert delta("ladder_http_request_duration_seconds_bucket", route=score_route, le="+Inf") == 5
    assert delta("ladder_http_request_duration_seconds_sum", route=score_route) > 0
    # Bulk rows, cohorts, webhook attempts and the outbox read at scrape time.
    assert delta("ladder_bulk_items_total", resource="subjects", outcome="created") == 3
    assert delta("ladder_bulk_items_total", resource="assessments", outcome="created") == 3
    assert delta("ladder_cohort_subjects_count") == 1
    assert delta("ladder_cohort_subjects_sum") == cohort_size
    assert delta("ladder_cohort_duration_seconds_count") == 1
    assert delta("ladder_scoring_duration_seconds_count", kind="cohort") == 1
    # The three identical score reads: computed once, then answered from the memo.
    assert delta("ladder_score_memo_lookups_total", outcome="miss") == 1
    assert delta("ladder_score_memo_lookups_total", outcome="hit") == 2
    assert delta("ladder_scoring_duration_seconds_count", kind="subject") == 1
    assert delta("ladder_webhook_attempts_total", outcome="failed") == attempts
    assert value(after, "ladder_webhook_outbox_pending") >= 1
    assert value(after, "ladder_webhook_outbox_oldest_due_seconds") >= 0
    # Series present though this scenario cannot move them in process (see the worker test).
    for name in (
        "ladder_db_pool_connections_in_use",
        "ladder_db_pool_checkouts_waiting",
        "ladder_rate_limit_refusals_total",
        "ladder_webhook_outbox_due",
    ):
        assert any(n == name for n, _ in after), name
    # No label names a person: only templates, methods, statuses and fixed words.
    for (_, labels), _v in after.items():
        for _k, label in labels:
            # Every personal value of the scenario is marked "pii-" (a route template may well
            # say "rater", as /v1/calibration/rater-effects does).
            assert "pii-" not in label and NAME not in label and EVIDENCE not in label, label

    # Logs: every line is JSON; each response's request id is on exactly one request line,
    # with its status, route template, method, duration and size.
    lines = log_lines.getvalue().splitlines()
    records = [json.loads(line) for line in lines]
    assert all({"time", "level", "logger", "message"} <= rec.keys() for rec in records)
    request_lines = [rec for rec in records if rec["logger"] == "app.request"]
    by_id = {}
    for rec in request_lines:
        assert rec["request_id"] not in by_id, "one line per request"
        by_id[rec["request_id"]] = rec
    for r in responses:
        rid = r.headers["x-request-id"]
        rec = by_id[rid]
        assert rec["status"] == r.status_code
        assert rec["method"] == r.request.method
        assert rec["bytes"] == len(r.content)
        assert rec["duration_ms"] >= 0
        assert rec["route"].startswith("/") or rec["route"] == "unmatched"
        if r.headers.get("content-type") == "application/problem+json":
            assert r.json()["request_id"] == rid
    authenticated = by_id[responses[1].headers["x-request-id"]]
    assert authenticated["tenant_id"] == str(tenant_a.id)
    assert "key_id" in authenticated
    # Never a secret, a name, a ref, a rater or evidence text, in any line.
    text = log_lines.getvalue()
    parsed = parse_token(tenant_a.admin_key, DEFAULT_KEY_PREFIX)
    assert parsed is not None
    secret = parsed[1]
    for forbidden in (tenant_a.admin_key, secret, NAME, REF, BULK_REF, RATER, EVIDENCE, "Bearer"):
        assert forbidden not in text, forbidden


async def test_metrics_need_the_token(
    observed: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    assert (await observed.get("/metrics")).status_code == 401
    wrong = {"Authorization": "Bearer not-the-token-at-all"}
    r = await observed.get("/metrics", headers=wrong)
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/problem+json"
    # Without METRICS_TOKEN there is nothing to scrape.
    r = await client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert r.status_code == 404


async def test_an_unhandled_error_is_counted_and_logged_with_its_id(
    observed_app: Any, observed: httpx.AsyncClient, log_lines: io.StringIO
) -> None:
    async def broken() -> None:
        raise RuntimeError("boom")

    observed_app.add_api_route("/v1/broken-for-test", broken, methods=["GET"])
    before = await scrape(observed)
    r = await observed.get("/v1/broken-for-test", headers={"X-Request-ID": "trace-me-500"})
    assert r.status_code == 500
    assert r.json()["request_id"] == "trace-me-500"
    after = await scrape(observed)
    name, labels = "ladder_http_requests_total", {"route": "/v1/broken-for-test", "status": "500"}
    assert total(after, name, **labels) - total(before, name, **labels) == 1
    records = [json.loads(line) for line in log_lines.getvalue().splitlines()]
    mine = [rec for rec in records if rec.get("request_id") == "trace-me-500"]
    assert any("exc_info" in rec and "RuntimeError" in rec["exc_info"] for rec in mine)
    assert [rec["status"] for rec in mine if rec["logger"] == "app.request"] == [500]


async def test_rate_limit_refusals_are_counted(
    settings: Settings,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    tenant_a: Tenant,
) -> None:
    limited = settings.model_copy(
        update={"metrics_token": METRICS_TOKEN, "rate_limit_per_minute": 1, "rate_limit_burst": 1}
    )
    application = create_app(limited)
    application.state.engine = engine
    application.state.sessionmaker = sessionmaker
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        before = await scrape(c)
        statuses = [
            (await c.get("/v1/frameworks", headers=tenant_a.headers)).status_code for _ in range(3)
        ]
        after = await scrape(c)
    assert statuses.count(429) >= 1
    name = "ladder_rate_limit_refusals_total"
    assert total(after, name) - total(before, name) == statuses.count(429)


def test_log_lines_name_the_trace_when_traces_are_on(log_lines: io.StringIO) -> None:
    from opentelemetry.sdk.trace import TracerProvider

    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("request") as span:
        logging.getLogger("app.test").info("inside a traced request")
    logging.getLogger("app.test").info("outside any trace")
    inside, outside = (json.loads(line) for line in log_lines.getvalue().splitlines())
    assert inside["trace_id"] == format(span.get_span_context().trace_id, "032x")
    assert inside["span_id"] == format(span.get_span_context().span_id, "016x")
    assert "trace_id" not in outside


def test_ladder_dev_logs_text_and_serve_logs_json() -> None:
    from app.observability.logging import TextFormatter, log_config

    assert log_config("json", "info")["formatters"]["default"]["()"].endswith("JsonFormatter")
    text = log_config("text", "debug")
    assert text["formatters"]["default"]["()"].endswith("TextFormatter")
    assert text["root"]["level"] == "DEBUG"
    # uvicorn's own lines go through the same handler; its access log is replaced by ours.
    assert text["loggers"]["uvicorn.error"]["propagate"] is True
    assert text["loggers"]["uvicorn.access"]["propagate"] is False
    record = logging.LogRecord("app.x", logging.INFO, __file__, 1, "hello %s", ("there",), None)
    assert TextFormatter().format(record).endswith("app.x: hello there")


async def test_tenant_label_only_when_the_setting_allows(
    settings: Settings,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    tenant_a: Tenant,
) -> None:
    for allowed in (False, True):
        labelled = settings.model_copy(
            update={"metrics_token": METRICS_TOKEN, "metrics_tenant_label": allowed}
        )
        application = create_app(labelled)
        application.state.engine = engine
        application.state.sessionmaker = sessionmaker
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            before = await scrape(c)
            assert (await c.get("/v1/subjects", headers=tenant_a.headers)).status_code == 200
            after = await scrape(c)
        name, labels = "ladder_http_requests_total", {"route": "/v1/subjects", "method": "GET"}
        mine = {**labels, "tenant": str(tenant_a.id)}
        assert total(after, name, **mine) - total(before, name, **mine) == (1 if allowed else 0)
        assert total(after, name, **labels) - total(before, name, **labels) == 1


async def test_the_request_line_names_the_trace_of_a_span_inside_it(
    log_lines: io.StringIO,
) -> None:
    from opentelemetry.sdk.trace import TracerProvider

    from app.observability.middleware import Observe

    tracer = TracerProvider().get_tracer("test")
    spans = []

    async def traced_app(scope: Any, receive: Any, send: Any) -> None:
        # As a tracing middleware inside Observe does: the span ends before Observe logs.
        with tracer.start_as_current_span("GET /thing") as span:
            spans.append(span)
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})

    observe = Observe(traced_app, metrics_enabled=False, log_requests=True, tenant_label=False)
    transport = httpx.ASGITransport(app=observe)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        r = await c.get("/thing")
    (line,) = [json.loads(x) for x in log_lines.getvalue().splitlines()]
    assert line["request_id"] == r.headers["x-request-id"]
    assert line["trace_id"] == format(spans[0].get_span_context().trace_id, "032x")


async def test_a_problem_sent_outside_routing_names_its_request(
    observed: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    """The size limit answers before routing, from plain ASGI code; its 413 still says which
    request it answers, in the body and the header."""
    too_big = b"{" + b" " * 6_000_000 + b"}"
    r = await observed.post(
        "/v1/subjects",
        content=too_big,
        headers={**tenant_a.headers, "Content-Type": "application/json", "X-Request-ID": "big-1"},
    )
    assert r.status_code == 413
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["request_id"] == "big-1"
    assert r.headers["x-request-id"] == "big-1"


async def test_a_request_refused_before_routing_is_counted_under_its_route(
    observed: httpx.AsyncClient, tenant_a: Tenant, log_lines: io.StringIO
) -> None:
    """A body too large (413) and a query that is not UTF-8 (422) are refused before any route
    runs; the request line and the metrics still name the route the request was for, so an
    operator sees which operation clients overfill."""
    before = await scrape(observed)
    r = await observed.post(
        "/v1/subjects",
        content=b"{" + b" " * 6_000_000 + b"}",
        headers={**tenant_a.headers, "Content-Type": "application/json", "X-Request-ID": "big-2"},
    )
    assert r.status_code == 413
    r = await observed.get(
        f"/v1/subjects/{REF}/score?as_of=%ff",
        headers={**tenant_a.headers, "X-Request-ID": "utf-2"},
    )
    assert r.status_code == 422
    after = await scrape(observed)
    records = [json.loads(line) for line in log_lines.getvalue().splitlines()]
    lines = {rec["request_id"]: rec["route"] for rec in records if rec["logger"] == "app.request"}
    assert (lines["big-2"], lines["utf-2"]) == ("/v1/subjects", "/v1/subjects/{ref}/score")
    for route, status in [("/v1/subjects", "413"), ("/v1/subjects/{ref}/score", "422")]:
        name, labels = "ladder_http_requests_total", {"route": route, "status": status}
        assert total(after, name, **labels) - total(before, name, **labels) == 1
