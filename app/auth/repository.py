"""Queries for tenants and API keys (add/flush, never commit)."""

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import String, cast, func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.db import TENANT_SETTING
from app.models import ApiKey, Tenant
from app.pagination import after_moment


async def get_key(session: AsyncSession, key_id: uuid.UUID) -> ApiKey | None:
    """A key by id, across tenants: the tenant is not known until the key is checked."""
    return (await session.exec(select(ApiKey).where(ApiKey.id == key_id))).first()


async def get_key_scoping_transaction(session: AsyncSession, key_id: uuid.UUID) -> ApiKey | None:
    """Like get_key, and on Postgres also sets the transaction's tenant in the same round trip.

    Setting it before the secret is checked is harmless: a refused key ends the request, and
    its transaction is rolled back unused.
    """
    conn = await session.connection()
    if conn.dialect.name != "postgresql":
        return await get_key(session, key_id)
    stmt = select(
        ApiKey, func.set_config(TENANT_SETTING, cast(ApiKey.tenant_id, String), True)
    ).where(ApiKey.id == key_id)
    row = (await session.exec(stmt)).first()
    return None if row is None else row[0]


async def get_tenant_by_slug(session: AsyncSession, slug: str) -> Tenant | None:
    return (await session.exec(select(Tenant).where(Tenant.slug == slug))).first()


async def list_keys(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    *,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None,
) -> Sequence[ApiKey]:
    """The tenant's keys, oldest first, keyset-paginated on (created_at, id)."""
    stmt = select(ApiKey).where(ApiKey.tenant_id == tenant_id)
    if after:
        stmt = stmt.where(
            after_moment(col(ApiKey.created_at), col(ApiKey.id), after, newest_first=False)
        )
    stmt = stmt.order_by(col(ApiKey.created_at), col(ApiKey.id)).limit(limit)
    return (await session.exec(stmt)).all()


async def get_tenant_key(
    session: AsyncSession, tenant_id: uuid.UUID, key_id: uuid.UUID
) -> ApiKey | None:
    stmt = select(ApiKey).where(ApiKey.tenant_id == tenant_id, ApiKey.id == key_id)
    return (await session.exec(stmt)).first()


async def revoke_key(
    session: AsyncSession, tenant_id: uuid.UUID, key_id: uuid.UUID, at: datetime
) -> bool:
    """Set the key's revocation moment unless it has one; False when a concurrent revocation
    set it first (its moment stands)."""
    stmt = (
        update(ApiKey)
        .where(
            col(ApiKey.tenant_id) == tenant_id,
            col(ApiKey.id) == key_id,
            col(ApiKey.revoked_at).is_(None),
        )
        .values(revoked_at=at)
    )
    return bool((await session.exec(stmt)).rowcount)
