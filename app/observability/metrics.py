"""Prometheus metrics, summed over every worker process of the server.

``ladder serve`` gives its workers a shared directory (``PROMETHEUS_MULTIPROC_DIR``, see
``app/server.py``); prometheus-client then keeps each worker's values in files there, and a
scrape answered by any worker reads them all. Without that variable (tests, an app embedded
elsewhere) values live in this process.

Labels never name people: routes are templates (``/v1/subjects/{ref}``), paths that match no
route are ``unmatched``, methods outside the standard ones ``other``; tenant ids appear only on
the request counter and only when ``METRICS_TENANT_LABEL`` is set.

``GET /metrics`` answers only a caller presenting ``Authorization: Bearer <METRICS_TOKEN>``;
without that setting it does not exist (404).
"""

import hmac
import logging
import os
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.errors import NotFound, Unauthenticated, is_transient_database_error
from app.models import utcnow
from app.webhooks import repository as webhooks_repo

log = logging.getLogger(__name__)

MULTIPROC_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
# prometheus-client chooses where values live when it is imported, from this same variable.
MULTIPROCESS = bool(os.environ.get(MULTIPROC_DIR_ENV))

REGISTRY = CollectorRegistry()

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

HTTP_REQUESTS = Counter(
    "ladder_http_requests",
    "HTTP requests answered, by route template, method and status.",
    ["route", "method", "status", "tenant"],
    registry=REGISTRY,
)
HTTP_DURATION = Histogram(
    "ladder_http_request_duration_seconds",
    "Time from a request's arrival to the end of its response, by route template and method.",
    ["route", "method"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
DB_POOL_IN_USE = Gauge(
    "ladder_db_pool_connections_in_use",
    "Database connections checked out of the pools of live workers.",
    multiprocess_mode="livesum",
    registry=REGISTRY,
)
DB_POOL_WAITING = Gauge(
    "ladder_db_pool_checkouts_waiting",
    "Requests for a database connection that the pools have not served yet.",
    multiprocess_mode="livesum",
    registry=REGISTRY,
)
DB_POOL_MAX = Gauge(
    "ladder_db_pool_connections_max",
    "Connections the pools of live workers may open (DB_POOL_SIZE + DB_MAX_OVERFLOW each).",
    multiprocess_mode="livesum",
    registry=REGISTRY,
)
DB_POOL_WAIT = Histogram(
    "ladder_db_pool_wait_seconds",
    "Time to get a connection from the pool.",
    buckets=(0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0),
    registry=REGISTRY,
)
SCORE_MEMO = Counter(
    "ladder_score_memo_lookups",
    "Score reads looked up in the memo of rendered scores, by outcome (hit or miss).",
    ["outcome"],
    registry=REGISTRY,
)
SCORING_DURATION = Histogram(
    "ladder_scoring_duration_seconds",
    "Time spent in the scoring engine, by kind (subject or cohort).",
    ["kind"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0),
    registry=REGISTRY,
)
WEBHOOK_ATTEMPTS = Counter(
    "ladder_webhook_attempts",
    "Webhook delivery attempts, by outcome (delivered, or failed: no answer or not 2xx).",
    ["outcome"],
    registry=REGISTRY,
)
BULK_ITEMS = Counter(
    "ladder_bulk_items",
    "Items of bulk requests, by resource and outcome (created or refused).",
    ["resource", "outcome"],
    registry=REGISTRY,
)
COHORT_SUBJECTS = Histogram(
    "ladder_cohort_subjects",
    "Subjects scored per cohort evaluation.",
    buckets=(1, 10, 100, 1_000, 10_000, 100_000, 1_000_000),
    registry=REGISTRY,
)
COHORT_DURATION = Histogram(
    "ladder_cohort_duration_seconds",
    "Time to evaluate a cohort, from loading its subjects to the summarized answer.",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
    registry=REGISTRY,
)
RATE_LIMIT_REFUSALS = Counter(
    "ladder_rate_limit_refusals",
    "Requests refused because their API key was over its rate limit (answered 429).",
    registry=REGISTRY,
)

STANDARD_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


# The counter and histogram series of each (route, method, status, tenant) seen, so a request
# looks up one dict entry instead of resolving two label sets. Bounded: past the limit (many
# tenants with the tenant label on), series are resolved per request as before.
_REQUEST_SERIES: dict[tuple[str, str, int, str], tuple[Any, Any]] = {}
_MAX_REQUEST_SERIES = 10_000


def record_request(route: str, method: str, status: int, seconds: float, tenant: str = "") -> None:
    """Count one answered request and its duration."""
    key = (route, method, status, tenant)
    series = _REQUEST_SERIES.get(key)
    if series is None:
        method = method if method in STANDARD_METHODS else "other"
        series = (
            HTTP_REQUESTS.labels(route, method, str(status), tenant),
            HTTP_DURATION.labels(route, method),
        )
        if len(_REQUEST_SERIES) < _MAX_REQUEST_SERIES:
            _REQUEST_SERIES[key] = series
    series[0].inc()
    series[1].observe(seconds)
    if status == 429:  # only the rate limiter answers 429
        RATE_LIMIT_REFUSALS.inc()


def record_score_memo(hit: bool) -> None:
    """Count one score read answered from the memo (hit) or computed (miss)."""
    SCORE_MEMO.labels("hit" if hit else "miss").inc()


def record_scoring(kind: str, seconds: float) -> None:
    """Record the time the scoring engine took for one subject or one cohort."""
    SCORING_DURATION.labels(kind).observe(seconds)


def record_webhook_attempt(delivered: bool) -> None:
    """Count one webhook delivery attempt."""
    WEBHOOK_ATTEMPTS.labels("delivered" if delivered else "failed").inc()


def record_bulk_items(resource: str, created: int, refused: int) -> None:
    """Count the items of one bulk request."""
    BULK_ITEMS.labels(resource, "created").inc(created)
    BULK_ITEMS.labels(resource, "refused").inc(refused)


def record_cohort(subjects: int, seconds: float) -> None:
    """Record one cohort evaluation: how many subjects, how long."""
    COHORT_SUBJECTS.observe(subjects)
    COHORT_DURATION.observe(seconds)


def instrument_pool(engine: AsyncEngine, settings: Settings) -> None:
    """Keep the pool gauges of this worker up to date from the engine's pool events."""
    from sqlalchemy import event

    pool = engine.sync_engine.pool
    if not settings.is_sqlite:
        DB_POOL_MAX.inc(settings.db_pool_size + settings.db_max_overflow)
    event.listen(pool, "checkout", lambda *_: DB_POOL_IN_USE.inc())
    event.listen(pool, "checkin", lambda *_: DB_POOL_IN_USE.dec())
    # SQLAlchemy has no event before a checkout waits, so the pool's one method that may wait
    # (the one its subclasses implement) is wrapped on this instance.
    get: Callable[[], Any] = pool._do_get

    def timed_get() -> Any:
        started = time.perf_counter()
        DB_POOL_WAITING.inc()
        try:
            return get()
        finally:
            DB_POOL_WAITING.dec()
            DB_POOL_WAIT.observe(time.perf_counter() - started)

    pool._do_get = timed_get  # type: ignore[method-assign]


def forget_pool(settings: Settings) -> None:
    """Take this worker's pool out of the capacity gauge (its engine is disposed)."""
    if not settings.is_sqlite:
        DB_POOL_MAX.dec(settings.db_pool_size + settings.db_max_overflow)


class _Outbox(Collector):
    """The webhook outbox as read at scrape time (one figure for all workers and replicas)."""

    def __init__(self, depth: int, due: int, oldest_due: datetime | None, now: datetime) -> None:
        self.depth, self.due, self.oldest_due, self.now = depth, due, oldest_due, now

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily(
            "ladder_webhook_outbox_pending",
            "Webhook deliveries waiting to be sent or retried.",
            value=self.depth,
        )
        yield GaugeMetricFamily(
            "ladder_webhook_outbox_due",
            "Pending webhook deliveries whose time to be sent has come.",
            value=self.due,
        )
        overdue = (self.now - self.oldest_due).total_seconds() if self.oldest_due else 0.0
        yield GaugeMetricFamily(
            "ladder_webhook_outbox_oldest_due_seconds",
            "How long the longest-waiting due delivery has waited since it was due (for a "
            "first attempt: its age).",
            value=max(0.0, overdue),
        )


async def _outbox(request: Request) -> _Outbox:
    now = utcnow()
    async with request.app.state.sessionmaker() as session:
        depth, due_count, oldest = await webhooks_repo.outbox(session, now)
    if oldest is not None and oldest.tzinfo is None:  # SQLite keeps no offset; times are UTC
        oldest = oldest.replace(tzinfo=now.tzinfo)
    return _Outbox(depth, due_count, oldest, now)


def exposition(extra: Collector | None = None) -> bytes:
    """Every series in Prometheus' text format, summed over the workers in multiprocess mode."""
    if MULTIPROCESS:
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        text = generate_latest(registry)
    else:
        text = generate_latest(REGISTRY)
    if extra is not None:
        scraped = CollectorRegistry()
        scraped.register(extra)
        text += generate_latest(scraped)
    return text


router = APIRouter()


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """Prometheus' scrape target, behind METRICS_TOKEN."""
    settings: Settings = request.app.state.settings
    if settings.metrics_token is None or not settings.metrics_enabled:
        raise NotFound("Metrics are not served: set METRICS_TOKEN to turn them on.")
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    expected = settings.metrics_token
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        token.strip().encode(), expected.encode()
    ):
        raise Unauthenticated("Scraping /metrics needs Authorization: Bearer <METRICS_TOKEN>.")
    try:
        outbox: _Outbox | None = await _outbox(request)
    except Exception as exc:
        if not is_transient_database_error(exc):
            raise
        # The other series are this process's and the workers' files: still worth a scrape.
        log.warning("metrics: webhook outbox not read (%s)", type(exc).__name__)
        outbox = None
    return Response(exposition(outbox), media_type=CONTENT_TYPE_LATEST)
