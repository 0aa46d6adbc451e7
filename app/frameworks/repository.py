"""Framework queries (add/flush, never commit)."""

import uuid
from collections.abc import Sequence
from typing import Any

from sqlmodel import col, func, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.models import SYSTEM_TENANT_ID, Framework, FrameworkVersion


async def find_framework(session: AsyncSession, tenant_id: uuid.UUID, key: str) -> Framework | None:
    """The tenant's own framework with this key, else the built-in one."""
    stmt = (
        select(Framework)
        .where(Framework.key == key, col(Framework.tenant_id).in_([tenant_id, SYSTEM_TENANT_ID]))
        # The tenant's own comes first; the system tenant's nil UUID sorts last descending.
        .order_by(col(Framework.tenant_id).desc())
        .limit(1)
    )
    return (await session.exec(stmt)).first()


async def list_visible(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    *,
    after_key: str | None = None,
    keys: int | None = None,
) -> Sequence[Framework]:
    """The tenant's and the built-in frameworks by key, the tenant's first under each key;
    ``keys`` bounds how many distinct keys (each has at most two rows) are read."""
    stmt = select(Framework).where(
        or_(Framework.tenant_id == tenant_id, Framework.tenant_id == SYSTEM_TENANT_ID)
    )
    if after_key is not None:
        stmt = stmt.where(col(Framework.key) > after_key)
    stmt = stmt.order_by(col(Framework.key), col(Framework.tenant_id).desc())
    if keys is not None:
        stmt = stmt.limit(2 * keys)
    return (await session.exec(stmt)).all()


async def versions_of(session: AsyncSession, fw: Framework) -> Sequence[FrameworkVersion]:
    stmt = (
        select(FrameworkVersion)
        .where(FrameworkVersion.tenant_id == fw.tenant_id, FrameworkVersion.framework_id == fw.id)
        .order_by(col(FrameworkVersion.version))
    )
    return (await session.exec(stmt)).all()


async def get_version(
    session: AsyncSession, fw: Framework, version: int
) -> FrameworkVersion | None:
    stmt = select(FrameworkVersion).where(
        FrameworkVersion.tenant_id == fw.tenant_id,
        FrameworkVersion.framework_id == fw.id,
        FrameworkVersion.version == version,
    )
    return (await session.exec(stmt)).first()


async def latest_published(session: AsyncSession, fw: Framework) -> FrameworkVersion | None:
    stmt = (
        select(FrameworkVersion)
        .where(
            FrameworkVersion.tenant_id == fw.tenant_id,
            FrameworkVersion.framework_id == fw.id,
            FrameworkVersion.status == "published",
        )
        .order_by(col(FrameworkVersion.version).desc())
        .limit(1)
    )
    return (await session.exec(stmt)).first()


async def version_by_id(
    session: AsyncSession, tenant_id: uuid.UUID, version_id: uuid.UUID
) -> FrameworkVersion | None:
    stmt = select(FrameworkVersion).where(
        FrameworkVersion.tenant_id == tenant_id, FrameworkVersion.id == version_id
    )
    return (await session.exec(stmt)).first()


async def max_version(session: AsyncSession, fw: Framework) -> int:
    stmt = select(func.max(FrameworkVersion.version)).where(
        FrameworkVersion.tenant_id == fw.tenant_id, FrameworkVersion.framework_id == fw.id
    )
    return (await session.exec(stmt)).one() or 0


async def version_content(
    session: AsyncSession, owner: uuid.UUID, version_id: uuid.UUID
) -> dict[str, Any]:
    """The stored document of one version."""
    stmt = select(FrameworkVersion.content).where(
        FrameworkVersion.tenant_id == owner, FrameworkVersion.id == version_id
    )
    return dict((await session.exec(stmt)).one())
