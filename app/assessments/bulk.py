"""Bulk assessment ingest: validated as strictly as single creates, inserted set-wise.

Postgres gets two statements per request (``INSERT ... SELECT FROM unnest(arrays)``), one for
assessments and one for ratings; row-level security still applies, which rules out COPY FROM.
"""

import time
import uuid
from typing import Any

from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import insert, text
from sqlmodel.ext.asyncio.session import AsyncSession

from app.assessments.schemas import AssessmentCreate
from app.assessments.service import draft_error, rating_errors
from app.audit.repository import record
from app.auth.principal import Principal
from app.bulk import BulkMode, BulkRefusal, refuse_all, validation_errors
from app.errors import AppError, FieldError
from app.frameworks import service as frameworks
from app.models import Assessment, Rating, utcnow
from app.subjects import repository as subjects_repo
from app.webhooks import events
from app.webhooks import service as webhooks

LOOKUP_CHUNK = 5000


class BulkAssessmentResult(BaseModel):
    mode: BulkMode
    received: int
    created: int
    ratings_created: int
    ids: list[uuid.UUID] = Field(description="Ids of the created assessments, in request order.")
    refused: list[BulkRefusal] = Field(description="Items not stored and why (partial mode).")


async def bulk_create(
    session: AsyncSession, principal: Principal, items: list[Any], mode: BulkMode
) -> BulkAssessmentResult:
    """Validate every item, then store all (or, in partial mode, the valid ones) at once."""
    refusals: list[BulkRefusal] = []
    parsed: list[tuple[int, AssessmentCreate]] = []
    for i, item in enumerate(items):
        try:
            parsed.append((i, AssessmentCreate.model_validate(item)))
        except ValidationError as exc:
            refusals.append(BulkRefusal(index=i, errors=validation_errors(exc, i)))

    refs = sorted({body.subject_ref for _, body in parsed})
    subject_ids: dict[str, uuid.UUID] = {}
    for start in range(0, len(refs), LOOKUP_CHUNK):
        for subject in await subjects_repo.by_refs(
            session, principal.tenant_id, refs[start : start + LOOKUP_CHUNK]
        ):
            subject_ids[subject.external_ref] = subject.id

    versions: dict[tuple[str, int | None], frameworks.ResolvedVersion | AppError] = {}
    accepted: list[tuple[int, AssessmentCreate, uuid.UUID, frameworks.ResolvedVersion]] = []
    for i, body in parsed:
        loc: list[str | int] = ["body", i]
        errors: list[FieldError] = []
        subject_id = subject_ids.get(body.subject_ref)
        if subject_id is None:
            errors.append(
                FieldError(
                    loc=[*loc, "subject_ref"],
                    msg=f"no subject {body.subject_ref!r} in this tenant",
                    type="not_found",
                )
            )
        ref = (body.framework.key, body.framework.version)
        if ref not in versions:
            try:
                versions[ref] = await frameworks.resolve(session, principal, *ref)
            except AppError as exc:
                versions[ref] = exc
        resolved = versions[ref]
        if isinstance(resolved, AppError):
            errors.append(
                FieldError(loc=[*loc, "framework"], msg=resolved.detail, type="not_found")
            )
        elif resolved.version.status == "draft":
            errors.append(draft_error(loc))
        else:
            errors += rating_errors(
                body,
                frameworks.compiled(resolved.version),
                frameworks.scale_values(resolved.version),
                loc,
            )
        if errors:
            refusals.append(BulkRefusal(index=i, errors=errors))
        elif subject_id is not None and not isinstance(resolved, AppError):
            accepted.append((i, body, subject_id, resolved))

    refusals.sort(key=lambda r: r.index)
    if refusals and mode == "all_or_nothing":
        raise refuse_all(refusals, len(items))

    watchers = await events.readiness_watchers(session, principal.tenant_id) if accepted else []
    snapshots = []
    if watchers:
        by_version: dict[uuid.UUID, tuple[frameworks.ResolvedVersion, list[uuid.UUID]]] = {}
        for _, _, subject_id, resolved in accepted:
            by_version.setdefault(resolved.version.id, (resolved, []))[1].append(subject_id)
        for resolved, ids in by_version.values():
            snapshots.append(await events.snapshot(session, principal.tenant_id, resolved, ids))

    now = utcnow()
    sequence = time.time_ns()
    assessment_rows: list[dict[str, Any]] = []
    rating_rows: list[dict[str, Any]] = []
    for offset, (_, body, subject_id, resolved) in enumerate(accepted):
        assessment_id = uuid.uuid4()
        assessment_rows.append(
            {
                "tenant_id": principal.tenant_id,
                "id": assessment_id,
                "subject_id": subject_id,
                "framework_tenant_id": resolved.version.tenant_id,
                "framework_version_id": resolved.version.id,
                "rater_ref": body.rater_ref,
                "rater_role": body.rater_role,
                "assessed_at": body.assessed_at,
                "created_at": now,
                "sequence": sequence + offset,
            }
        )
        rating_rows += [
            {
                "tenant_id": principal.tenant_id,
                "assessment_id": assessment_id,
                "competency_key": r.competency,
                "proficiency": r.proficiency,
                "evidence": r.evidence,
                "confidence": r.confidence,
            }
            for r in body.ratings
        ]
    if assessment_rows:
        await _insert(session, assessment_rows, rating_rows)
        created_events = [
            {
                "assessment_id": str(row["id"]),
                "subject_ref": body.subject_ref,
                "framework": {"key": resolved.framework.key, "version": resolved.version.version},
                "rater_role": body.rater_role,
                "assessed_at": body.assessed_at.isoformat(),
                "ratings": len(body.ratings),
            }
            for row, (_, body, _, resolved) in zip(assessment_rows, accepted, strict=True)
        ]
        await webhooks.enqueue(
            session,
            principal.tenant_id,
            "assessment.created",
            created_events,
            subject_ids=[subject_id for _, _, subject_id, _ in accepted],
        )
        for before in snapshots:
            await events.readiness_changed(session, principal.tenant_id, before, watchers)
        record(
            session,
            principal,
            "assessment.bulk_created",
            "assessment",
            str(assessment_rows[0]["id"]),
            {
                "assessments": len(assessment_rows),
                "ratings": len(rating_rows),
                "refused": len(refusals),
            },
        )
        await session.flush()
    return BulkAssessmentResult(
        mode=mode,
        received=len(items),
        created=len(assessment_rows),
        ratings_created=len(rating_rows),
        ids=[row["id"] for row in assessment_rows],
        refused=refusals,
    )


async def _insert(
    session: AsyncSession, assessments: list[dict[str, Any]], ratings: list[dict[str, Any]]
) -> None:
    conn = await session.connection()
    if conn.dialect.name != "postgresql":
        await conn.execute(insert(Assessment.__table__), assessments)  # type: ignore[attr-defined]
        await conn.execute(insert(Rating.__table__), ratings)  # type: ignore[attr-defined]
        return
    tenant = str(assessments[0]["tenant_id"])
    await conn.execute(
        text(
            "INSERT INTO assessment (tenant_id, id, subject_id, framework_tenant_id, framework_version_id,"
            " rater_ref, rater_role, assessed_at, created_at, sequence)"
            " SELECT CAST(:tenant AS uuid), * FROM unnest(CAST(:ids AS uuid[]), CAST(:subjects AS uuid[]),"
            " CAST(:fw_tenants AS uuid[]), CAST(:fw_versions AS uuid[]), CAST(:raters AS text[]),"
            " CAST(:roles AS text[]), CAST(:assessed AS timestamptz[]), CAST(:created AS timestamptz[]),"
            " CAST(:sequences AS int8[]))"
        ),
        {
            "tenant": tenant,
            "ids": [r["id"] for r in assessments],
            "subjects": [r["subject_id"] for r in assessments],
            "fw_tenants": [r["framework_tenant_id"] for r in assessments],
            "fw_versions": [r["framework_version_id"] for r in assessments],
            "raters": [r["rater_ref"] for r in assessments],
            "roles": [r["rater_role"] for r in assessments],
            "assessed": [r["assessed_at"] for r in assessments],
            "created": [r["created_at"] for r in assessments],
            "sequences": [r["sequence"] for r in assessments],
        },
    )
    await conn.execute(
        text(
            "INSERT INTO rating (tenant_id, assessment_id, competency_key, proficiency, evidence, confidence)"
            " SELECT CAST(:tenant AS uuid), * FROM unnest(CAST(:assessments AS uuid[]), CAST(:keys AS text[]),"
            " CAST(:values AS int4[]), CAST(:evidence AS text[]), CAST(:confidence AS float8[]))"
        ),
        {
            "tenant": tenant,
            "assessments": [r["assessment_id"] for r in ratings],
            "keys": [r["competency_key"] for r in ratings],
            "values": [r["proficiency"] for r in ratings],
            "evidence": [r["evidence"] for r in ratings],
            "confidence": [r["confidence"] for r in ratings],
        },
    )
