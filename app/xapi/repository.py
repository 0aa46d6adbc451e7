"""Queries for learning records: statements, actor mappings, the unmapped report."""

import json
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy import delete, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.models import (
    SYSTEM_TENANT_ID,
    Assessment,
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


@dataclass(frozen=True, slots=True)
class StatementHead:
    """What a stored statement is, without its content."""

    digest: str
    verb: str
    voided: bool


@dataclass
class Known:
    """What a list of statements needs to know of the tenant, read in one round trip."""

    heads: dict[uuid.UUID, StatementHead] = field(default_factory=dict)
    home_pages: set[str] = field(default_factory=set)
    result_ratings: bool = False
    by_ref: dict[str, uuid.UUID] = field(default_factory=dict)
    by_mbox: dict[str, uuid.UUID] = field(default_factory=dict)
    # (owner, version id, revision) of every published version the tenant sees: its own and
    # the built-in ones.
    versions: list[tuple[uuid.UUID, uuid.UUID, int]] = field(default_factory=list)


def _row(kind: str, text: Any, detail: Any, first: Any, second: Any, number: Any) -> list[Any]:
    return [sa.literal(kind, sa.String).label("kind"), text, detail, first, second, number]


async def look_up(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    statement_ids: Collection[uuid.UUID],
    refs: Collection[str],
    sums: Collection[str],
) -> Known:
    """The stored statements among these ids, the tenant's settings, the subjects these
    account names and mailbox sums name, and the published framework versions, as one
    UNION ALL query."""
    no_text, no_id, no_number = (
        sa.cast(sa.null(), sa.String),
        sa.cast(sa.null(), sa.Uuid),
        sa.cast(sa.null(), sa.Integer),
    )
    saved = LearningRecordSettings.__table__.c  # type: ignore[attr-defined]
    version = FrameworkVersion.__table__.c  # type: ignore[attr-defined]
    stored = XapiStatement.__table__.c  # type: ignore[attr-defined]
    parts = [
        sa.select(
            *_row(
                "settings",
                sa.cast(saved.account_home_pages, sa.String),
                no_text,
                no_id,
                no_id,
                sa.cast(saved.result_ratings, sa.Integer),
            )
        ).where(saved.tenant_id == tenant_id),
        sa.select(
            *_row("version", no_text, no_text, version.id, version.tenant_id, version.revision)
        ).where(
            version.tenant_id.in_([tenant_id, SYSTEM_TENANT_ID]), version.status == "published"
        ),
    ]
    if statement_ids:
        parts.append(
            sa.select(
                *_row(
                    "statement",
                    stored.digest,
                    stored.verb,
                    stored.id,
                    no_id,
                    sa.cast(stored.voided, sa.Integer),
                )
            ).where(stored.tenant_id == tenant_id, stored.id.in_(list(statement_ids)))
        )
    if refs:
        subject = Subject.__table__.c  # type: ignore[attr-defined]
        parts.append(
            sa.select(
                *_row("ref", subject.external_ref, no_text, subject.id, no_id, no_number)
            ).where(subject.tenant_id == tenant_id, subject.external_ref.in_(list(refs)))
        )
    if sums:
        agent = LearningRecordAgent.__table__.c  # type: ignore[attr-defined]
        parts.append(
            sa.select(
                *_row("mbox", agent.mbox_sha1sum, no_text, agent.subject_id, no_id, no_number)
            ).where(agent.tenant_id == tenant_id, agent.mbox_sha1sum.in_(list(sums)))
        )
    out = Known()
    conn = await session.connection()
    for kind, text, detail, first, second, number in await conn.execute(sa.union_all(*parts)):
        if kind == "statement":
            out.heads[first] = StatementHead(text, detail, bool(number))
        elif kind == "settings":
            out.home_pages = set(json.loads(text))
            out.result_ratings = bool(number)
        elif kind == "version":
            out.versions.append((second, first, number))
        elif kind == "ref":
            out.by_ref[text] = first
        else:
            out.by_mbox[text] = first
    return out


async def framework_content(
    session: AsyncSession, owner: uuid.UUID, version_id: uuid.UUID
) -> dict[str, Any]:
    """One stored framework version's document."""
    stmt = select(FrameworkVersion.content).where(
        FrameworkVersion.tenant_id == owner, FrameworkVersion.id == version_id
    )
    return dict((await session.exec(stmt)).one())


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


async def add_new(
    session: AsyncSession, table: Any, rows: Sequence[dict[str, Any]], returning: str
) -> list[Any]:
    """Insert many rows in one multi-row statement, skipping any whose key is stored already
    (by a concurrent request, or earlier in the same list); answers ``returning`` of each row
    that went in."""
    if not rows:
        return []
    conn = await session.connection()
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    columns = table.__table__.c
    stmt = dialect.insert(table.__table__).on_conflict_do_nothing().returning(columns[returning])
    return list((await conn.execute(stmt, list(rows))).scalars())


async def assessments_of_statements(
    session: AsyncSession, tenant_id: uuid.UUID, ids: Collection[uuid.UUID]
) -> list[tuple[uuid.UUID, uuid.UUID, uuid.UUID]]:
    """(subject, framework owner, framework version) of each assessment the statements made."""
    if not ids:
        return []
    stmt = select(
        Assessment.subject_id, Assessment.framework_tenant_id, Assessment.framework_version_id
    ).where(col(Assessment.tenant_id) == tenant_id, col(Assessment.statement_id).in_(list(ids)))
    return [tuple(row) for row in (await session.exec(stmt)).all()]  # type: ignore[misc]


async def void(session: AsyncSession, tenant_id: uuid.UUID, ids: Collection[uuid.UUID]) -> int:
    """Mark statements voided and remove the completions and assessments they recorded; how
    many completions went."""
    if not ids:
        return 0
    await session.exec(
        update(XapiStatement)
        .where(col(XapiStatement.tenant_id) == tenant_id, col(XapiStatement.id).in_(list(ids)))
        .values(voided=True)
    )
    await session.exec(
        delete(Assessment).where(
            col(Assessment.tenant_id) == tenant_id, col(Assessment.statement_id).in_(list(ids))
        )
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


async def count_unmapped(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> bool:
    """Add report lines, or add to the counts of existing ones and move their last-seen
    times, in one statement; True if a line is new (the report may have grown past its
    bound)."""
    if not rows:
        return False
    conn = await session.connection()
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    table = XapiUnmapped.__table__  # type: ignore[attr-defined]
    stmt = dialect.insert(table)
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c.tenant_id, table.c.id],
        set_={
            "statements": table.c.statements + stmt.excluded.statements,
            "last_seen_at": stmt.excluded.last_seen_at,
        },
    ).returning(table.c.id, table.c.statements)
    sent = {row["id"]: row["statements"] for row in rows}
    # A line that counts no more than this request added is one this request made.
    return any(count <= sent[line] for line, count in await conn.execute(stmt, list(rows)))


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
