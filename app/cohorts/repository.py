"""Loading a cohort: its subjects and, in columnar form, every rating that can count.

On Postgres the ratings leave the database as a binary COPY of fixed-width integers, which
numpy reads in place: millions of ratings without building a Python object per row.
"""

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import and_, select
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from app.models import Assessment, Rating, Subject
from app.scoring.cohort import CohortRatings, epoch_micros
from app.scoring.model import RATER_ROLES

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


@dataclass(frozen=True, slots=True)
class CohortSubjects:
    ids: list[uuid.UUID]
    refs: list[str]
    names: list[str | None]
    tracks: list[str | None]
    levels: list[str | None]


async def load_subjects(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    refs: Sequence[str] | None,
    track: str | None,
    current_level: str | None,
    attributes: Mapping[str, str],
) -> CohortSubjects:
    """The tenant's subjects matching the list and/or filter, ordered by external_ref."""
    base = select(
        Subject.id,
        Subject.external_ref,
        Subject.display_name,
        Subject.track,
        Subject.current_level,  # type: ignore[call-overload]
    ).where(col(Subject.tenant_id) == tenant_id)
    if track is not None:
        base = base.where(col(Subject.track) == track)
    if current_level is not None:
        base = base.where(col(Subject.current_level) == current_level)
    for key, value in attributes.items():
        base = base.where(col(Subject.attributes)[key].as_string() == value)
    rows: list[Any] = []
    if refs is None:
        rows = list((await session.exec(base)).all())
    else:
        unique = sorted(set(refs))
        for start in range(0, len(unique), CHUNK):
            chunk = unique[start : start + CHUNK]
            rows += list(
                (await session.exec(base.where(col(Subject.external_ref).in_(chunk)))).all()
            )
    rows.sort(key=lambda r: r[1])
    return CohortSubjects(
        ids=[r[0] for r in rows],
        refs=[r[1] for r in rows],
        names=[r[2] for r in rows],
        tracks=[r[3] for r in rows],
        levels=[r[4] for r in rows],
    )


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
    conn = await session.connection()
    if conn.dialect.name == "postgresql":
        return await _load_postgres(
            conn, tenant_id, subject_ids, version_refs, competencies, window_start, as_of
        )
    return await _load_generic(
        session, tenant_id, subject_ids, version_refs, competencies, window_start, as_of
    )


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


async def _load_postgres(
    conn: Any,
    tenant_id: uuid.UUID,
    subject_ids: Sequence[uuid.UUID],
    version_refs: Sequence[tuple[uuid.UUID, uuid.UUID]],
    competencies: Sequence[str],
    window_start: datetime,
    as_of: datetime,
) -> CohortRatings:
    raw = await conn.get_raw_connection()
    driver = raw.driver_connection
    # The join over a large cohort spills to disk with the default 4 MB of sort/hash memory.
    await driver.execute("SET LOCAL work_mem = '64MB'")
    chunks: list[bytes] = []

    async def collect(chunk: bytes) -> None:
        chunks.append(bytes(chunk))

    await driver.copy_from_query(
        _PG_QUERY,
        list(subject_ids),
        list(competencies),
        tenant_id,
        [v[0] for v in version_refs],
        [v[1] for v in version_refs],
        window_start,
        as_of,
        output=collect,
        format="binary",
    )
    data = b"".join(chunks)
    chunks.clear()
    body = len(data) - PG_COPY_HEADER - 2  # the trailer is a field count of -1
    rows = np.frombuffer(data, dtype=ROW, count=body // ROW.itemsize, offset=PG_COPY_HEADER)
    # ordinality counts from 1
    return _columns(rows, len(subject_ids), subject_offset=1)


async def _load_generic(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    subject_ids: Sequence[uuid.UUID],
    version_refs: Sequence[tuple[uuid.UUID, uuid.UUID]],
    competencies: Sequence[str],
    window_start: datetime,
    as_of: datetime,
) -> CohortRatings:
    index = {sid: i for i, sid in enumerate(subject_ids)}
    competency_index = {key: i for i, key in enumerate(competencies)}
    role_index = {role: i for i, role in enumerate(RATER_ROLES)}
    versions = [v[1] for v in version_refs]
    raters: dict[tuple[str, str], int] = {}
    out: list[tuple[int, int, int, int, int, int, int]] = []
    ids = list(subject_ids)
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
                col(Assessment.tenant_id) == tenant_id,
                col(Assessment.subject_id).in_(ids[start : start + CHUNK]),
                col(Assessment.framework_version_id).in_(versions),
                col(Assessment.assessed_at) > window_start,
                col(Assessment.assessed_at) <= as_of,
            )
        )
        for sid, key, value, role, rater, at, seq in (await session.exec(stmt)).all():
            if key not in competency_index:
                continue
            rater_id = raters.setdefault((role, rater), len(raters))
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
    return _columns(rows, len(subject_ids))


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
