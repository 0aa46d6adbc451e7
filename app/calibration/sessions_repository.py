"""Calibration session queries (add/flush, never commit)."""

import json
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import insert
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.models import CalibrationMember, CalibrationProposal, CalibrationSession
from app.pagination import after_moment


async def get(
    session: AsyncSession, tenant_id: uuid.UUID, session_id: uuid.UUID, *, lock: bool = False
) -> CalibrationSession | None:
    """A session of the tenant; with ``lock`` its row is held (FOR UPDATE) until the transaction
    ends: writes to one session (proposals, withdrawals, the close) take turns, so a close waits
    for proposals in flight and they for it, and two first proposals of one cell never collide."""
    stmt = select(CalibrationSession).where(
        CalibrationSession.tenant_id == tenant_id, CalibrationSession.id == session_id
    )
    if lock:
        stmt = stmt.with_for_update()
    # populate_existing: a locked read must see the row as it is now, not as first loaded.
    return (await session.exec(stmt.execution_options(populate_existing=True))).first()


async def page(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    *,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None,
) -> list[CalibrationSession]:
    """Newest first, keyset-paginated on (created_at, id)."""
    stmt = select(CalibrationSession).where(CalibrationSession.tenant_id == tenant_id)
    if after is not None:
        stmt = stmt.where(
            after_moment(
                col(CalibrationSession.created_at),
                col(CalibrationSession.id),
                after,
                newest_first=True,
            )
        )
    stmt = stmt.order_by(
        col(CalibrationSession.created_at).desc(), col(CalibrationSession.id).desc()
    ).limit(limit)
    return list((await session.exec(stmt)).all())


async def counts(
    session: AsyncSession, tenant_id: uuid.UUID, session_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, tuple[int, int]]:
    """Per session: (people in the snapshot, standing proposals)."""
    if not session_ids:
        return {}
    people_stmt = (
        sa.select(CalibrationMember.session_id, func.count())  # type: ignore[call-overload]
        .where(
            CalibrationMember.tenant_id == tenant_id,
            col(CalibrationMember.session_id).in_(session_ids),
        )
        .group_by(CalibrationMember.session_id)
    )
    proposal_stmt = (
        sa.select(CalibrationProposal.session_id, func.count())  # type: ignore[call-overload]
        .where(
            CalibrationProposal.tenant_id == tenant_id,
            col(CalibrationProposal.session_id).in_(session_ids),
            col(CalibrationProposal.withdrawn_at).is_(None),
        )
        .group_by(CalibrationProposal.session_id)
    )
    conn = await session.connection()
    people = dict((await conn.execute(people_stmt)).all())
    proposals = dict((await conn.execute(proposal_stmt)).all())
    return {i: (people.get(i, 0), proposals.get(i, 0)) for i in session_ids}


async def add_members(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Insert a snapshot's members (one executemany, no ORM objects)."""
    if rows:
        conn = await session.connection()
        await conn.execute(insert(CalibrationMember.__table__), rows)  # type: ignore[attr-defined]


async def members(
    session: AsyncSession, tenant_id: uuid.UUID, session_id: uuid.UUID
) -> list[CalibrationMember]:
    """The snapshot's people in the order it was taken."""
    stmt = (
        select(CalibrationMember)
        .where(CalibrationMember.tenant_id == tenant_id, CalibrationMember.session_id == session_id)
        .order_by(col(CalibrationMember.position))
    )
    return list((await session.exec(stmt)).all())


async def member_by_ref(
    session: AsyncSession, tenant_id: uuid.UUID, session_id: uuid.UUID, refs: Sequence[str]
) -> dict[str, CalibrationMember]:
    """The snapshot's members among ``refs``, by ref."""
    stmt = select(CalibrationMember).where(
        CalibrationMember.tenant_id == tenant_id,
        CalibrationMember.session_id == session_id,
        col(CalibrationMember.subject_ref).in_(refs),
    )
    return {m.subject_ref: m for m in (await session.exec(stmt)).all()}


async def proposals(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    session_id: uuid.UUID,
    *,
    standing_only: bool = False,
    limit: int | None = None,
    after: tuple[str, str] | None = None,
) -> list[tuple[CalibrationProposal, CalibrationMember]]:
    """Proposals with their member, by person ref then competency."""
    stmt = (
        select(CalibrationProposal, CalibrationMember)
        .join(
            CalibrationMember,
            sa.and_(
                col(CalibrationMember.tenant_id) == col(CalibrationProposal.tenant_id),
                col(CalibrationMember.session_id) == col(CalibrationProposal.session_id),
                col(CalibrationMember.subject_id) == col(CalibrationProposal.subject_id),
            ),
        )
        .where(
            CalibrationProposal.tenant_id == tenant_id,
            CalibrationProposal.session_id == session_id,
        )
    )
    if standing_only:
        stmt = stmt.where(col(CalibrationProposal.withdrawn_at).is_(None))
    if after is not None:
        ref, key = after
        stmt = stmt.where(
            sa.or_(
                col(CalibrationMember.subject_ref) > ref,
                sa.and_(
                    col(CalibrationMember.subject_ref) == ref,
                    col(CalibrationProposal.competency_key) > key,
                ),
            )
        )
    stmt = stmt.order_by(
        col(CalibrationMember.subject_ref), col(CalibrationProposal.competency_key)
    )
    if limit is not None:
        stmt = stmt.limit(limit)
    return [(p, m) for p, m in (await session.exec(stmt)).all()]


async def proposal(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    session_id: uuid.UUID,
    subject_id: uuid.UUID,
    competency: str,
) -> CalibrationProposal | None:
    return await session.get(CalibrationProposal, (tenant_id, session_id, subject_id, competency))


async def forget_subject(
    session: AsyncSession, tenant_id: uuid.UUID, redact: Callable[[str], str]
) -> int:
    """Erasure, in the caller's transaction: the person's members and proposals cascade with
    their row; here every session's stored rater effects lose the person's ref (a self rater
    is named by it). Returns how many sessions changed."""
    stmt = select(CalibrationSession).where(CalibrationSession.tenant_id == tenant_id)
    changed = 0
    for row in (await session.exec(stmt)).all():
        text = json.dumps(row.rater_effects, ensure_ascii=False)
        redacted = redact(text)
        if redacted != text:
            row.rater_effects = json.loads(redacted)
            session.add(row)
            changed += 1
    await session.flush()
    return changed
