"""Queries for learning records: statements, actor mappings, the unmapped report."""

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, delete, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.models import (
    SYSTEM_TENANT_ID,
    CompletedActivity,
    FrameworkVersion,
    LearningRecordAgent,
    LearningRecordSettings,
    Subject,
    XapiStatement,
    XapiUnmapped,
)


async def settings(session: AsyncSession, tenant_id: uuid.UUID) -> LearningRecordSettings | None:
    """The tenant's learning-record settings, if it saved any."""
    return await session.get(LearningRecordSettings, tenant_id)


async def published_versions(
    session: AsyncSession, tenant_id: uuid.UUID
) -> list[tuple[uuid.UUID, uuid.UUID, int]]:
    """(owner, version id, revision) of every published version the tenant sees: its own and
    the built-in ones."""
    stmt = select(FrameworkVersion.tenant_id, FrameworkVersion.id, FrameworkVersion.revision).where(
        col(FrameworkVersion.tenant_id).in_([tenant_id, SYSTEM_TENANT_ID]),
        FrameworkVersion.status == "published",
    )
    return [(owner, vid, revision) for owner, vid, revision in (await session.exec(stmt)).all()]


async def activities_of(
    session: AsyncSession, owner: uuid.UUID, version_id: uuid.UUID
) -> list[dict[str, Any]]:
    """The activities of one stored framework version, as stored."""
    stmt = select(FrameworkVersion.content).where(
        FrameworkVersion.tenant_id == owner, FrameworkVersion.id == version_id
    )
    content = (await session.exec(stmt)).one()
    return list(content.get("activities", []))


async def subjects_by_ref(
    session: AsyncSession, tenant_id: uuid.UUID, refs: Collection[str]
) -> dict[str, uuid.UUID]:
    """Subject ids by external ref, for the refs that exist."""
    if not refs:
        return {}
    stmt = select(Subject.external_ref, Subject.id).where(
        Subject.tenant_id == tenant_id, col(Subject.external_ref).in_(list(refs))
    )
    return {ref: sid for ref, sid in (await session.exec(stmt)).all()}


async def subjects_by_mbox(
    session: AsyncSession, tenant_id: uuid.UUID, sums: Collection[str]
) -> dict[str, uuid.UUID]:
    """Subject ids by the SHA-1 of a registered mailbox."""
    if not sums:
        return {}
    stmt = select(LearningRecordAgent.mbox_sha1sum, LearningRecordAgent.subject_id).where(
        LearningRecordAgent.tenant_id == tenant_id,
        col(LearningRecordAgent.mbox_sha1sum).in_(list(sums)),
    )
    return {s: sid for s, sid in (await session.exec(stmt)).all()}


async def agents_of(
    session: AsyncSession, tenant_id: uuid.UUID, subject_id: uuid.UUID
) -> list[LearningRecordAgent]:
    """The mailboxes registered for one subject."""
    stmt = select(LearningRecordAgent).where(
        LearningRecordAgent.tenant_id == tenant_id,
        LearningRecordAgent.subject_id == subject_id,
    )
    return list((await session.exec(stmt)).all())


async def agent(
    session: AsyncSession, tenant_id: uuid.UUID, sha1: str
) -> LearningRecordAgent | None:
    """The registration of one mailbox, if any."""
    return await session.get(LearningRecordAgent, (tenant_id, sha1))


@dataclass(frozen=True, slots=True)
class StatementHead:
    """What a stored statement is, without its content."""

    digest: str
    verb: str
    voided: bool


async def statement_heads(
    session: AsyncSession, tenant_id: uuid.UUID, ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, StatementHead]:
    """Digest, verb and voided flag of the stored statements among these ids."""
    if not ids:
        return {}
    stmt = select(
        XapiStatement.id, XapiStatement.digest, XapiStatement.verb, XapiStatement.voided
    ).where(XapiStatement.tenant_id == tenant_id, col(XapiStatement.id).in_(list(ids)))
    return {sid: StatementHead(d, v, voided) for sid, d, v, voided in await session.exec(stmt)}


async def statement(
    session: AsyncSession, tenant_id: uuid.UUID, statement_id: uuid.UUID
) -> XapiStatement | None:
    """One stored statement."""
    return await session.get(XapiStatement, (tenant_id, statement_id))


async def completed_pairs(
    session: AsyncSession, tenant_id: uuid.UUID, subject_ids: Collection[uuid.UUID]
) -> set[tuple[uuid.UUID, str]]:
    """(subject, activity key) of every completed activity of these subjects."""
    if not subject_ids:
        return set()
    stmt = select(CompletedActivity.subject_id, CompletedActivity.activity_key).where(
        CompletedActivity.tenant_id == tenant_id,
        col(CompletedActivity.subject_id).in_(list(subject_ids)),
    )
    return {(sid, key) for sid, key in (await session.exec(stmt)).all()}


async def add_new(session: AsyncSession, table: Any, rows: Sequence[dict[str, Any]]) -> None:
    """Insert many rows in one executemany statement, skipping any whose key a concurrent
    request stored first (checked before, so only a race meets one)."""
    if not rows:
        return
    conn = await session.connection()
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(table.__table__).on_conflict_do_nothing()
    await conn.execute(stmt, list(rows))


async def void(session: AsyncSession, tenant_id: uuid.UUID, ids: Collection[uuid.UUID]) -> int:
    """Mark statements voided and remove the completions they recorded; how many went."""
    if not ids:
        return 0
    await session.exec(
        update(XapiStatement)
        .where(col(XapiStatement.tenant_id) == tenant_id, col(XapiStatement.id).in_(list(ids)))
        .values(voided=True)
    )
    result = await session.exec(
        delete(CompletedActivity).where(
            col(CompletedActivity.tenant_id) == tenant_id,
            col(CompletedActivity.statement_id).in_(list(ids)),
        )
    )
    return int(result.rowcount)


async def unmapped(session: AsyncSession, tenant_id: uuid.UUID) -> list[XapiUnmapped]:
    """The lines of the unmapped report, most recently seen first."""
    stmt = (
        select(XapiUnmapped)
        .where(XapiUnmapped.tenant_id == tenant_id)
        .order_by(col(XapiUnmapped.last_seen_at).desc(), col(XapiUnmapped.id))
    )
    return list((await session.exec(stmt)).all())


async def unmapped_counts(
    session: AsyncSession, tenant_id: uuid.UUID, ids: Collection[str]
) -> dict[str, int]:
    """How many statements each of these report lines has counted, for those that exist."""
    stmt = select(XapiUnmapped.id, XapiUnmapped.statements).where(
        XapiUnmapped.tenant_id == tenant_id, col(XapiUnmapped.id).in_(list(ids))
    )
    return {line_id: count for line_id, count in await session.exec(stmt)}


async def count_more(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Add to the counts of existing report lines and move their last-seen times, in one
    executemany."""
    if not rows:
        return
    table = XapiUnmapped.__table__  # type: ignore[attr-defined]
    stmt = (
        update(table)
        .where(
            table.c.tenant_id == bindparam("t"),
            table.c.id == bindparam("line"),
        )
        .values(statements=table.c.statements + bindparam("more"), last_seen_at=bindparam("seen"))
    )
    conn = await session.connection()
    await conn.execute(stmt, list(rows))


async def trim_unmapped(session: AsyncSession, tenant_id: uuid.UUID, keep: int) -> None:
    """Drop the least recently seen report lines beyond ``keep``, in one statement."""
    stale = (
        select(XapiUnmapped.id)
        .where(XapiUnmapped.tenant_id == tenant_id)
        .order_by(col(XapiUnmapped.last_seen_at).desc(), col(XapiUnmapped.id))
        .offset(keep)
    )
    await session.exec(
        delete(XapiUnmapped).where(
            col(XapiUnmapped.tenant_id) == tenant_id, col(XapiUnmapped.id).in_(stale)
        )
    )


async def forget_subject(
    session: AsyncSession, tenant_id: uuid.UUID, subject_id: uuid.UUID, ref: str
) -> int:
    """Remove the unmapped-report lines that name the person (an account named by their ref,
    or a mailbox registered to them); their statements and mailboxes go with the subject row.
    Call before the subject row is deleted. Returns how many lines went."""
    sums = [a.mbox_sha1sum for a in await agents_of(session, tenant_id, subject_id)]
    named = (col(XapiUnmapped.actor_kind) == "account") & (
        col(XapiUnmapped.actor_id).like(
            "%|" + ref.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_"), escape="\\"
        )
    )
    condition = named
    if sums:
        condition = named | col(XapiUnmapped.actor_mbox_sha1sum).in_(sums)
    result = await session.exec(
        delete(XapiUnmapped).where(col(XapiUnmapped.tenant_id) == tenant_id, condition)
    )
    return int(result.rowcount)
