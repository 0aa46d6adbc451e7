"""The in-memory API key cache: used only while trusted, bounded by a TTL, never stale after an
invalidation, and never skipping the expiry, revocation and secret checks.

Invalidation across workers (LISTEN/NOTIFY through a real two-worker server) is tested in
``tests/fault/test_key_revocation.py``.
"""

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from app.auth.keycache import KeyCache, KeyRecord
from app.auth.keys import format_token, hash_secret
from app.auth.service import authenticate
from app.errors import Unauthenticated
from app.models import utcnow
from tests.conftest import Tenant

PREFIX = "cl"
SECRET = "S" * 43


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def record(**changes: object) -> KeyRecord:
    fields: dict[str, object] = {
        "id": uuid.uuid4(),
        "tenant_id": uuid.uuid4(),
        "secret_hash": hash_secret(SECRET),
        "scopes": frozenset({"subjects:read"}),
        "expires_at": None,
        "revoked_at": None,
    }
    fields.update(changes)
    return KeyRecord(**fields)  # type: ignore[arg-type]


def trusted_cache(ttl: float = 60.0, **kwargs: object) -> KeyCache:
    cache = KeyCache(ttl, **kwargs)  # type: ignore[arg-type]
    cache.trust()
    return cache


def test_an_untrusted_cache_answers_nothing_and_keeps_nothing() -> None:
    cache = KeyCache(60.0)
    key = record()
    cache.put(key, cache.generation)
    assert cache.get(key.id) is None
    cache.trust()
    assert cache.get(key.id) is None  # nothing was kept while untrusted


def test_a_trusted_cache_answers_until_the_ttl() -> None:
    clock = FakeClock()
    cache = trusted_cache(30.0, clock=clock)
    key = record()
    cache.put(key, cache.generation)
    assert cache.get(key.id) == key
    clock.now += 29.9
    assert cache.get(key.id) == key
    clock.now += 0.1
    assert cache.get(key.id) is None


def test_a_zero_ttl_turns_the_cache_off() -> None:
    cache = trusted_cache(0.0)
    key = record()
    cache.put(key, cache.generation)
    assert not cache.trusted
    assert cache.get(key.id) is None


def test_an_invalidated_key_is_read_again() -> None:
    cache = trusted_cache()
    key, other = record(), record()
    cache.put(key, cache.generation)
    cache.put(other, cache.generation)
    cache.invalidate(key.id)
    assert cache.get(key.id) is None
    assert cache.get(other.id) == other


def test_a_lookup_that_raced_an_invalidation_is_not_stored() -> None:
    # A request reads the key, the revoke commits and its notification arrives, then the
    # request would store what it read before the revoke: that copy must not be kept.
    cache = trusted_cache()
    key = record()
    before = cache.generation
    cache.invalidate(key.id)
    cache.put(key, before)
    assert cache.get(key.id) is None


def test_losing_the_listener_forgets_everything() -> None:
    cache = trusted_cache()
    key = record()
    cache.put(key, cache.generation)
    cache.distrust()
    assert cache.get(key.id) is None
    cache.trust()  # the listener is back: notifications sent meanwhile were lost
    assert cache.get(key.id) is None


def test_the_cache_is_bounded() -> None:
    cache = trusted_cache(max_entries=3)
    keys = [record() for _ in range(4)]
    for key in keys:
        cache.put(key, cache.generation)
    assert cache.get(keys[0].id) is None
    assert all(cache.get(key.id) == key for key in keys[1:])


# authenticate() with a cache: a cached key is checked in memory, with every rule still applied.


@pytest.fixture
async def db_session(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    async with sessionmaker() as session:
        yield session


def token_of(key: KeyRecord, secret: str = SECRET) -> str:
    return format_token(PREFIX, key.id, secret)


@pytest.mark.anyio
async def test_a_cached_key_needs_no_lookup(db_session: AsyncSession) -> None:
    # The key is in no table: only the cache can vouch for it.
    cache = trusted_cache()
    key = record()
    cache.put(key, cache.generation)
    principal = await authenticate(db_session, token_of(key), prefix=PREFIX, cache=cache)
    assert (principal.tenant_id, principal.key_id, principal.scopes) == (
        key.tenant_id,
        key.id,
        key.scopes,
    )
    # Untrusted, the same cache is ignored and the database says the key does not exist.
    cache.distrust()
    with pytest.raises(Unauthenticated, match="not valid"):
        await authenticate(db_session, token_of(key), prefix=PREFIX, cache=cache)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("changes", "secret", "reason"),
    [
        ({}, "x" * 43, "not valid"),
        ({"revoked_at": utcnow()}, SECRET, "revoked"),
        ({"expires_at": utcnow() - timedelta(seconds=1)}, SECRET, "expired"),
    ],
    ids=["wrong secret", "revoked", "expired"],
)
async def test_a_cached_key_is_still_checked(
    db_session: AsyncSession, changes: dict[str, object], secret: str, reason: str
) -> None:
    cache = trusted_cache()
    key = record(**changes)
    cache.put(key, cache.generation)
    with pytest.raises(Unauthenticated, match=reason):
        await authenticate(db_session, token_of(key, secret), prefix=PREFIX, cache=cache)


@pytest.mark.anyio
async def test_a_key_read_from_the_database_is_cached(
    db_session: AsyncSession, tenant_a: Tenant
) -> None:
    cache = trusted_cache()
    principal = await authenticate(db_session, tenant_a.admin_key, prefix=PREFIX, cache=cache)
    assert principal.key_id is not None
    cached = cache.get(principal.key_id)
    assert cached is not None
    assert cached.tenant_id == tenant_a.id
