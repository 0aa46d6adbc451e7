"""Rate limiting per API key: 429 with Retry-After, off by default; on Postgres one bucket per
key shared by every worker (leased a few tokens at a time), with a fail mode for when Postgres
cannot be asked."""

import asyncio
import time
import uuid
from typing import Any

import asyncpg
import httpx
import pytest

from app.auth.ratelimit import (
    PostgresBucketStore,
    RateLimiter,
    SharedRateLimiter,
    lease_size,
    make_limiter,
)
from app.config import Settings
from app.errors import RateLimited, Unavailable
from tests.conftest import Database, Tenant
from tests.fault.pgcluster import free_port

pytestmark = pytest.mark.anyio


def test_bucket_refills_over_time() -> None:
    limiter = RateLimiter(per_minute=60, burst=2)
    key = uuid.uuid4()
    limiter.take_or_refuse(key, now=0.0)
    limiter.take_or_refuse(key, now=0.0)
    with pytest.raises(RateLimited) as refused:
        limiter.take_or_refuse(key, now=0.0)
    assert refused.value.retry_after_seconds == 1
    limiter.take_or_refuse(key, now=1.0)  # one token back after a second at 60/min
    limiter.take_or_refuse(uuid.uuid4(), now=0.0)  # other keys have their own bucket


async def test_off_by_default() -> None:
    limiter = make_limiter(Settings(database_url="postgresql://nobody@127.0.0.1:1/none"))
    for _ in range(1000):
        await limiter.check(uuid.uuid4(), uuid.uuid4())


def test_sqlite_keeps_the_in_process_limiter(tmp_path: Any) -> None:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/x.db", rate_limit_per_minute=5
    )
    assert isinstance(make_limiter(settings), RateLimiter)
    postgres = Settings(database_url="postgresql://x@127.0.0.1/x", rate_limit_per_minute=5)
    assert isinstance(make_limiter(postgres), SharedRateLimiter)


def test_lease_is_small_against_the_burst() -> None:
    assert lease_size(20, 10) == 1  # a small limit stays exact: one token per trip
    assert lease_size(100, 10) == 5
    assert lease_size(100_000, 10) == 10


async def test_429_with_retry_after_over_http(
    client: httpx.AsyncClient, tenant_a: Tenant, app: object
) -> None:
    app.state.rate_limiter = RateLimiter(per_minute=2, burst=2)  # type: ignore[attr-defined]
    statuses = [
        (await client.get("/v1/frameworks", headers=tenant_a.headers)).status_code for _ in range(3)
    ]
    assert statuses == [200, 200, 429]
    r = await client.get("/v1/frameworks", headers=tenant_a.headers)
    assert r.status_code == 429
    assert r.headers["content-type"] == "application/problem+json"
    assert int(r.headers["retry-after"]) >= 1
    assert (await client.get("/healthz")).status_code == 200  # probes are not limited


class CountingStore(PostgresBucketStore):
    """The real Postgres store, counting trips (what each request costs the database)."""

    trips = 0
    sweeps = 0

    async def lease(self, *args: Any, **kwargs: Any) -> tuple[int, float]:
        self.trips += 1
        return await super().lease(*args, **kwargs)

    async def sweep(self, *args: Any, **kwargs: Any) -> int:
        self.sweeps += 1
        return await super().sweep(*args, **kwargs)


def _postgres(database: Database) -> str:
    if database.backend != "postgres":
        pytest.skip("the shared buckets live in Postgres")
    return database.app_url


async def test_two_workers_share_one_bucket(database: Database) -> None:
    url = _postgres(database)
    # Two limiters are two worker processes: each has its own leases, both one store.
    stores = [CountingStore(url, timeout_seconds=5) for _ in range(2)]
    # A burst of 200 with a negligible refill (1/min): a lease of 10 tokens per trip.
    workers = [SharedRateLimiter(s, per_minute=1, burst=200, max_lease=10) for s in stores]
    tenant, key = uuid.uuid4(), uuid.uuid4()
    allowed = 0
    retry_after: list[int] = []
    try:
        for i in range(300):
            try:
                await workers[i % 2].check(tenant, key)
                allowed += 1
            except RateLimited as refused:
                retry_after.append(refused.retry_after_seconds)
        # Each process alone would have let 200 through, 400 together.
        assert allowed == 200
        assert len(retry_after) == 100 and min(retry_after) >= 1
        # One trip per lease of 10, plus one refused trip per worker (then refused locally);
        # each worker swept refilled buckets once, after its first lease.
        assert sum(s.trips for s in stores) == 200 // 10 + 2
        assert [s.sweeps for s in stores] == [1, 1]
        # Another key has its own bucket.
        await workers[0].check(tenant, uuid.uuid4())
    finally:
        for worker in workers:
            await worker.aclose()


async def test_concurrent_requests_of_a_key_share_one_trip(database: Database) -> None:
    url = _postgres(database)
    store = CountingStore(url, timeout_seconds=5)
    limiter = SharedRateLimiter(store, per_minute=1, burst=200, max_lease=10)
    tenant, key = uuid.uuid4(), uuid.uuid4()
    try:
        # Ten requests at once with an empty lease: one trip leases ten tokens for all of them
        # (ten trips would leave this worker holding ninety tokens the others cannot use).
        await asyncio.gather(*(limiter.check(tenant, key) for _ in range(10)))
        assert store.trips == 1
    finally:
        await limiter.aclose()


async def test_refusal_waits_for_the_shared_refill(database: Database) -> None:
    url = _postgres(database)
    limiter = SharedRateLimiter(PostgresBucketStore(url, timeout_seconds=5), per_minute=6, burst=1)
    tenant, key = uuid.uuid4(), uuid.uuid4()
    try:
        await limiter.check(tenant, key)
        with pytest.raises(RateLimited) as refused:
            await limiter.check(tenant, key)
        assert 1 <= refused.value.retry_after_seconds <= 10  # one token per 10 s at 6/min
    finally:
        await limiter.aclose()


async def test_a_store_that_does_not_answer_in_time_gets_the_fail_mode(
    database: Database,
) -> None:
    url = _postgres(database)
    tenant, key = uuid.uuid4(), uuid.uuid4()
    limiter = SharedRateLimiter(
        PostgresBucketStore(url, timeout_seconds=0.5), per_minute=30, fail_mode="closed"
    )
    await limiter.check(tenant, key)  # the bucket row exists
    # Another session holds the row: the lease waits on its lock past the store's timeout.
    blocker = await asyncpg.connect(url)
    try:
        async with blocker.transaction():
            await blocker.execute(
                "SELECT 1 FROM rate_limit_bucket WHERE tenant_id = $1 AND key_id = $2 FOR UPDATE",
                tenant,
                key,
            )
            # The limiter's own lease is used up first (one token per lease at this burst).
            started = time.monotonic()
            with pytest.raises(Unavailable):
                await limiter.check(tenant, key)
            assert time.monotonic() - started < 5
    finally:
        await blocker.close()
        await limiter.aclose()


def _unreachable_store() -> PostgresBucketStore:
    # Nothing listens on a port just found free: the connection is refused at once.
    return PostgresBucketStore(
        f"postgresql://nobody@127.0.0.1:{free_port()}/none", timeout_seconds=1
    )


async def test_store_down_fail_open_limits_each_worker_on_its_own() -> None:
    limiter = SharedRateLimiter(_unreachable_store(), per_minute=3, burst=3, fail_mode="open")
    tenant, key = uuid.uuid4(), uuid.uuid4()
    for _ in range(3):
        await limiter.check(tenant, key)
    with pytest.raises(RateLimited):
        await limiter.check(tenant, key)
    await limiter.aclose()


async def test_store_down_fail_closed_refuses_with_503() -> None:
    limiter = SharedRateLimiter(_unreachable_store(), per_minute=1000, fail_mode="closed")
    tenant, key = uuid.uuid4(), uuid.uuid4()
    for _ in range(2):  # the first asks the store; the second knows it is down
        with pytest.raises(Unavailable):
            await limiter.check(tenant, key)
    await limiter.aclose()


async def test_fail_closed_over_http_is_503_problem_with_retry_after(
    client: httpx.AsyncClient, tenant_a: Tenant, app: Any
) -> None:
    app.state.rate_limiter = SharedRateLimiter(
        _unreachable_store(), per_minute=1000, fail_mode="closed"
    )
    r = await client.get("/v1/frameworks", headers=tenant_a.headers)
    assert r.status_code == 503
    assert r.headers["content-type"] == "application/problem+json"
    assert int(r.headers["retry-after"]) >= 1
    assert "RATE_LIMIT_FAIL_MODE" in r.json()["detail"]
    app.state.rate_limiter.fail_mode = "open"
    app.state.rate_limiter.fallback = RateLimiter(per_minute=1000)
    r = await client.get("/v1/frameworks", headers=tenant_a.headers)
    assert r.status_code == 200
    await app.state.rate_limiter.aclose()


async def test_refilled_buckets_are_swept(database: Database) -> None:
    """A bucket untouched for as long as it takes to refill is the same as none (a new key
    starts full), so it is deleted: revoked and idle keys leave no rows behind."""
    url = _postgres(database)
    tenant = uuid.uuid4()
    idle, recent = uuid.uuid4(), uuid.uuid4()
    conn = await asyncpg.connect(url)
    try:
        await conn.executemany(
            "INSERT INTO rate_limit_bucket (tenant_id, key_id, tokens, granted, updated_at)"
            " VALUES ($1, $2, 0, 1, now() - make_interval(secs => $3))",
            [(tenant, idle, 120.0), (tenant, recent, 10.0)],
        )
        store = CountingStore(url, timeout_seconds=5)
        # 60/min with a burst of 60 refills an empty bucket in 60 s.
        limiter = SharedRateLimiter(store, per_minute=60, burst=60, max_lease=10)
        try:
            await limiter.check(tenant, recent)
            left = await conn.fetch(
                "SELECT key_id, tokens FROM rate_limit_bucket WHERE tenant_id = $1", tenant
            )
            assert {row["key_id"] for row in left} == {recent}
            assert store.sweeps == 1
            for _ in range(5):  # later leases do not sweep again within the interval
                await limiter.check(tenant, uuid.uuid4())
            assert store.sweeps == 1 and store.trips == 6
        finally:
            await limiter.aclose()
    finally:
        await conn.close()
