"""Subject queries (add/flush, never commit)."""

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import insert
from sqlmodel import col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.models import IdempotencyRecord, Subject


async def by_ref(session: AsyncSession, tenant_id: uuid.UUID, ref: str) -> Subject | None:
    stmt = select(Subject).where(Subject.tenant_id == tenant_id, Subject.external_ref == ref)
    return (await session.exec(stmt)).first()


async def by_refs(
    session: AsyncSession, tenant_id: uuid.UUID, refs: list[str], *, hold: bool = False
) -> list[Subject]:
    """The tenant's subjects among the refs; ``hold`` keeps them from being erased (FOR KEY
    SHARE on Postgres) until the caller's transaction ends, e.g. while a report names them."""
    stmt = select(Subject).where(
        Subject.tenant_id == tenant_id, col(Subject.external_ref).in_(refs)
    )
    if hold:
        stmt = stmt.with_for_update(read=True, key_share=True)
    return list((await session.exec(stmt)).all())


async def page(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    *,
    limit: int,
    after_ref: str | None,
    track: str | None,
    current_level: str | None,
    attributes: Mapping[str, str],
) -> list[Subject]:
    """Subjects ordered by external_ref, keyset-paginated, filtered."""
    stmt = select(Subject).where(Subject.tenant_id == tenant_id)
    if after_ref is not None:
        stmt = stmt.where(col(Subject.external_ref) > after_ref)
    if track is not None:
        stmt = stmt.where(Subject.track == track)
    if current_level is not None:
        stmt = stmt.where(Subject.current_level == current_level)
    for key, value in attributes.items():
        stmt = stmt.where(col(Subject.attributes)[key].as_string() == value)
    stmt = stmt.order_by(col(Subject.external_ref)).limit(limit)
    return list((await session.exec(stmt)).all())


async def insert_many(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Insert many subjects in one executemany statement (no ORM objects)."""
    conn = await session.connection()
    await conn.execute(insert(Subject.__table__), rows)  # type: ignore[attr-defined]


async def erase(session: AsyncSession, subject: Subject) -> bool:
    """Delete the person; assessments, ratings and completed activities cascade with them.
    False when the row was already gone (a concurrent erasure deleted it first)."""
    result = await session.exec(
        delete(Subject).where(
            col(Subject.tenant_id) == subject.tenant_id, col(Subject.id) == subject.id
        )
    )
    return bool(result.rowcount)


async def stored_responses_naming(
    session: AsyncSession, tenant_id: uuid.UUID, ref: str
) -> list[IdempotencyRecord]:
    """Stored idempotent responses of the tenant whose text contains the ref and that are not
    tied to one subject (bulk reports: they name several people)."""
    stmt = select(IdempotencyRecord).where(
        IdempotencyRecord.tenant_id == tenant_id,
        col(IdempotencyRecord.subject_id).is_(None),
        col(IdempotencyRecord.body).contains(ref, autoescape=True),
    )
    return list((await session.exec(stmt)).all())


async def refs_and_tracks(
    session: AsyncSession, tenant_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, tuple[str, str | None]]:
    """External ref and track of each of the subjects that still exist, by id."""
    stmt = select(Subject.id, Subject.external_ref, Subject.track).where(
        col(Subject.tenant_id) == tenant_id, col(Subject.id).in_(ids)
    )
    return {r[0]: (r[1], r[2]) for r in (await session.exec(stmt)).all()}
