"""Per-API-key rate limiting: a token bucket per key.

Two limiters answer the same ``check``:

- ``RateLimiter`` keeps the buckets in process memory. It serves the embedded SQLite store (one
  process) and stands in for the shared one while Postgres cannot be reached.
- ``SharedRateLimiter`` keeps one bucket row per key in Postgres (table ``rate_limit_bucket``),
  which every worker and replica sees, so a key's limit is the same with one worker or eight.
  A worker does not ask Postgres per request: it *leases* a few tokens at a time with one
  atomic UPSERT ... RETURNING (autocommit, on its own small connection pool, so no lock outlives
  that statement and none joins the request's transaction) and serves requests from its lease.
  Tokens leased are taken from the shared bucket, so the combined limit holds within one lease
  per worker: a key can get up to that many requests more than the limit in a window (tokens
  leased before it, spent in it), or be refused while another worker still holds that many.
  The bucket refills on the database's clock, so replicas with skewed clocks agree.
"""

import asyncio
import logging
import math
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import asyncpg

from app.config import Settings
from app.db import driver_url
from app.errors import RateLimited, Unavailable

log = logging.getLogger(__name__)


class Limiter(Protocol):
    """What the authentication dependency calls for every request with an API key."""

    async def check(self, tenant_id: uuid.UUID, key_id: uuid.UUID) -> None:
        """Return when the key may go on; raise RateLimited (or Unavailable) when not."""
        ...

    async def aclose(self) -> None:
        """Release what the limiter holds (connections)."""
        ...


def _refusal(per_minute: float, wait_seconds: float) -> RateLimited:
    return RateLimited(
        f"Rate limit of {round(per_minute)} requests per minute exceeded.",
        retry_after_seconds=max(1, math.ceil(wait_seconds)),
    )


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Allow ``per_minute`` requests per key on average, with bursts up to ``burst``, counted in
    this process alone (with N workers a key can reach N times the limit)."""

    def __init__(self, per_minute: int, burst: int = 0, max_keys: int = 100_000) -> None:
        self.rate = per_minute / 60.0
        self.capacity = float(burst or per_minute)
        self.max_keys = max_keys
        self._buckets: dict[uuid.UUID, _Bucket] = {}

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def take(self, key_id: uuid.UUID, now: float | None = None) -> bool:
        """Take one token for the key if it has one; False when the key must wait."""
        if not self.enabled:
            return True
        moment = time.monotonic() if now is None else now
        bucket = self._buckets.get(key_id)
        if bucket is None:
            if len(self._buckets) >= self.max_keys:
                self._buckets.clear()  # bounded memory; forgetting buckets only errs on the lenient side
            bucket = self._buckets[key_id] = _Bucket(self.capacity, moment)
        bucket.tokens = min(self.capacity, bucket.tokens + (moment - bucket.updated) * self.rate)
        bucket.updated = moment
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return True
        return False

    def wait_seconds(self, key_id: uuid.UUID) -> float:
        """How long until the key has a whole token again."""
        bucket = self._buckets.get(key_id)
        tokens = bucket.tokens if bucket is not None else 0.0
        return (1.0 - tokens) / self.rate

    def take_or_refuse(self, key_id: uuid.UUID, now: float | None = None) -> None:
        """Take one token for the key or raise RateLimited with the seconds to wait."""
        if not self.take(key_id, now):
            raise _refusal(self.rate * 60, self.wait_seconds(key_id))

    async def check(self, tenant_id: uuid.UUID, key_id: uuid.UUID) -> None:
        """Take one token for the key or raise RateLimited."""
        self.take_or_refuse(key_id)

    async def aclose(self) -> None:
        """Nothing to release: the buckets are plain memory."""


# One statement, atomic under concurrency (the row lock lasts only as long as it does): refill
# the bucket for the time since its last update, grant up to $4 whole tokens, keep the rest.
# A new key starts with a full bucket. The grant is stored beside the tokens so RETURNING can
# report it. $3 is the capacity (burst), $5 the refill rate in tokens per second.
LEASE_SQL = """
INSERT INTO rate_limit_bucket AS b (tenant_id, key_id, tokens, granted, updated_at)
VALUES ($1, $2, $3 - least($4, floor($3)), least($4, floor($3)), now())
ON CONFLICT (tenant_id, key_id) DO UPDATE SET
    (granted, tokens, updated_at) = (
        SELECT least($4, floor(f.available)),
               f.available - least($4, floor(f.available)),
               greatest(b.updated_at, now())
        FROM (
            SELECT least(
                $3, b.tokens + $5 * greatest(0, extract(epoch FROM now() - b.updated_at)::float8)
            ) AS available
        ) AS f
    )
RETURNING granted, tokens
"""

# Rows whose bucket has refilled completely are the same as no row (a new key starts full), so
# they can go: keys that stopped sending, were revoked or deleted would otherwise stay forever.
# A bounded batch at a time, skipping rows a lease holds.
SWEEP_SQL = """
DELETE FROM rate_limit_bucket
WHERE (tenant_id, key_id) IN (
    SELECT tenant_id, key_id FROM rate_limit_bucket
    WHERE updated_at < now() - make_interval(secs => $1)
    LIMIT $2
    FOR UPDATE SKIP LOCKED
)
"""
SWEEP_BATCH = 1000
# Each worker sweeps after its first lease and then at most this often.
SWEEP_EVERY_SECONDS = 600.0

# What "the store cannot be reached" looks like from asyncpg: refused or lost connections,
# timeouts, and server-side errors (including a missing table before migrations ran).
STORE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
)

# After a failure, the store is not asked again for this long: requests meanwhile get the fail
# mode at once instead of each waiting for its own timeout.
STORE_RETRY_SECONDS = 2.0


async def _no_reset(_connection: Any) -> None:
    """The lease statement leaves no session state behind, so a connection goes back to the
    pool without asyncpg's reset query (which would be a second round trip)."""


class PostgresBucketStore:
    """The shared buckets: one UPSERT per lease, on a pool of its own (autocommit)."""

    def __init__(self, database_url: str, *, timeout_seconds: float, pool_size: int = 4) -> None:
        self.dsn = driver_url(database_url)
        self.timeout = timeout_seconds
        self.pool_size = pool_size
        self._pool: Any = None
        self._starting = asyncio.Lock()

    async def _get_pool(self) -> Any:
        if self._pool is None:
            async with self._starting:
                if self._pool is None:
                    # min_size=0: nothing connects until the first lease, so the service starts
                    # while the database is down, like its main pool.
                    self._pool = await asyncpg.create_pool(
                        self.dsn,
                        min_size=0,
                        max_size=self.pool_size,
                        timeout=self.timeout,
                        command_timeout=self.timeout,
                        max_inactive_connection_lifetime=300,
                        reset=_no_reset,
                        server_settings={"application_name": "competency-ladder-rate-limit"},
                    )
        return self._pool

    async def lease(
        self,
        tenant_id: uuid.UUID,
        key_id: uuid.UUID,
        *,
        want: int,
        capacity: float,
        rate_per_second: float,
    ) -> tuple[int, float]:
        """Take up to ``want`` tokens from the key's shared bucket: (granted, tokens left)."""
        pool = await self._get_pool()
        async with pool.acquire(timeout=self.timeout) as conn:
            row = await conn.fetchrow(
                LEASE_SQL,
                tenant_id,
                key_id,
                capacity,
                want,
                rate_per_second,
                timeout=self.timeout,
            )
        return int(row["granted"]), float(row["tokens"])

    async def sweep(self, full_after_seconds: float, limit: int = SWEEP_BATCH) -> int:
        """Forget up to ``limit`` buckets untouched for ``full_after_seconds`` (refilled by now)."""
        pool = await self._get_pool()
        async with pool.acquire(timeout=self.timeout) as conn:
            status = await conn.execute(SWEEP_SQL, full_after_seconds, limit, timeout=self.timeout)
        return int(status.split()[-1])  # "DELETE n"

    async def aclose(self) -> None:
        if self._pool is not None:
            await self._pool.close()


@dataclass
class _Lease:
    tokens: int = 0
    refused_until: float = 0.0
    trip: asyncio.Lock = field(default_factory=asyncio.Lock)


def lease_size(capacity: float, max_lease: int) -> int:
    """Tokens a worker takes per trip to the store: at most a twentieth of the burst, so a
    small limit stays exact (one token per trip) and a large one costs few trips."""
    return max(1, min(max_lease, int(capacity // 20)))


class SharedRateLimiter:
    """A token bucket per key in Postgres, served to each worker in small leases."""

    def __init__(
        self,
        store: PostgresBucketStore,
        *,
        per_minute: int,
        burst: int = 0,
        max_lease: int = 10,
        fail_mode: Literal["open", "closed"] = "open",
        max_keys: int = 100_000,
    ) -> None:
        self.store = store
        self.per_minute = per_minute
        self.rate = per_minute / 60.0
        self.capacity = float(burst or per_minute)
        self.lease = lease_size(self.capacity, max_lease)
        self.fail_mode = fail_mode
        self.max_keys = max_keys
        # While the store is down and the mode is open, each worker limits on its own.
        self.fallback = RateLimiter(per_minute, burst, max_keys)
        self.store_down_until = 0.0
        self._leases: dict[uuid.UUID, _Lease] = {}
        self._next_sweep = 0.0

    async def check(self, tenant_id: uuid.UUID, key_id: uuid.UUID) -> None:
        """Serve the request from this worker's lease, leasing more from the store when empty."""
        if self.rate <= 0:
            return
        held = self._leases.get(key_id)
        if held is None:
            if len(self._leases) >= self.max_keys:
                self._leases.clear()  # bounded memory; forgotten leases only err on the strict side
            held = self._leases[key_id] = _Lease()
        if held.tokens > 0:
            held.tokens -= 1
            return
        # One trip per key at a time in this worker: requests that arrive meanwhile wait for its
        # lease instead of each taking one, so a worker never holds more than one lease.
        async with held.trip:
            if held.tokens > 0:
                held.tokens -= 1
                return
            await self._lease_more(tenant_id, key_id, held)

    async def _lease_more(self, tenant_id: uuid.UUID, key_id: uuid.UUID, held: _Lease) -> None:
        now = time.monotonic()
        if now < held.refused_until:
            # The shared bucket had no whole token: a refused client hammering the service
            # does not hammer the database too.
            raise _refusal(self.per_minute, held.refused_until - now)
        if now < self.store_down_until:
            self._store_unreachable(key_id)
            return
        try:
            granted, left = await self.store.lease(
                tenant_id,
                key_id,
                want=self.lease,
                capacity=self.capacity,
                rate_per_second=self.rate,
            )
        except STORE_ERRORS as exc:
            self.store_down_until = time.monotonic() + STORE_RETRY_SECONDS
            log.warning(
                "rate limit store unreachable (%s), failing %s", type(exc).__name__, self.fail_mode
            )
            self._store_unreachable(key_id)
            return
        if time.monotonic() >= self._next_sweep:
            await self._sweep()
        if granted >= 1:
            held.tokens = granted - 1
            return
        wait = (1.0 - left) / self.rate
        held.refused_until = time.monotonic() + wait
        raise _refusal(self.per_minute, wait)

    async def _sweep(self) -> None:
        """Drop the store's buckets that have refilled (an occasional round trip, never fatal)."""
        self._next_sweep = time.monotonic() + SWEEP_EVERY_SECONDS
        try:
            await self.store.sweep(self.capacity / self.rate)
        except STORE_ERRORS as exc:
            log.warning("rate limit store sweep failed (%s)", type(exc).__name__)

    def _store_unreachable(self, key_id: uuid.UUID) -> None:
        if self.fail_mode == "closed":
            raise Unavailable(
                "The rate limiter's store cannot be reached, and this service is set to refuse "
                "requests then (RATE_LIMIT_FAIL_MODE=closed). Retry later."
            )
        self.fallback.take_or_refuse(key_id)

    async def aclose(self) -> None:
        await self.store.aclose()


def make_limiter(settings: Settings) -> Limiter:
    """The shared limiter on Postgres, the in-process one on SQLite (a single process)."""
    if settings.is_sqlite or settings.rate_limit_per_minute <= 0:
        return RateLimiter(settings.rate_limit_per_minute, settings.rate_limit_burst)
    store = PostgresBucketStore(
        settings.database_url, timeout_seconds=settings.rate_limit_store_timeout_seconds
    )
    return SharedRateLimiter(
        store,
        per_minute=settings.rate_limit_per_minute,
        burst=settings.rate_limit_burst,
        max_lease=settings.rate_limit_lease_tokens,
        fail_mode=settings.rate_limit_fail_mode,
    )
