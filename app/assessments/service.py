"""Assessment use cases: record one rater's ratings (validated against the pinned version), read, list."""

import time
import uuid
from datetime import datetime, timedelta

from sqlmodel.ext.asyncio.session import AsyncSession

from app.assessments import repository as repo
from app.assessments.schemas import AssessmentCreate, AssessmentRead, FrameworkRef, RatingRead
from app.audit.repository import record
from app.auth.principal import Principal
from app.errors import FieldError, InvalidInput, NotFound
from app.frameworks import service as frameworks
from app.models import Assessment, Rating, utcnow
from app.scoring.model import Framework as ScoringFramework
from app.subjects import service as subjects
from app.webhooks import events
from app.webhooks import service as webhooks

CLOCK_SKEW = timedelta(minutes=5)


def rating_errors(
    body: AssessmentCreate, fw: ScoringFramework, scale: frozenset[int], loc: list[str | int]
) -> list[FieldError]:
    """Every problem with an assessment's ratings against its pinned version, with field paths."""
    competencies = {c.key for c in fw.competencies}
    errors: list[FieldError] = []
    seen: set[str] = set()
    for i, rating in enumerate(body.ratings):
        at: list[str | int] = [*loc, "ratings", i]
        if rating.competency not in competencies:
            errors.append(
                FieldError(
                    loc=[*at, "competency"],
                    msg=f"unknown competency {rating.competency!r} in {fw.key} v{fw.version}",
                    type="unknown_reference",
                )
            )
        if rating.competency in seen:
            errors.append(
                FieldError(
                    loc=[*at, "competency"],
                    msg=f"{rating.competency!r} is rated twice",
                    type="duplicate",
                )
            )
        seen.add(rating.competency)
        if rating.proficiency not in scale:
            errors.append(
                FieldError(
                    loc=[*at, "proficiency"],
                    msg=f"{rating.proficiency} is not on the scale {sorted(scale)}",
                    type="out_of_scale",
                )
            )
    if body.assessed_at > utcnow() + CLOCK_SKEW:
        errors.append(
            FieldError(loc=[*loc, "assessed_at"], msg="lies in the future", type="future")
        )
    return errors


def draft_error(loc: list[str | int]) -> FieldError:
    """Assessments pin published versions only."""
    return FieldError(
        loc=[*loc, "framework", "version"],
        msg="assessments pin a published version, not a draft",
        type="draft",
    )


async def create(
    session: AsyncSession, principal: Principal, body: AssessmentCreate
) -> tuple[AssessmentRead, uuid.UUID]:
    """Store an immutable assessment (checked against the pinned version); returns it and its subject's id."""
    subject = await subjects.get(session, principal, body.subject_ref)
    resolved = await frameworks.resolve(
        session, principal, body.framework.key, body.framework.version
    )
    if resolved.version.status == "draft":
        raise InvalidInput(
            "Assessments pin a published framework version, not a draft.",
            errors=[draft_error(["body"])],
        )
    fw = frameworks.compiled(resolved.version)
    errors = rating_errors(body, fw, frameworks.scale_values(resolved.version), ["body"])
    if errors:
        raise InvalidInput(
            f"The assessment has {len(errors)} invalid field(s); nothing was stored.", errors=errors
        )
    watchers = await events.readiness_watchers(session, principal.tenant_id)
    before = (
        await events.snapshot(session, principal.tenant_id, resolved, [subject.id])
        if watchers
        else None
    )
    assessment = Assessment(
        tenant_id=principal.tenant_id,
        subject_id=subject.id,
        framework_tenant_id=resolved.version.tenant_id,
        framework_version_id=resolved.version.id,
        rater_ref=body.rater_ref,
        rater_role=body.rater_role,
        assessed_at=body.assessed_at,
        sequence=time.time_ns(),
    )
    session.add(assessment)
    ratings = [
        Rating(
            tenant_id=principal.tenant_id,
            assessment_id=assessment.id,
            competency_key=r.competency,
            proficiency=r.proficiency,
            evidence=r.evidence,
            confidence=r.confidence,
        )
        for r in body.ratings
    ]
    session.add_all(ratings)
    record(
        session,
        principal,
        "assessment.created",
        "assessment",
        str(assessment.id),
        {"subject_id": str(subject.id), "ratings": len(ratings), "rater_role": body.rater_role},
    )
    await session.flush()
    await webhooks.enqueue(
        session,
        principal.tenant_id,
        "assessment.created",
        [
            events.assessment_created(
                assessment.id,
                subject.external_ref,
                resolved,
                assessment.rater_role,
                assessment.assessed_at,
                len(ratings),
            )
        ],
        subject_ids=[subject.id],
    )
    if before is not None:
        await events.readiness_changed(session, principal.tenant_id, before, watchers)
    await session.flush()
    read = to_read(
        assessment, subject.external_ref, resolved.framework.key, resolved.version.version, ratings
    )
    return read, subject.id


def to_read(
    a: Assessment, subject_ref: str, framework_key: str, version: int, ratings: list[Rating]
) -> AssessmentRead:
    """The API view of an assessment and its ratings."""
    return AssessmentRead(
        id=a.id,
        subject_ref=subject_ref,
        framework=FrameworkRef(key=framework_key, version=version),
        rater_ref=a.rater_ref,
        rater_role=a.rater_role,  # type: ignore[arg-type]
        assessed_at=a.assessed_at,
        created_at=a.created_at,
        ratings=[
            RatingRead(
                competency=r.competency_key,
                proficiency=r.proficiency,
                evidence=r.evidence,
                confidence=r.confidence,
            )
            for r in ratings
        ],
    )


async def get(
    session: AsyncSession, principal: Principal, assessment_id: uuid.UUID
) -> AssessmentRead:
    row = await repo.get(session, principal.tenant_id, assessment_id)
    if row is None:
        raise NotFound(f"No assessment {assessment_id} in this tenant.")
    assessment, ref, key, version = row
    ratings = await repo.ratings_of(session, principal.tenant_id, [assessment.id])
    return to_read(assessment, ref, key, version, ratings.get(assessment.id, []))


async def page(
    session: AsyncSession,
    principal: Principal,
    *,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None,
    subject_ref: str | None,
    rater_ref: str | None,
    rater_role: str | None,
    since: datetime | None,
    until: datetime | None,
) -> list[AssessmentRead]:
    subject_id = None
    if subject_ref is not None:
        subject_id = (await subjects.get(session, principal, subject_ref)).id
    rows = await repo.page(
        session,
        principal.tenant_id,
        limit=limit,
        after=after,
        subject_id=subject_id,
        rater_ref=rater_ref,
        rater_role=rater_role,
        since=since,
        until=until,
    )
    ratings = await repo.ratings_of(session, principal.tenant_id, [r[0].id for r in rows])
    return [to_read(a, ref, key, v, ratings.get(a.id, [])) for a, ref, key, v in rows]
