"""Assessment queries (add/flush, never commit)."""

import functools
import hashlib
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy import insert, text
from sqlmodel import and_, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.models import Assessment, Framework, FrameworkVersion, Rating, Subject
from app.scoring.cohort import CohortRatings, epoch_micros
from app.scoring.model import RATER_ROLES

# Column by column, as insert_batch takes them (the tenant is the same for every row). One
# statement: the ratings' foreign keys are checked at its end, after the assessments' insert.
INSERT_BATCH = text(
    "WITH assessments AS (INSERT INTO assessment (tenant_id, id, subject_id,"
    " framework_tenant_id, framework_version_id, rater_ref, rater_role, assessed_at, created_at,"
    " sequence) SELECT CAST(:tenant_id AS uuid), * FROM unnest(CAST(:id AS uuid[]),"
    " CAST(:subject_id AS uuid[]), CAST(:framework_tenant_id AS uuid[]),"
    " CAST(:framework_version_id AS uuid[]), CAST(:rater_ref AS text[]),"
    " CAST(:rater_role AS text[]), CAST(:assessed_at AS timestamptz[]),"
    " CAST(:created_at AS timestamptz[]), CAST(:sequence AS int8[])))"
    " INSERT INTO rating (tenant_id, assessment_id, competency_key, proficiency, evidence,"
    " confidence) SELECT CAST(:tenant_id AS uuid), * FROM unnest(CAST(:assessment_id AS uuid[]),"
    " CAST(:competency_key AS text[]), CAST(:proficiency AS int4[]), CAST(:evidence AS text[]),"
    " CAST(:confidence AS float8[]))"
)


async def subject_ids(
    session: AsyncSession, tenant_id: uuid.UUID, refs: list[str]
) -> dict[str, uuid.UUID]:
    """The ids of the tenant's subjects among ``refs`` (plain columns, no entities)."""
    stmt = sa.select(Subject.external_ref, Subject.id).where(  # type: ignore[call-overload]
        Subject.tenant_id == tenant_id, col(Subject.external_ref).in_(refs)
    )
    return {ref: id_ for ref, id_ in (await (await session.connection()).execute(stmt)).all()}


async def subjects_rated_against(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    framework_tenant_id: uuid.UUID,
    version_ids: Sequence[uuid.UUID],
) -> list[uuid.UUID]:
    """The tenant's people with an assessment against any of these framework versions."""
    if not version_ids:
        return []
    stmt = (
        select(Assessment.subject_id)
        .where(
            Assessment.tenant_id == tenant_id,
            Assessment.framework_tenant_id == framework_tenant_id,
            col(Assessment.framework_version_id).in_(list(version_ids)),
        )
        .distinct()
    )
    return list((await session.exec(stmt)).all())


async def insert_batch(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    assessments: dict[str, list[Any]],
    ratings: dict[str, list[Any]],
) -> None:
    """Insert assessments and their ratings given column by column (keyed by column name):
    on Postgres one ``INSERT ... SELECT FROM unnest(arrays)`` statement for both tables, so
    row-level security applies (it rules out COPY FROM) and the cost grows with the batch only.
    """
    conn = await session.connection()
    if conn.dialect.name != "postgresql":
        for table, columns in (
            (Assessment.__table__, assessments),  # type: ignore[attr-defined]
            (Rating.__table__, ratings),  # type: ignore[attr-defined]
        ):
            rows = [
                {"tenant_id": tenant_id, **dict(zip(columns, values, strict=True))}
                for values in zip(*columns.values(), strict=True)
            ]
            await conn.execute(insert(table), rows)
        return
    await conn.execute(INSERT_BATCH, {"tenant_id": str(tenant_id), **assessments, **ratings})


async def ratings_of(
    session: AsyncSession, tenant_id: uuid.UUID, assessment_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[Rating]]:
    """Ratings grouped by assessment, in competency order."""
    if not assessment_ids:
        return {}
    stmt = (
        select(Rating)
        .where(Rating.tenant_id == tenant_id, col(Rating.assessment_id).in_(assessment_ids))
        .order_by(col(Rating.assessment_id), col(Rating.competency_key))
    )
    grouped: dict[uuid.UUID, list[Rating]] = defaultdict(list)
    for rating in (await session.exec(stmt)).all():
        grouped[rating.assessment_id].append(rating)
    return grouped


def _listing() -> Any:
    return (
        select(Assessment, Subject.external_ref, Framework.key, FrameworkVersion.version)
        .join(
            Subject,
            and_(
                col(Subject.tenant_id) == col(Assessment.tenant_id),
                col(Subject.id) == col(Assessment.subject_id),
            ),
        )
        .join(
            FrameworkVersion,
            and_(
                col(FrameworkVersion.tenant_id) == col(Assessment.framework_tenant_id),
                col(FrameworkVersion.id) == col(Assessment.framework_version_id),
            ),
        )
        .join(
            Framework,
            and_(
                col(Framework.tenant_id) == col(FrameworkVersion.tenant_id),
                col(Framework.id) == col(FrameworkVersion.framework_id),
            ),
        )
    )


async def get(
    session: AsyncSession, tenant_id: uuid.UUID, assessment_id: uuid.UUID
) -> tuple[Assessment, str, str, int] | None:
    stmt = _listing().where(Assessment.tenant_id == tenant_id, Assessment.id == assessment_id)
    row = (await session.exec(stmt)).first()
    return None if row is None else (row[0], row[1], row[2], row[3])


async def page(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    *,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None,
    subject_id: uuid.UUID | None,
    rater_ref: str | None,
    rater_role: str | None,
    since: datetime | None,
    until: datetime | None,
) -> list[tuple[Assessment, str, str, int]]:
    """Newest first, keyset-paginated on (assessed_at, id)."""
    stmt = _listing().where(Assessment.tenant_id == tenant_id)
    if subject_id is not None:
        stmt = stmt.where(Assessment.subject_id == subject_id)
    if rater_ref is not None:
        stmt = stmt.where(Assessment.rater_ref == rater_ref)
    if rater_role is not None:
        stmt = stmt.where(Assessment.rater_role == rater_role)
    if since is not None:
        stmt = stmt.where(col(Assessment.assessed_at) >= since)
    if until is not None:
        stmt = stmt.where(col(Assessment.assessed_at) < until)
    if after is not None:
        at, last_id = after
        stmt = stmt.where(
            (col(Assessment.assessed_at) < at)
            | ((col(Assessment.assessed_at) == at) & (col(Assessment.id) < last_id))
        )
    stmt = stmt.order_by(col(Assessment.assessed_at).desc(), col(Assessment.id).desc()).limit(limit)
    return [(r[0], r[1], r[2], r[3]) for r in (await session.exec(stmt)).all()]


async def latest_framework_of(
    session: AsyncSession, tenant_id: uuid.UUID, subject_id: uuid.UUID
) -> Framework | None:
    """The framework of the subject's most recent assessment."""
    stmt = (
        select(Framework)
        .join(
            FrameworkVersion,
            and_(
                col(Framework.tenant_id) == col(FrameworkVersion.tenant_id),
                col(Framework.id) == col(FrameworkVersion.framework_id),
            ),
        )
        .join(
            Assessment,
            and_(
                col(FrameworkVersion.tenant_id) == col(Assessment.framework_tenant_id),
                col(FrameworkVersion.id) == col(Assessment.framework_version_id),
            ),
        )
        .where(Assessment.tenant_id == tenant_id, Assessment.subject_id == subject_id)
        # Fully ordered, like the trigger that records latest_framework_key (migration 0006).
        .order_by(
            col(Assessment.assessed_at).desc(),
            col(Assessment.sequence).desc(),
            col(Assessment.id).desc(),
        )
        .limit(1)
    )
    return (await session.exec(stmt)).first()


# -- every rating that can count for many subjects, in columnar form (cohorts, events) --
#
# On Postgres the ratings leave the database as a binary COPY of fixed-width integers, which
# numpy reads in place: millions of ratings without building a Python object per row.

CHUNK = 5000
PG_COPY_HEADER = 19  # signature (11) + flags (4) + header extension length (4)
# One row of the binary COPY below: field count, then (length, value) per column, big-endian.
ROW = np.dtype(
    [
        ("n", ">i2"),
        ("l0", ">i4"),
        ("subject", ">i4"),
        ("l1", ">i4"),
        ("competency", ">i4"),
        ("l2", ">i4"),
        ("proficiency", ">i4"),
        ("l3", ">i4"),
        ("role", ">i4"),
        ("l4", ">i4"),
        ("rater", ">i8"),
        ("l5", ">i4"),
        ("assessed_at", ">i8"),
        ("l6", ">i4"),
        ("sequence", ">i8"),
    ]
)


@functools.lru_cache(maxsize=65536)
def rater_key(role: str, rater_ref: str) -> int:
    """A rater's id in columnar ratings off Postgres: a stable signed 64-bit hash of the pair, so
    every load agrees and a rater can be named again (Postgres uses hashtextextended)."""
    digest = hashlib.blake2b(f"{role}:{rater_ref}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


async def load_ratings(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    subject_ids: Sequence[uuid.UUID],
    version_refs: Sequence[tuple[uuid.UUID, uuid.UUID]],
    competencies: Sequence[str],
    window_start: datetime,
    as_of: datetime,
) -> CohortRatings:
    """Ratings of the subjects against the given framework versions inside the window."""
    if not subject_ids:
        return _columns(np.zeros(0, dtype=ROW), 0)
    query = _RatingsQuery(
        tenant_id, list(subject_ids), list(version_refs), list(competencies), window_start, as_of
    )
    conn = await session.connection()
    if conn.dialect.name == "postgresql":
        return await _load_postgres(conn, query)
    return await _load_generic(session, query)


@dataclass(frozen=True, slots=True)
class _RatingsQuery:
    tenant_id: uuid.UUID
    subject_ids: list[uuid.UUID]
    version_refs: list[tuple[uuid.UUID, uuid.UUID]]
    competencies: list[str]
    window_start: datetime
    as_of: datetime


_ROLE_CASE = (
    "CASE a.rater_role "
    + " ".join(f"WHEN '{role}' THEN {i}" for i, role in enumerate(RATER_ROLES))
    + " END"
)

# Only constants are interpolated (the role list); every value is a bound parameter.
_PG_QUERY = f"""
SELECT s.idx::int4, (array_position($2::text[], r.competency_key) - 1)::int4, r.proficiency::int4,
       {_ROLE_CASE}::int4, hashtextextended(a.rater_role || ':' || a.rater_ref, 0)::int8,
       (extract(epoch FROM a.assessed_at) * 1000000)::int8, a.sequence::int8
FROM unnest($1::uuid[]) WITH ORDINALITY AS s(id, idx)
JOIN assessment a ON a.tenant_id = $3::uuid AND a.subject_id = s.id
JOIN rating r ON r.tenant_id = a.tenant_id AND r.assessment_id = a.id
WHERE (a.framework_tenant_id, a.framework_version_id) IN (SELECT * FROM unnest($4::uuid[], $5::uuid[]))
  AND r.competency_key = ANY($2::text[])
  AND a.assessed_at > $6::timestamptz AND a.assessed_at <= $7::timestamptz
"""  # noqa: S608


async def _load_postgres(conn: Any, q: _RatingsQuery) -> CohortRatings:
    raw = await conn.get_raw_connection()
    driver = raw.driver_connection
    # The join over a large cohort spills to disk with the default 4 MB of sort/hash memory.
    await driver.execute("SET LOCAL work_mem = '64MB'")
    chunks: list[bytes] = []

    async def collect(chunk: bytes) -> None:
        chunks.append(bytes(chunk))

    await driver.copy_from_query(
        _PG_QUERY,
        q.subject_ids,
        q.competencies,
        q.tenant_id,
        [v[0] for v in q.version_refs],
        [v[1] for v in q.version_refs],
        q.window_start,
        q.as_of,
        output=collect,
        format="binary",
    )
    data = b"".join(chunks)
    chunks.clear()
    body = len(data) - PG_COPY_HEADER - 2  # the trailer is a field count of -1
    rows = np.frombuffer(data, dtype=ROW, count=body // ROW.itemsize, offset=PG_COPY_HEADER)
    # ordinality counts from 1
    return _columns(rows, len(q.subject_ids), subject_offset=1)


async def _load_generic(session: AsyncSession, q: _RatingsQuery) -> CohortRatings:
    index = {sid: i for i, sid in enumerate(q.subject_ids)}
    competency_index = {key: i for i, key in enumerate(q.competencies)}
    role_index = {role: i for i, role in enumerate(RATER_ROLES)}
    versions = [v[1] for v in q.version_refs]
    out: list[tuple[int, int, int, int, int, int, int]] = []
    ids = q.subject_ids
    for start in range(0, len(ids), CHUNK):
        stmt = (
            select(
                Assessment.subject_id,
                Rating.competency_key,
                Rating.proficiency,  # type: ignore[call-overload]
                Assessment.rater_role,
                Assessment.rater_ref,
                Assessment.assessed_at,
                Assessment.sequence,
            )
            .join(
                Rating,
                and_(
                    col(Rating.tenant_id) == col(Assessment.tenant_id),
                    col(Rating.assessment_id) == col(Assessment.id),
                ),
            )
            .where(
                col(Assessment.tenant_id) == q.tenant_id,
                col(Assessment.subject_id).in_(ids[start : start + CHUNK]),
                col(Assessment.framework_version_id).in_(versions),
                col(Assessment.assessed_at) > q.window_start,
                col(Assessment.assessed_at) <= q.as_of,
            )
        )
        for sid, key, value, role, rater, at, seq in (await session.exec(stmt)).all():
            if key not in competency_index:
                continue
            rater_id = rater_key(role, rater)
            out.append(
                (
                    index[sid],
                    competency_index[key],
                    value,
                    role_index[role],
                    rater_id,
                    epoch_micros(at),
                    seq,
                )
            )
    rows = np.zeros(len(out), dtype=ROW)
    if out:
        table = np.array(out, dtype=np.int64)
        for column, name in enumerate(
            ("subject", "competency", "proficiency", "role", "rater", "assessed_at", "sequence")
        ):
            rows[name] = table[:, column]
    return _columns(rows, len(q.subject_ids))


def _columns(rows: Any, n_subjects: int, subject_offset: int = 0) -> CohortRatings:
    return CohortRatings(
        subject_index=(rows["subject"] - subject_offset).astype(np.int32),
        competency_index=rows["competency"].astype(np.int32),
        proficiency=rows["proficiency"].astype(np.float64),
        role=rows["role"].astype(np.int8),
        rater=rows["rater"].astype(np.int64),
        assessed_at=rows["assessed_at"].astype(np.int64),
        sequence=rows["sequence"].astype(np.int64),
        n_subjects=n_subjects,
    )


# Every rater of the subjects in the window, named by the id the Postgres loader gives them.
_PG_RATER_NAMES = text(
    "SELECT DISTINCT a.rater_role, a.rater_ref,"
    " hashtextextended(a.rater_role || ':' || a.rater_ref, 0)"
    " FROM unnest(CAST(:ids AS uuid[])) AS s(id)"
    " JOIN assessment a ON a.tenant_id = CAST(:tenant_id AS uuid) AND a.subject_id = s.id"
    " WHERE a.assessed_at > :start AND a.assessed_at <= :as_of"
)


async def rater_names(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    subject_ids: Sequence[uuid.UUID],
    window_start: datetime,
    as_of: datetime,
) -> dict[int, tuple[str, str]]:
    """(role, rater_ref) by the rater id the columnar loaders give it, for every rater of the
    subjects' assessments inside the window."""
    conn = await session.connection()
    if conn.dialect.name == "postgresql":
        params = {
            "ids": list(subject_ids),
            "tenant_id": str(tenant_id),
            "start": window_start,
            "as_of": as_of,
        }
        rows = (await conn.execute(_PG_RATER_NAMES, params)).all()
        return {int(key): (role, ref) for role, ref, key in rows}
    a = Assessment.__table__.c  # type: ignore[attr-defined]
    names: dict[int, tuple[str, str]] = {}
    ids = list(subject_ids)
    for start in range(0, len(ids), CHUNK):
        stmt = (
            sa.select(a.rater_role, a.rater_ref)
            .where(
                a.tenant_id == tenant_id,
                a.subject_id.in_(ids[start : start + CHUNK]),
                a.assessed_at > window_start,
                a.assessed_at <= as_of,
            )
            .distinct()
        )
        for role, ref in (await conn.execute(stmt)).all():
            names[rater_key(role, ref)] = (role, ref)
    return names
