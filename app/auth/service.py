"""Tenants and API keys: bootstrap, authentication, issue and revoke."""

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from app.audit.repository import record
from app.auth import repository as repo
from app.auth.keycache import KeyCache, KeyRecord
from app.auth.keys import ADMIN, SCOPES, grants, issue_key, parse_token, secret_matches
from app.auth.principal import Principal
from app.db import bind_tenant, remember_tenant
from app.errors import Conflict, FieldError, Forbidden, InvalidInput, NotFound, Unauthenticated
from app.models import ApiKey, Tenant, utcnow


async def authenticate(
    session: AsyncSession, token: str | None, *, prefix: str, cache: KeyCache | None = None
) -> Principal:
    """Check a bearer token (of the service's key ``prefix``) and scope the session to its
    tenant; 401 for anything doubtful. With a trusted ``cache`` a known key costs no query."""
    if not token:
        raise Unauthenticated("Send an API key as 'Authorization: Bearer <key>'.")
    parsed = parse_token(token, prefix)
    if parsed is None:
        raise Unauthenticated("The API key is malformed.")
    key_id, secret = parsed
    key = cache.get(key_id) if cache is not None else None
    if key is None:
        generation = cache.generation if cache is not None else 0
        row = await repo.get_key_scoping_transaction(session, key_id)
        if row is not None:
            key = KeyRecord(
                id=row.id,
                tenant_id=row.tenant_id,
                secret_hash=row.secret_hash,
                scopes=frozenset(row.scopes),
                expires_at=row.expires_at,
                revoked_at=row.revoked_at,
            )
            if cache is not None:
                cache.put(key, generation)
    # Same message for unknown and wrong secret: do not reveal which key ids exist.
    if key is None or not secret_matches(secret, key.secret_hash):
        raise Unauthenticated("The API key is not valid.")
    if key.revoked_at is not None:
        raise Unauthenticated("The API key has been revoked.")
    if key.expires_at is not None and key.expires_at <= utcnow():
        raise Unauthenticated("The API key has expired.")
    # A database lookup already set this transaction's tenant on Postgres; later transactions
    # (and the first one after a cache hit) set it when they begin.
    remember_tenant(session, key.tenant_id)
    return Principal(tenant_id=key.tenant_id, key_id=key.id, scopes=key.scopes)


def require_scope(principal: Principal, scope: str) -> None:
    """403 unless the principal holds the scope (or admin)."""
    if not grants(principal.scopes, scope):
        raise Forbidden(f"This operation needs the '{scope}' scope.")


def _check_scopes(scopes: Iterable[str]) -> list[str]:
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise InvalidInput(
            f"Unknown scope(s): {', '.join(unknown)}.",
            errors=[
                FieldError(loc=["body", "scopes"], msg=f"unknown scope {s!r}", type="enum")
                for s in unknown
            ],
        )
    return sorted(set(scopes))


async def create_tenant(session: AsyncSession, slug: str, name: str) -> Tenant:
    """A new tenant (bootstrap and operators only; not exposed over HTTP)."""
    if await repo.get_tenant_by_slug(session, slug) is not None:
        raise Conflict(f"A tenant with slug {slug!r} exists.")
    tenant = Tenant(slug=slug, name=name)
    session.add(tenant)
    await session.flush()
    return tenant


async def bootstrap_tenant(
    session: AsyncSession,
    slug: str,
    *,
    name: str | None = None,
    prefix: str,
    scopes: Sequence[str] = (ADMIN,),
    key_name: str = "first admin key",
    expires_at: datetime | None = None,
    reuse_existing: bool = False,
) -> tuple[Tenant, str]:
    """A tenant and a key for it (an admin key by default): how the CLI, the tests and the
    example recording all start. With ``reuse_existing`` a tenant of that slug gets a new key."""
    tenant = await repo.get_tenant_by_slug(session, slug) if reuse_existing else None
    if tenant is None:
        tenant = await create_tenant(session, slug, name or slug)
    _, token = await create_key(
        session,
        tenant.id,
        name=key_name,
        scopes=scopes,
        expires_at=expires_at,
        prefix=prefix,
        actor=None,
    )
    return tenant, token


async def create_key(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    *,
    name: str,
    scopes: Sequence[str],
    expires_at: datetime | None,
    prefix: str,
    actor: Principal | None,
) -> tuple[ApiKey, str]:
    """Issue a key; the token is returned once and only its hash is stored."""
    checked = _check_scopes(scopes)
    if actor is not None and not grants(actor.scopes, ADMIN):
        raise Forbidden("Only admin keys can issue keys.")
    if expires_at is not None and expires_at <= utcnow():
        raise InvalidInput(
            "expires_at must lie in the future.",
            errors=[
                FieldError(
                    loc=["body", "expires_at"], msg="must be in the future", type="value_error"
                )
            ],
        )
    await bind_tenant(session, tenant_id)
    issued = issue_key(prefix)
    key = ApiKey(
        tenant_id=tenant_id,
        id=issued.id,
        name=name,
        secret_hash=issued.secret_hash,
        scopes=checked,
        expires_at=expires_at,
        created_by_key_id=actor.key_id if actor else None,
    )
    session.add(key)
    bootstrap = Principal(tenant_id=tenant_id, key_id=None, scopes=frozenset({ADMIN}))
    record(
        session,
        actor or bootstrap,
        "api_key.created",
        "api_key",
        str(key.id),
        {"name": name, "scopes": checked},
    )
    await session.flush()
    return key, issued.token


async def revoke_key(session: AsyncSession, principal: Principal, key_id: uuid.UUID) -> ApiKey:
    """Revoke a key of the caller's tenant; revoking twice keeps the first time."""
    key = await repo.get_tenant_key(session, principal.tenant_id, key_id)
    if key is None:
        raise NotFound(f"No API key {key_id} in this tenant.")
    if key.revoked_at is None:
        if await repo.revoke_key(session, principal.tenant_id, key.id, utcnow()):
            record(session, principal, "api_key.revoked", "api_key", str(key.id))
            await session.flush()
        await session.refresh(key)  # this revocation's moment, or a concurrent one's
    return key
