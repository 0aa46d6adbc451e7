"""Rate limiting per API key: 429 with Retry-After, off by default."""

import uuid

import httpx
import pytest

from app.auth.ratelimit import RateLimiter
from app.errors import RateLimited
from tests.conftest import Tenant

pytestmark = pytest.mark.anyio


def test_bucket_refills_over_time() -> None:
    limiter = RateLimiter(per_minute=60, burst=2)
    key = uuid.uuid4()
    limiter.check(key, now=0.0)
    limiter.check(key, now=0.0)
    with pytest.raises(RateLimited) as refused:
        limiter.check(key, now=0.0)
    assert refused.value.retry_after_seconds == 1
    limiter.check(key, now=1.0)  # one token back after a second at 60/min
    limiter.check(uuid.uuid4(), now=0.0)  # other keys have their own bucket


def test_off_by_default() -> None:
    limiter = RateLimiter(per_minute=0)
    for _ in range(1000):
        limiter.check(uuid.uuid4(), now=0.0)


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
