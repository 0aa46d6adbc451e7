"""Per-API-key rate limiting: a token bucket per key in each worker process.

Buckets live in process memory, so with N workers a key can reach N times the limit; the
README says so. It protects the service from one runaway client, not a quota system.
"""

import math
import time
import uuid
from dataclasses import dataclass

from app.errors import RateLimited


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Allow ``per_minute`` requests per key on average, with bursts up to ``burst``."""

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

    def check(self, key_id: uuid.UUID, now: float | None = None) -> None:
        """Take one token for the key or raise RateLimited with the seconds to wait."""
        if self.take(key_id, now):
            return
        wait = math.ceil((1.0 - self._buckets[key_id].tokens) / self.rate)
        raise RateLimited(
            f"Rate limit of {round(self.rate * 60)} requests per minute exceeded.",
            retry_after_seconds=max(1, wait),
        )
