"""Repeated score reads served from memory, each one checked against the database first.

``GET /v1/subjects/{ref}/score`` without query parameters is the read HR dashboards repeat
most, and its answer changes only when its inputs do. On Postgres each such request makes one
round trip: a statement that checks the API key and returns a fingerprint of everything the
score depends on — the subject's revision, the revision of its assessments (assessments are
immutable; a trigger counts every insert), and the framework version it is scored against.
When the fingerprint matches a response rendered earlier by
this process, and the moment of the request lies in the span where the same ratings fall inside
the scoring window, that response is sent with this moment's ``as_of``. Otherwise the score is
computed by the same service code as every other request and kept for next time.

Anything out of the ordinary (a missing, wrong, expired or revoked key, a missing scope, an
unknown subject, a subject without assessments, query parameters, a database hiccup) is left to
the ordinary route, so errors are exactly the ordinary ones. The embedded SQLite store always
takes the ordinary route.
"""

import contextlib
import json
import logging
import re
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from app.auth.keys import grants, hash_secret, parse_token
from app.auth.principal import Principal
from app.auth.ratelimit import RateLimiter
from app.config import Settings
from app.db import remember_tenant
from app.errors import (
    DB_RETRY_AFTER_SECONDS,
    AppError,
    is_transient_database_error,
    problem_response,
)
from app.models import utcnow
from app.scores import present, service
from app.scores.schemas import ScoreRead
from app.scoring import Rating, ScoringSettings

log = logging.getLogger(__name__)

SCOPE = "analytics:read"
# Which tenant a key belongs to, asked once per key and worker (a key never changes tenant).
KEY_TENANT = "SELECT tenant_id FROM api_key WHERE id = $1 AND secret_hash = $2"
SET_TENANT = "SELECT set_config('app.tenant_id', $1, false)"
# The key's state and the subject's fingerprint in one statement. The key must match its
# secret's hash, and the subject must belong to the key's tenant; row-level security filters
# by the connection's tenant on top. The subject row carries what its assessments contribute
# (kept by a trigger, migration 0006); the version is the one the service scores against: the
# latest published version of that framework, a tenant's own framework shadowing a built-in
# one with the same key (as in frameworks/repository.py).
LOOKUP = """
SELECT ak.tenant_id, ak.scopes::text, ak.expires_at, ak.revoked_at,
       sb.id, sb.revision, sb.assessments_revision, v.id, v.revision
  FROM api_key ak
  LEFT JOIN subject sb ON sb.tenant_id = ak.tenant_id AND sb.external_ref = $3
  LEFT JOIN LATERAL (
        SELECT fv.id, fv.revision
          FROM framework f
          JOIN framework_version fv ON fv.tenant_id = f.tenant_id AND fv.framework_id = f.id
         WHERE f.key = sb.latest_framework_key
           AND f.tenant_id IN (sb.tenant_id, '00000000-0000-0000-0000-000000000000'::uuid)
           AND fv.status = 'published'
         ORDER BY f.tenant_id DESC, fv.version DESC
         LIMIT 1) v ON true
 WHERE ak.id = $1 AND ak.secret_hash = $2
"""

# The route's own pattern for a subject ref; anything else is the ordinary route's 422.
_REF = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@\-]{0,199}")
# Rendered in place of the real moment, then replaced per request. No rating inside the window
# of a current request can carry it, and the template is refused unless it appears as expected.
_SENTINEL = datetime(1901, 2, 3, 4, 5, 6, 789012, tzinfo=UTC)
_MOMENT = TypeAdapter(datetime)
_NEVER = datetime.max.replace(tzinfo=UTC)
# However valid, a remembered score is recomputed after this long, so a worker that never reads
# an erased person again still lets go of their score.
MAX_AGE = timedelta(minutes=10)

Fingerprint = tuple[uuid.UUID, int, int, uuid.UUID, int]


def _json_moment(moment: datetime) -> bytes:
    """A moment exactly as the API renders it, as a JSON string."""
    return _MOMENT.dump_json(moment)


_SCORE = TypeAdapter(ScoreRead)


def render(content: ScoreRead) -> bytes:
    """The bytes the ordinary route sends (FastAPI serializes a response model like this)."""
    return _SCORE.dump_json(content)


def stable_until(
    ratings: Sequence[Rating], settings: ScoringSettings, moment: datetime
) -> datetime:
    """The first moment after ``moment`` when a rating enters or leaves the scoring window.

    A rating counts at ``as_of`` when ``assessed_at <= as_of < assessed_at + window``, so the
    set of counted ratings, and with it every number of the score, is the same from ``moment``
    up to (not including) the returned moment.
    """
    window = timedelta(days=settings.window_days)
    edges = [
        edge
        for rating in ratings
        for edge in (rating.assessed_at, rating.assessed_at + window)
        if edge > moment
    ]
    return min(edges, default=_NEVER)


@dataclass(frozen=True, slots=True)
class Template:
    """A rendered score with its three moment fields cut out."""

    pieces: tuple[bytes, ...]
    # For each gap between pieces: 0 = as_of, 1 = window_start.
    slots: tuple[int, ...]
    window: timedelta

    @classmethod
    def cut(cls, body: bytes, window: timedelta) -> "Template | None":
        """Split a body rendered at the sentinel moment; None if it does not split cleanly."""
        as_of, start = _json_moment(_SENTINEL), _json_moment(_SENTINEL - window)
        parts = re.split(b"(" + re.escape(as_of) + b"|" + re.escape(start) + b")", body)
        pieces, found = tuple(parts[0::2]), parts[1::2]
        slots = tuple(0 if f == as_of else 1 for f in found)
        if sorted(slots) != ([0, 0, 1] if as_of != start else [0, 0, 0]):
            return None
        return cls(pieces, slots, window)

    def fill(self, moment: datetime) -> bytes:
        values = (_json_moment(moment), _json_moment(moment - self.window))
        out = [self.pieces[0]]
        for slot, piece in zip(self.slots, self.pieces[1:], strict=True):
            out += (values[slot], piece)
        return b"".join(out)

    @property
    def size(self) -> int:
        return sum(map(len, self.pieces))


@dataclass(frozen=True, slots=True)
class Entry:
    fingerprint: Fingerprint
    valid_from: datetime
    valid_until: datetime
    template: Template


class ScoreCache:
    """Rendered scores by (tenant, subject ref), least recently used first out, bounded in bytes."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._entries: OrderedDict[tuple[uuid.UUID, str], Entry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(
        self, key: tuple[uuid.UUID, str], fingerprint: Fingerprint, moment: datetime
    ) -> Template | None:
        entry = self._entries.get(key)
        if entry is None or entry.fingerprint != fingerprint:
            return None
        if not entry.valid_from <= moment < entry.valid_until:
            return None
        self._entries.move_to_end(key)
        return entry.template

    def drop(self, key: tuple[uuid.UUID, str]) -> None:
        old = self._entries.pop(key, None)
        if old is not None:
            self.bytes -= old.template.size

    def put(self, key: tuple[uuid.UUID, str], entry: Entry) -> None:
        self.drop(key)
        if entry.template.size > self.max_bytes:
            return
        self._entries[key] = entry
        self.bytes += entry.template.size
        while self.bytes > self.max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self.bytes -= evicted.template.size


PREFIX, SUFFIX = "/v1/subjects/", "/score"


def _bearer(scope: Scope) -> str | None:
    """The bearer token of a request, read straight from the ASGI headers."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token if scheme.lower() == "bearer" and token else None
    return None


def _score_ref(scope: Scope) -> str | None:
    """The subject ref when the request is a plain ``GET /v1/subjects/{ref}/score``."""
    if scope["type"] != "http" or scope["method"] != "GET" or scope["query_string"]:
        return None
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    if not (path.startswith(PREFIX) and path.endswith(SUFFIX)):
        return None
    ref = path[len(PREFIX) : -len(SUFFIX)]
    return ref if _REF.fullmatch(ref) else None


class ScoreReads:
    """The fast path of the score route (Postgres): one lookup, then memory or the service."""

    def __init__(
        self,
        pool: Any,
        sessionmaker: async_sessionmaker[AsyncSession],
        limiter: RateLimiter,
        max_bytes: int,
        acquire_timeout: float = 5.0,
    ) -> None:
        self.pool = pool
        self.acquire_timeout = acquire_timeout
        self.sessionmaker = sessionmaker
        self.limiter = limiter
        self.cache = ScoreCache(max_bytes)
        self.clock: Callable[[], datetime] = utcnow
        self.key_tenants: dict[uuid.UUID, uuid.UUID] = {}
        self.connection_tenants: dict[int, uuid.UUID] = {}
        self.hits = 0
        self.misses = 0

    @classmethod
    async def start(
        cls,
        settings: Settings,
        sessionmaker: async_sessionmaker[AsyncSession],
        limiter: RateLimiter,
    ) -> "ScoreReads | None":
        """A fast path for this service, or None on SQLite or when the cache is turned off."""
        if settings.is_sqlite or settings.score_cache_mb <= 0:
            return None
        import asyncpg

        url = make_url(settings.database_url).set(drivername="postgresql")
        # No connection is opened until the first request: the service starts with the
        # database down, like its main pool. The lookup leaves no session state behind (its
        # tenant setting is transaction-local), so connections go back to the pool without
        # asyncpg's reset, which would cost a second round trip per request.
        pool = await asyncpg.create_pool(
            url.render_as_string(hide_password=False),
            min_size=0,
            max_size=settings.db_pool_size,
            timeout=settings.db_connect_timeout_seconds,
            command_timeout=settings.db_command_timeout_seconds,
            max_inactive_connection_lifetime=300,
            reset=_no_reset,
            server_settings={
                "application_name": "competency-ladder-score-reads",
                "statement_timeout": str(settings.db_statement_timeout_ms),
                "idle_in_transaction_session_timeout": "60000",
            },
        )
        return cls(
            pool,
            sessionmaker,
            limiter,
            settings.score_cache_mb * 1024 * 1024,
            acquire_timeout=settings.db_pool_timeout_seconds,
        )

    async def close(self) -> None:
        await self.pool.close()

    async def _tenant_of(self, conn: Any, key_id: uuid.UUID, secret_hash: str) -> uuid.UUID | None:
        tenant = self.key_tenants.get(key_id)
        if tenant is None:
            tenant = await conn.fetchval(KEY_TENANT, key_id, secret_hash)
            if tenant is not None:
                if len(self.key_tenants) >= 10_000:
                    self.key_tenants.clear()
                self.key_tenants[key_id] = tenant
        return tenant

    async def _lookup_on(self, conn: Any, key_id: uuid.UUID, secret_hash: str, ref: str) -> Any:
        tenant = await self._tenant_of(conn, key_id, secret_hash)
        if tenant is None:
            return None
        # The lane's connections keep the tenant of their last request (session-level, so no
        # extra round trip while it stays the same); nothing else uses them.
        pid = conn.get_server_pid()
        if self.connection_tenants.get(pid) != tenant:
            await conn.fetchval(SET_TENANT, str(tenant))
            self.connection_tenants[pid] = tenant
        row = await conn.fetchrow(LOOKUP, key_id, secret_hash, ref)
        if row is not None and row[4] is None:
            # No such subject, or (should the server have reused a process id) a connection
            # without the tenant: set it again next time.
            self.connection_tenants.pop(pid, None)
        return row

    async def _lookup_row(self, key_id: uuid.UUID, secret_hash: str, ref: str) -> Any:
        """The LOOKUP row, on a connection scoped to the key's tenant; None on any trouble.

        Every wait is bounded: for a pooled connection by DB_POOL_TIMEOUT_SECONDS (which also
        bounds opening one), for each statement by the driver's command timeout. A database
        that does not answer in time raises (the lane answers 503 at once rather than making
        the ordinary route wait as long again); other trouble is left to the ordinary route.
        """
        try:
            async with self.pool.acquire(timeout=self.acquire_timeout) as conn:
                try:
                    return await self._lookup_on(conn, key_id, secret_hash, ref)
                except BaseException:
                    # A failed or interrupted call may leave the connection mid-protocol (a
                    # restart once left it at "cannot switch to state 12"): never reuse it.
                    # (A connection the server closed is already back in the pool, and refuses.)
                    with contextlib.suppress(Exception):
                        conn.terminate()
                    raise
        except Exception as exc:
            if _timed_out(exc):
                raise
            if not is_transient_database_error(exc):
                log.exception("score lookup failed; answering through the ordinary route")
            return None

    async def lookup(
        self, key_id: uuid.UUID, secret_hash: str, ref: str
    ) -> tuple[Principal, Fingerprint] | None:
        """The caller and the subject's fingerprint, or None when the ordinary route must answer."""
        row = await self._lookup_row(key_id, secret_hash, ref)
        if row is None:
            return None  # unknown key or wrong secret
        tenant_id, scopes_json, expires_at, revoked_at = row[:4]
        if revoked_at is not None or (expires_at is not None and expires_at <= self.clock()):
            return None
        scopes = _scopes(scopes_json)
        if not grants(scopes, SCOPE):
            return None
        fingerprint = _fingerprint(row[4:])
        if fingerprint is None:
            if row[4] is None:
                self.forget(tenant_id, ref)  # erased (or never there): keep nothing about it
            return None
        return Principal(tenant_id=tenant_id, key_id=key_id, scopes=scopes), fingerprint

    def forget(self, tenant_id: uuid.UUID, ref: str) -> None:
        """Drop a subject's remembered score (after an erasure)."""
        self.cache.drop((tenant_id, ref))

    async def answer(self, scope: Scope) -> tuple[bytes, str] | None:
        """The body of the score response and whether it came from memory, or None to let the
        ordinary route answer."""
        ref = _score_ref(scope)
        token = _bearer(scope) if ref is not None else None
        if ref is None or token is None:
            return None
        # A key of another prefix is refused here as by the route (which then answers 401).
        parsed = parse_token(token, scope["app"].state.settings.api_key_prefix)
        if parsed is None:
            return None
        key_id, secret = parsed
        secret_hash = hash_secret(secret)
        found = await self.lookup(key_id, secret_hash, ref)
        if found is None:
            return None
        principal, fingerprint = found
        moment = self.clock()
        template = self.cache.get((principal.tenant_id, ref), fingerprint, moment)
        outcome = "hit"
        if template is None:
            outcome = "miss"
            try:
                template = await self._compute(principal, secret_hash, ref, fingerprint, moment)
            except AppError:
                return None  # e.g. the subject was erased meanwhile: the route says so
            except Exception as exc:
                if is_transient_database_error(exc) and not _timed_out(exc):
                    return None
                raise
        # Counted only for answers sent from here; the route counts the ones it answers.
        if not self.limiter.take(key_id):
            return None
        if outcome == "hit":
            self.hits += 1
        else:
            self.misses += 1
        return template.fill(moment), outcome

    async def _compute(
        self,
        principal: Principal,
        secret_hash: str,
        ref: str,
        fingerprint: Fingerprint,
        moment: datetime,
    ) -> Template:
        """Score through the service; keep the rendering if its inputs did not change meanwhile."""
        async with self.sessionmaker() as session:
            remember_tenant(session, principal.tenant_id)
            data, outcome, _ = await service.score_subject(
                session, principal, ref, framework=None, as_of=moment, track=None, parts="score"
            )
        fw = data.framework
        window = timedelta(days=fw.settings.window_days)
        template = Template.cut(
            render(present.score(fw, outcome.evaluation, ref, _SENTINEL)), window
        )
        if template is None:  # cannot happen with sane data; answer without keeping it
            body = render(present.score(fw, outcome.evaluation, ref, moment))
            return Template((body,), (), window)
        assert principal.key_id is not None
        again = await self._lookup_row(principal.key_id, secret_hash, ref)
        if again is not None and _fingerprint(again[4:]) == fingerprint:
            until = min(stable_until(data.ratings, fw.settings, moment), moment + MAX_AGE)
            entry = Entry(fingerprint, moment, until, template)
            self.cache.put((principal.tenant_id, ref), entry)
        return template


def _timed_out(exc: BaseException) -> bool:
    """True when the database did not answer within a timeout (rather than failing fast)."""
    if isinstance(exc, (TimeoutError, PoolTimeoutError)):
        return True
    return isinstance(exc, DBAPIError) and isinstance(
        getattr(exc.orig, "__cause__", None), TimeoutError
    )


async def _no_reset(_conn: Any) -> None:
    """Pool connections need no reset after the lookup (see ScoreReads.start)."""


@lru_cache(maxsize=1024)
def _scopes(scopes_json: str) -> frozenset[str]:
    return frozenset(json.loads(scopes_json))


def _fingerprint(row: Sequence[Any]) -> Fingerprint | None:
    subject_id, subject_revision, assessments_revision, version_id, version_revision = row
    if subject_id is None or version_id is None:
        # Unknown subject, no assessments (no framework to score against) or no published
        # version of it: the route's 404 or 422.
        return None
    return subject_id, subject_revision, assessments_revision, version_id, version_revision


class ScoreFastLane:
    """ASGI middleware: answer ``GET /v1/subjects/{ref}/score`` from ScoreReads when it can.

    It runs before the service's other middlewares (only the response headers one wraps it), so
    a remembered score costs as little as possible; it adds the ``Server-Timing`` the timing
    middleware adds to every other response.
    Whatever it declines goes on through the middlewares to the ordinary route unchanged.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            started = time.perf_counter()
            reads: ScoreReads | None = scope["app"].state.score_reads
            try:
                answer = await reads.answer(scope) if reads is not None else None
            except Exception as exc:
                if not _timed_out(exc):
                    raise
                # The ordinary route would wait for the same database as long again.
                log.warning("database unavailable: %s", type(exc).__name__)
                request = Request(scope)
                response = problem_response(
                    request,
                    503,
                    slug="unavailable",
                    title="Service unavailable",
                    detail="The database is not reachable right now; retry the same request later.",
                    headers={"Retry-After": str(DB_RETRY_AFTER_SECONDS)},
                )
                await response(scope, receive, send)
                return
            if answer is not None:
                body, outcome = answer
                elapsed_ms = (time.perf_counter() - started) * 1000
                timing = f'app;dur={elapsed_ms:.1f}, cache;desc="{outcome}"'
                await send(
                    {
                        "type": "http.response.start",
                        "status": 200,
                        "headers": [
                            (b"content-length", str(len(body)).encode()),
                            (b"content-type", b"application/json"),
                            (b"server-timing", timing.encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
