"""What a score is computed from, in one statement: the subject, its fingerprint and its ratings.

The statement runs on the request's own transaction (tenant-bound, so row-level security filters
it too). It also chooses the framework version, as ``frameworks/repository.py`` does: the named
framework (or, by default, the one of the subject's latest assessment), a tenant's own framework
shadowing a built-in one with the same key, the named version or else the latest published one.

When the caller already holds a rendering made from a fingerprint, it passes that fingerprint,
and the ratings are sent only if the fingerprint changed: a repeated read costs one round trip
with a single short row.

On Postgres the statement is raw SQL on the driver (the hot path); elsewhere (SQLite) it is the
same query in SQLAlchemy Core, where the columns a trigger keeps on Postgres (the assessments'
revision, the latest framework key) are not maintained: there the ratings are always read and
a digest of them stands in for the revision.
"""

import hashlib
import uuid
from dataclasses import dataclass, replace
from typing import Any

import sqlalchemy as sa
from sqlmodel.ext.asyncio.session import AsyncSession

from app.frameworks.repository import visible_to
from app.models import (
    SYSTEM_TENANT_ID,
    Assessment,
    Framework,
    FrameworkVersion,
    RaterEffectEstimate,
    Rating,
    Subject,
)
from app.scores.memo import Fingerprint
from app.scoring import Rating as EngineRating


@dataclass(frozen=True, slots=True)
class VersionRow:
    """The framework version chosen: its framework (owner tenant, id), id, revision and number."""

    owner: uuid.UUID
    framework_id: uuid.UUID
    id: uuid.UUID
    revision: int
    number: int


@dataclass(frozen=True, slots=True)
class ScoreInputs:
    """A subject's fingerprint parts, its track, the version to score against and the ratings
    (None when the caller's known fingerprint still holds and they were not sent)."""

    subject_id: uuid.UUID
    subject_revision: int
    assessments_revision: int
    track: str | None
    version: VersionRow | None
    ratings: list[EngineRating] | None
    # The latest rater-effect estimate recorded for the version, as "id:revision" (or None).
    estimate: str | None = None

    @property
    def fingerprint(self) -> Fingerprint | None:
        if self.version is None:
            return None
        return (
            self.subject_id,
            self.subject_revision,
            self.assessments_revision,
            self.version.id,
            self.version.revision,
            self.estimate,
        )


# Only constants are interpolated (the system tenant); every value is a bound parameter. The
# framework join is frameworks.repository.visible_to written out: the tenant's own framework
# with the key, else the built-in one when the tenant has none under that key.
_PG_QUERY = f"""
WITH s AS (
    SELECT tenant_id, id, revision, assessments_revision, track, latest_framework_key
      FROM subject
     WHERE tenant_id = $1::uuid AND external_ref = $2::text
), v AS (
    SELECT fv.tenant_id, fv.framework_id, fv.id, fv.revision, fv.version,
           (SELECT e.id::text || ':' || e.revision
              FROM rater_effect_estimate e
             WHERE e.tenant_id = s.tenant_id AND e.framework_version_id = fv.id
             ORDER BY e.recorded_at DESC, e.id DESC
             LIMIT 1) AS estimate
      FROM s
      JOIN framework f
        ON f.key = coalesce($3::text, s.latest_framework_key)
       AND (f.tenant_id = s.tenant_id
            OR (f.tenant_id = '{SYSTEM_TENANT_ID}'::uuid
                AND NOT EXISTS (SELECT FROM framework own
                                 WHERE own.tenant_id = s.tenant_id AND own.key = f.key)))
      JOIN framework_version fv ON fv.tenant_id = f.tenant_id AND fv.framework_id = f.id
     WHERE CASE WHEN $4::int IS NULL THEN fv.status = 'published' ELSE fv.version = $4::int END
     ORDER BY f.tenant_id DESC, fv.version DESC
     LIMIT 1
)
SELECT s.id, s.revision, s.assessments_revision, s.track,
       v.tenant_id, v.framework_id, v.id, v.revision, v.version, v.estimate,
       r.competency_key, r.proficiency, a.rater_ref, a.rater_role, a.assessed_at, a.sequence
  FROM s
  LEFT JOIN v ON true
  LEFT JOIN (assessment a
             JOIN framework_version afv
               ON afv.tenant_id = a.framework_tenant_id AND afv.id = a.framework_version_id
             JOIN rating r ON r.tenant_id = a.tenant_id AND r.assessment_id = a.id)
    ON a.tenant_id = s.tenant_id AND a.subject_id = s.id
   AND afv.tenant_id = v.tenant_id AND afv.framework_id = v.framework_id
   AND NOT coalesce(s.id = $5::uuid AND s.revision = $6::int AND s.assessments_revision = $7::int
                    AND v.id = $8::uuid AND v.revision = $9::int
                    AND v.estimate IS NOT DISTINCT FROM $10::text, false)
 ORDER BY a.assessed_at, a.sequence, a.id, r.competency_key
"""  # noqa: S608


async def score_inputs(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    ref: str,
    framework_key: str | None,
    version: int | None,
    known: Fingerprint | None = None,
) -> ScoreInputs | None:
    """The subject's score inputs, or None when the tenant has no such subject."""
    conn = await session.connection()
    if conn.dialect.name == "postgresql":
        raw = await conn.get_raw_connection()
        driver: Any = raw.driver_connection
        k = known or (None, None, None, None, None, None)
        rows = await driver.fetch(_PG_QUERY, tenant_id, ref, framework_key, version, *k)
        return _inputs(rows, known, digest=False)
    rows = list((await conn.execute(_generic_query(tenant_id, ref, framework_key, version))).all())
    return _inputs(rows, None, digest=True)


def _inputs(rows: Any, known: Fingerprint | None, *, digest: bool) -> ScoreInputs | None:
    if not rows:
        return None
    first = rows[0]
    version = None if first[6] is None else VersionRow(*first[4:9])
    inputs = ScoreInputs(first[0], first[1], first[2], first[3], version, None, first[9])
    if digest or known is None or inputs.fingerprint != known:
        ratings = [
            EngineRating(
                competency=key,
                proficiency=float(value),
                rater_ref=rater,
                role=role,
                assessed_at=at,
                sequence=sequence,
            )
            for *_, key, value, rater, role, at, sequence in rows
            if key is not None
        ]
        revision = _digest(ratings) if digest else inputs.assessments_revision
        inputs = replace(inputs, assessments_revision=revision, ratings=ratings)
    return inputs


def _digest(ratings: list[EngineRating]) -> int:
    """A stable number that changes with any rating (stands in for the trigger's revision)."""
    text = repr(
        [
            (
                r.competency,
                r.proficiency,
                r.rater_ref,
                r.role,
                r.assessed_at.isoformat(),
                r.sequence,
            )
            for r in ratings
        ]
    )
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=7).digest(), "big")


def _generic_query(
    tenant_id: uuid.UUID, ref: str, framework_key: str | None, version: int | None
) -> Any:
    """The Postgres query's twin in SQLAlchemy Core (ratings always sent)."""
    sb = Subject.__table__.c  # type: ignore[attr-defined]
    e = RaterEffectEstimate.__table__.c  # type: ignore[attr-defined]
    f = Framework.__table__.c  # type: ignore[attr-defined]
    fv = FrameworkVersion.__table__.alias("fv")  # type: ignore[attr-defined]
    afv = FrameworkVersion.__table__.alias("afv")  # type: ignore[attr-defined]
    a = Assessment.__table__  # type: ignore[attr-defined]
    r = Rating.__table__  # type: ignore[attr-defined]
    s = (
        sa.select(sb.tenant_id, sb.id, sb.revision, sb.assessments_revision, sb.track)
        .where(sb.tenant_id == tenant_id, sb.external_ref == ref)
        .cte("s")
    )
    chosen = fv.c.status == "published" if version is None else fv.c.version == version
    estimate = (
        sa.select(sa.cast(e.id, sa.String) + ":" + sa.cast(e.revision, sa.String))
        .where(e.tenant_id == s.c.tenant_id, e.framework_version_id == fv.c.id)
        .order_by(e.recorded_at.desc(), e.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    v = (
        sa.select(
            fv.c.tenant_id,
            fv.c.framework_id,
            fv.c.id,
            fv.c.revision,
            fv.c.version,
            estimate.label("estimate"),
        )
        .select_from(s)
        .join(
            Framework.__table__,  # type: ignore[attr-defined]
            sa.and_(
                f.key == (framework_key or ""),
                visible_to(tenant_id, f),
            ),
        )
        .join(fv, sa.and_(fv.c.tenant_id == f.tenant_id, fv.c.framework_id == f.id))
        .where(chosen)
        .order_by(f.tenant_id.desc(), fv.c.version.desc())
        .limit(1)
        .cte("v")
    )
    ratings = a.join(
        afv,
        sa.and_(afv.c.tenant_id == a.c.framework_tenant_id, afv.c.id == a.c.framework_version_id),
    ).join(r, sa.and_(r.c.tenant_id == a.c.tenant_id, r.c.assessment_id == a.c.id))
    return (
        sa.select(
            s.c.id,
            s.c.revision,
            s.c.assessments_revision,
            s.c.track,
            v.c.tenant_id,
            v.c.framework_id,
            v.c.id,
            v.c.revision,
            v.c.version,
            v.c.estimate,
            r.c.competency_key,
            r.c.proficiency,
            a.c.rater_ref,
            a.c.rater_role,
            a.c.assessed_at,
            a.c.sequence,
        )
        .select_from(s)
        .outerjoin(v, sa.true())
        .outerjoin(
            ratings,
            sa.and_(
                a.c.tenant_id == s.c.tenant_id,
                a.c.subject_id == s.c.id,
                afv.c.tenant_id == v.c.tenant_id,
                afv.c.framework_id == v.c.framework_id,
            ),
        )
        .order_by(a.c.assessed_at, a.c.sequence, a.c.id, r.c.competency_key)
    )
