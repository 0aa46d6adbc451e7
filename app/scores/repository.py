"""What a score is computed from, in one statement: the subject, its fingerprint and its ratings.

The statement runs on the request's own transaction (tenant-bound, so row-level security filters
it too). It also chooses the framework version, as ``frameworks/repository.py`` does: the named
framework (or, by default, the one of the subject's latest assessment), a tenant's own framework
shadowing a built-in one with the same key, the named version or else the latest published one.

When the caller already holds a rendering made from a fingerprint, it passes that fingerprint,
and the ratings are sent only if the fingerprint changed: a repeated read costs one round trip
with a single short row. That round trip is the whole unit of work when the request has begun no
transaction: the statement (the function ``score_inputs`` of migration 0015, which binds the
tenant for the transaction it runs in) is then sent alone, as a transaction of its own, with no
BEGIN or COMMIT around it.

On Postgres the statement is sent on the raw driver (the hot path); elsewhere (SQLite) it is the
same query in SQLAlchemy Core, where the columns a trigger keeps on Postgres (the assessments'
revision, the latest framework key) are not maintained: there the ratings are always read and
a digest of them stands in for the revision.
"""

import hashlib
import uuid
from dataclasses import dataclass, replace
from typing import Any

import asyncpg
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util import greenlet_spawn
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.frameworks.repository import visible_to
from app.models import (
    Assessment,
    CompletedActivity,
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


# The Postgres statement is a function (migration 0015) that binds the tenant for the current
# transaction and then reads: the same statement serves the request's transaction and, sent
# alone, a one-statement transaction of its own. Its framework join is
# frameworks.repository.visible_to written out: the tenant's own framework with the key, else
# the built-in one when the tenant has none under that key.
_PG_QUERY = (
    "SELECT * FROM score_inputs($1::uuid, $2::text, $3::text, $4::int,"
    " $5::uuid, $6::int, $7::int, $8::uuid, $9::int, $10::text)"
)


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
        rows = await _fetch(raw.driver_connection, tenant_id, ref, framework_key, version, known)
        return _inputs(rows, known, digest=False)
    rows = list((await conn.execute(_generic_query(tenant_id, ref, framework_key, version))).all())
    return _inputs(rows, None, digest=True)


async def score_inputs_alone(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    ref: str,
    framework_key: str | None,
    version: int | None,
    known: Fingerprint | None,
) -> ScoreInputs | None:
    """The score inputs read in one round trip, or None when they cannot be read so.

    While the session has begun nothing (the request's key came from memory), the statement is
    sent alone on a pooled connection: Postgres runs it as a transaction of its own, in which
    the function binds the tenant, and the ratings come back only if ``known`` no longer holds.
    It answers None on SQLite, inside a begun transaction, on a session bound to one connection,
    and when the subject is not found: the caller then reads on the request's transaction,
    which explains why.
    """
    engine = session.bind
    if (
        session.in_transaction()
        or not isinstance(engine, AsyncEngine)  # bound to one connection (tests): share it
        or engine.dialect.name != "postgresql"
    ):
        return None
    raw = await engine.raw_connection()
    driver: Any = raw.driver_connection
    try:
        rows = await _fetch(driver, tenant_id, ref, framework_key, version, known)
    except BaseException as error:
        if not _answered_by_the_server(error):
            # Lost, timed out or cancelled mid-message: never reuse the connection (the pool's
            # checkout refuses a closed one and opens another).
            driver.terminate()
        raise
    finally:
        await greenlet_spawn(raw.close)  # back to the pool; nothing to roll back
    return _inputs(rows, known, digest=False)


def _answered_by_the_server(error: BaseException) -> bool:
    """An error the server sent on a connection that stays usable (a statement timeout, a
    refused value), not a lost connection, a driver's timeout or a cancellation."""
    return isinstance(error, asyncpg.PostgresError) and not isinstance(
        error, asyncpg.PostgresConnectionError
    )


async def _fetch(
    driver: Any,
    tenant_id: uuid.UUID,
    ref: str,
    framework_key: str | None,
    version: int | None,
    known: Fingerprint | None,
) -> Any:
    k = known or (None, None, None, None, None, None)
    return await driver.fetch(_PG_QUERY, tenant_id, ref, framework_key, version, *k)


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


async def completed_activities(
    session: AsyncSession, tenant_id: uuid.UUID, subject_id: uuid.UUID
) -> list[CompletedActivity]:
    """A subject's completed activities, in the order they were completed."""
    stmt = (
        select(CompletedActivity)
        .where(CompletedActivity.tenant_id == tenant_id, CompletedActivity.subject_id == subject_id)
        .order_by(col(CompletedActivity.completed_at), col(CompletedActivity.activity_key))
    )
    return list((await session.exec(stmt)).all())
