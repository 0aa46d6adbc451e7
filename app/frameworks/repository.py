"""Framework queries (add/flush, never commit)."""

import uuid
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.models import SYSTEM_TENANT_ID, Assessment, Framework, FrameworkVersion, Rating


def visible_to(tenant_id: uuid.UUID, fw: Any = None) -> Any:
    """The rule of which frameworks a tenant sees, as a condition on framework columns ``fw``:
    its own, and every built-in whose key it does not use for one of its own (the tenant's
    framework shadows the built-in). The probe for a shadowing framework is a scalar subquery
    per row, one lookup in the unique (tenant, key) index, never turned into a scan."""
    fw = Framework.__table__.c if fw is None else fw  # type: ignore[attr-defined]
    own = Framework.__table__.alias("own")  # type: ignore[attr-defined]
    shadowing = (
        sa.select(own.c.id)
        .where(own.c.tenant_id == tenant_id, own.c.key == fw.key)
        .limit(1)
        .scalar_subquery()
    )
    return sa.or_(
        fw.tenant_id == tenant_id, sa.and_(fw.tenant_id == SYSTEM_TENANT_ID, shadowing.is_(None))
    )


async def find_framework(session: AsyncSession, tenant_id: uuid.UUID, key: str) -> Framework | None:
    """The framework the tenant sees under this key: its own, else the built-in one."""
    stmt = select(Framework).where(Framework.key == key, visible_to(tenant_id))
    return (await session.exec(stmt)).first()


async def list_visible(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    *,
    after_key: str | None = None,
    keys: int | None = None,
) -> Sequence[Framework]:
    """The frameworks the tenant sees (one per key), by key; at most ``keys`` of them."""
    stmt = select(Framework).where(visible_to(tenant_id))
    if after_key is not None:
        stmt = stmt.where(col(Framework.key) > after_key)
    stmt = stmt.order_by(col(Framework.key))
    if keys is not None:
        stmt = stmt.limit(keys)
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


async def version_documents(
    session: AsyncSession, owner: uuid.UUID, framework_id: uuid.UUID, number: int
) -> Sequence[sa.Row[uuid.UUID, int, dict[str, Any]]]:
    """(id, version, content) of the framework's versions numbered up to ``number``."""
    fv = FrameworkVersion.__table__.c  # type: ignore[attr-defined]
    stmt = sa.select(fv.id, fv.version, fv.content).where(
        fv.tenant_id == owner, fv.framework_id == framework_id, fv.version <= number
    )
    return (await (await session.connection()).execute(stmt)).all()


_A: Any = Assessment.__table__  # type: ignore[attr-defined]
_R: Any = Rating.__table__  # type: ignore[attr-defined]


def _ratings(*columns: Any) -> Any:
    """A select of ``columns`` over assessments joined to their ratings."""
    a, r = _A.c, _R.c
    return (
        sa.select(*columns)
        .select_from(_A)
        .join(_R, (r.tenant_id == a.tenant_id) & (r.assessment_id == a.id))
    )


async def subject_ratings_of_versions(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    subject_id: uuid.UUID,
    owner: uuid.UUID,
    version_ids: Collection[uuid.UUID],
) -> Sequence[sa.Row[uuid.UUID, str, int, str, str, datetime, int]]:
    """A subject's ratings against these versions of the owner's framework: (version id,
    competency_key, proficiency, rater_ref, rater_role, assessed_at, sequence)."""
    a, r = _A.c, _R.c
    stmt = _ratings(
        a.framework_version_id,
        r.competency_key,
        r.proficiency,
        a.rater_ref,
        a.rater_role,
        a.assessed_at,
        a.sequence,
    ).where(
        a.tenant_id == tenant_id,
        a.subject_id == subject_id,
        a.framework_tenant_id == owner,
        a.framework_version_id.in_(list(version_ids)),
    )
    return (await (await session.connection()).execute(stmt)).all()


async def cohort_ratings_of_versions(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    subject_ids: Sequence[uuid.UUID],
    version_ids: Sequence[uuid.UUID],
    window_start: datetime,
    as_of: datetime,
) -> Sequence[sa.Row[uuid.UUID, uuid.UUID, str, int, str, str, datetime, int]]:
    """The subjects' ratings against these versions in the window (window_start, as_of]:
    (version id, subject id, competency_key, proficiency, rater_role, rater_ref, assessed_at,
    sequence). The caller keeps ``subject_ids`` within a statement's parameters (CHUNK)."""
    a, r = _A.c, _R.c
    stmt = _ratings(
        a.framework_version_id,
        a.subject_id,
        r.competency_key,
        r.proficiency,
        a.rater_role,
        a.rater_ref,
        a.assessed_at,
        a.sequence,
    ).where(
        a.tenant_id == tenant_id,
        a.subject_id.in_(subject_ids),
        a.framework_version_id.in_(version_ids),
        a.assessed_at > window_start,
        a.assessed_at <= as_of,
    )
    return (await (await session.connection()).execute(stmt)).all()
