"""API keys checked in memory: a per-worker cache kept honest by Postgres ``LISTEN/NOTIFY``.

A trigger on ``api_key`` (migration 0009) notifies ``api_key_changed`` with the key's id after
every committed update or delete (a revoke, a tenant erased). Each worker keeps one connection
listening on that channel and drops the key from its cache when the notification arrives, so a
revoke is refused on every worker and replica as soon as Postgres delivers it.

The cache is trusted only while that connection is up: while it is down (database restarting,
SQLite, tests that run without the lifespan) every request reads its key from the database, and
whatever was cached is dropped, because notifications sent meanwhile were lost. Entries also
expire after a TTL, a safety net for a connection that looks alive but no longer delivers.
Expiry (``expires_at``) is compared with the clock on every request, cached or not.
"""

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from app.config import Settings
from app.db import driver_url

log = logging.getLogger(__name__)

KEY_CHANGES_CHANNEL = "api_key_changed"


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """What authentication needs of a stored key (never the secret, only its hash)."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    secret_hash: str
    scopes: frozenset[str]
    expires_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class _Entry:
    record: KeyRecord
    cached_at: float


class KeyCache:
    """Key records by id, used only while invalidation is known to work (see module doc)."""

    def __init__(
        self,
        ttl_seconds: float,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self._clock = clock
        self._entries: dict[uuid.UUID, _Entry] = {}
        self._trusted = False
        # Bumped by every invalidation: a lookup that began before one must not store what it
        # read, which may predate the change that was just announced.
        self._generation = 0

    @property
    def trusted(self) -> bool:
        return self._trusted and self.ttl_seconds > 0

    @property
    def generation(self) -> int:
        """Take this before reading a key from the database; hand it to ``put``."""
        return self._generation

    def get(self, key_id: uuid.UUID) -> KeyRecord | None:
        """The cached record, or None when it must be read from the database."""
        if not self.trusted:
            return None
        entry = self._entries.get(key_id)
        if entry is None:
            return None
        if self._clock() - entry.cached_at >= self.ttl_seconds:
            del self._entries[key_id]
            return None
        return entry.record

    def put(self, record: KeyRecord, generation: int) -> None:
        """Remember a record read from the database when no invalidation came in between."""
        if not self.trusted or generation != self._generation:
            return
        if len(self._entries) >= self.max_entries:
            # Bounded memory: forget the oldest entry (dicts keep insertion order).
            del self._entries[next(iter(self._entries))]
        self._entries[record.id] = _Entry(record, self._clock())

    def invalidate(self, key_id: uuid.UUID) -> None:
        """A key changed: the next request with it reads the database."""
        self._generation += 1
        self._entries.pop(key_id, None)

    def trust(self) -> None:
        """Invalidation works (again): start caching from empty."""
        self._generation += 1
        self._entries.clear()
        self._trusted = True

    def distrust(self) -> None:
        """Invalidation may be missed: forget everything and read the database per request."""
        self._generation += 1
        self._entries.clear()
        self._trusted = False


def listener_dsn(settings: Settings) -> str:
    """The database URL as the plain asyncpg driver takes it."""
    return driver_url(settings.database_url)


class KeyChangeListener:
    """One connection per worker listening for key changes; re-established when it drops."""

    def __init__(
        self,
        settings: Settings,
        cache: KeyCache,
        *,
        retry_seconds: float = 1.0,
        heartbeat_seconds: float = 5.0,
    ) -> None:
        self.dsn = listener_dsn(settings)
        self.cache = cache
        self.connect_timeout = settings.db_connect_timeout_seconds
        self.retry_seconds = retry_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self._was_up = False

    def _on_notification(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            key_id = uuid.UUID(payload)
        except ValueError:
            log.warning("unexpected payload on %s; dropping every cached key", KEY_CHANGES_CHANNEL)
            self.cache.trust()
            return
        self.cache.invalidate(key_id)

    async def run_forever(self) -> None:
        """Listen; when the connection fails, stop trusting the cache and connect again."""
        report = True
        while True:
            try:
                await self._listen_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a database down or restarting: retry, never give up
                if report or self._was_up:  # once per outage, not once a second
                    log.warning(
                        "key change listener down (%s); keys are read from the database "
                        "until it is back",
                        type(exc).__name__,
                    )
                report = self._was_up = False
            await asyncio.sleep(self.retry_seconds)

    async def _listen_once(self) -> None:
        conn = await asyncpg.connect(
            self.dsn,
            timeout=self.connect_timeout,
            server_settings={"application_name": "competency-ladder-key-changes"},
        )
        try:
            lost = asyncio.Event()
            conn.add_termination_listener(lambda _conn: lost.set())
            await conn.add_listener(KEY_CHANGES_CHANNEL, self._on_notification)
            # Listening from here on: whatever changed before is read afresh from the database.
            self.cache.trust()
            self._was_up = True
            log.info("key change listener up; API keys are cached in this worker")
            while not lost.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(lost.wait(), self.heartbeat_seconds)
                if not lost.is_set():
                    # A connection can die without a word (a host gone, a network cut).
                    await conn.execute("SELECT 1", timeout=self.heartbeat_seconds)
            raise ConnectionError("the listening connection was closed")
        finally:
            self.cache.distrust()
            conn.terminate()


def start_key_listener(settings: Settings, cache: KeyCache) -> "asyncio.Task[None] | None":
    """Run the listener in the background on Postgres; SQLite never caches keys."""
    if settings.is_sqlite or cache.ttl_seconds <= 0:
        return None
    listener = KeyChangeListener(settings, cache)
    return asyncio.create_task(listener.run_forever(), name="api-key-change-listener")


async def stop_key_listener(task: "asyncio.Task[None] | None") -> None:
    """Stop the listener and close its connection."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
