"""Recorded rater-effect estimates: written when an admin records a fit, read by the score path
(the latest per framework version), edited only by erasure (queries only; the caller commits)."""

import uuid
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.models import RaterEffectEstimate, RaterEffectEstimateRater, utcnow
from app.scoring.calibration import RecordedEffect

CHUNK = 5_000  # rows per INSERT, refs per IN list (SQLite bounds a statement's parameters)


def marker(estimate_id: uuid.UUID, revision: int) -> str:
    """What a rendered score remembers of the estimate it used: its id and revision."""
    return f"{estimate_id}:{revision}"


async def record(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    *,
    framework_tenant_id: uuid.UUID,
    framework_version_id: uuid.UUID,
    framework_key: str,
    framework_version: int,
    as_of: datetime,
    window_days: int,
    sigma: float | None,
    raters: Sequence[dict[str, Any]],
) -> RaterEffectEstimate:
    """Store one estimate and its raters (dicts of role, rater_ref, status, effect,
    standard_error, group)."""
    row = RaterEffectEstimate(
        tenant_id=tenant_id,
        framework_tenant_id=framework_tenant_id,
        framework_version_id=framework_version_id,
        framework_key=framework_key,
        framework_version=framework_version,
        as_of=as_of,
        window_days=window_days,
        sigma=sigma,
        recorded_at=utcnow(),
    )
    session.add(row)
    await session.flush()
    table: Any = RaterEffectEstimateRater.__table__  # type: ignore[attr-defined]
    conn = await session.connection()
    values = [{"tenant_id": tenant_id, "estimate_id": row.id, **r} for r in raters]
    for start in range(0, len(values), CHUNK):
        await conn.execute(sa.insert(table), values[start : start + CHUNK])
    return row


async def get(
    session: AsyncSession, tenant_id: uuid.UUID, estimate_id: uuid.UUID
) -> RaterEffectEstimate | None:
    """One of the tenant's estimates."""
    stmt = select(RaterEffectEstimate).where(
        col(RaterEffectEstimate.tenant_id) == tenant_id, col(RaterEffectEstimate.id) == estimate_id
    )
    return (await session.exec(stmt)).first()


async def latest(
    session: AsyncSession, tenant_id: uuid.UUID, framework_version_id: uuid.UUID
) -> RaterEffectEstimate | None:
    """The tenant's latest estimate for a framework version (what the score path uses)."""
    e = RaterEffectEstimate
    stmt = (
        select(e)
        .where(col(e.tenant_id) == tenant_id, col(e.framework_version_id) == framework_version_id)
        .order_by(col(e.recorded_at).desc(), col(e.id).desc())
        .limit(1)
    )
    return (await session.exec(stmt)).first()


async def effects_of(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    estimate_id: uuid.UUID,
    raters: Collection[tuple[str, str]],
) -> dict[tuple[str, str], RecordedEffect]:
    """The recorded effects of the given (role, rater_ref) pairs (those the estimate holds)."""
    refs = sorted({ref for _, ref in raters})
    if not refs:
        return {}
    r = RaterEffectEstimateRater.__table__.c  # type: ignore[attr-defined]
    wanted = set(raters)
    conn = await session.connection()
    found: dict[tuple[str, str], RecordedEffect] = {}
    for start in range(0, len(refs), CHUNK):  # SQLite bounds the parameters of a statement
        stmt = sa.select(r.role, r.rater_ref, r.status, r.effect, r.group).where(
            r.tenant_id == tenant_id,
            r.estimate_id == estimate_id,
            r.rater_ref.in_(refs[start : start + CHUNK]),
        )
        for role, ref, status, effect, group in (await conn.execute(stmt)).all():
            if (role, ref) in wanted:
                found[role, ref] = RecordedEffect(status, effect, group)
    return found


async def forget_rater(session: AsyncSession, tenant_id: uuid.UUID, ref: str) -> int:
    """Remove a person, as a rater, from every estimate of the tenant; each estimate changed
    gets a new revision (so scores made with it are made again). Returns how many changed."""
    r = RaterEffectEstimateRater
    found = select(col(r.estimate_id)).where(col(r.tenant_id) == tenant_id, col(r.rater_ref) == ref)
    ids = sorted(set((await session.exec(found)).all()))
    if not ids:
        return 0
    await session.exec(sa.delete(r).where(col(r.tenant_id) == tenant_id, col(r.rater_ref) == ref))
    e = RaterEffectEstimate
    await session.exec(
        sa.update(e)
        .where(col(e.tenant_id) == tenant_id, col(e.id).in_(ids))
        .values(revision=col(e.revision) + 1)
    )
    return len(ids)
