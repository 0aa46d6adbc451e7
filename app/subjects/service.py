"""Subject use cases: register, read, list, update (If-Match), erase."""

import re
import uuid
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from app.audit.repository import record
from app.auth.principal import Principal
from app.bulk import BulkMode, BulkRefusal, refuse_all, validation_errors
from app.calibration import estimates_repository as rater_estimates
from app.calibration import sessions_repository as calibration_sessions
from app.errors import Conflict, FieldError, NotFound
from app.etags import check_if_match, guarded_update, make_etag
from app.models import Subject, utcnow
from app.observability import metrics
from app.subjects import repository as repo
from app.subjects.schemas import REF_CHARACTERS, SubjectCreate, SubjectUpdate
from app.webhooks import service as webhooks
from app.xapi import repository as learning_records


def etag(subject: Subject) -> str:
    """The subject's current ETag."""
    return make_etag(subject.id, subject.revision)


async def get(session: AsyncSession, principal: Principal, ref: str) -> Subject:
    """A subject of the caller's tenant; 404 for unknown and for other tenants' alike."""
    subject = await repo.by_ref(session, principal.tenant_id, ref)
    if subject is None:
        raise NotFound(f"No subject {ref!r} in this tenant.")
    return subject


async def create(session: AsyncSession, principal: Principal, body: SubjectCreate) -> Subject:
    """Register a person by the caller's own id."""
    if await repo.by_ref(session, principal.tenant_id, body.external_ref) is not None:
        raise Conflict(f"A subject {body.external_ref!r} already exists.")
    subject = Subject(tenant_id=principal.tenant_id, **body.model_dump())
    session.add(subject)
    # Audit events name people by internal id only: the caller's ref may itself be personal
    # data, and the audit log outlives an erasure.
    record(session, principal, "subject.created", "subject", str(subject.id))
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict(f"A subject {body.external_ref!r} already exists.") from None
    return subject


async def update(
    session: AsyncSession, principal: Principal, ref: str, body: SubjectUpdate, if_match: str | None
) -> Subject:
    """Change the fields sent, guarded by If-Match."""
    subject = await get(session, principal, ref)
    check_if_match(if_match, etag(subject))
    changes = body.model_dump(exclude_unset=True)
    values = {**changes, "revision": subject.revision + 1, "updated_at": utcnow()}
    await guarded_update(session, Subject, subject, values)
    record(
        session,
        principal,
        "subject.updated",
        "subject",
        str(subject.id),
        {"fields": sorted(changes)},
    )
    await session.flush()
    return subject


async def erase(session: AsyncSession, principal: Principal, ref: str) -> None:
    """Erase a person and everything recorded about them, in one transaction: their rows
    (cascading), stored responses about them, and webhook deliveries about them (pending ones
    cancelled, all payloads redacted). The audit keeps only the fact, the id and counts."""
    subject = await get(session, principal, ref)
    # Before the row goes: the report finds the person by their registered mailboxes.
    await learning_records.forget_subject(session, principal.tenant_id, subject.id, ref)
    # Deleted first: the delete waits for transactions still writing about the person (their
    # assessments' foreign keys, bulk reports holding the row), so the searches below see what
    # they committed. Responses tied to the subject (single creates) cascade with the person.
    if not await repo.erase(session, subject):
        raise NotFound(f"No subject {ref!r} in this tenant.")  # erased by a concurrent request
    cancelled, redacted = await webhooks.forget_subject(session, principal.tenant_id, subject.id)
    # Their snapshot entries and proposals cascaded; sessions' rater tables may name them.
    sessions = await calibration_sessions.forget_subject(
        session, principal.tenant_id, lambda text: without_ref(text, ref)
    )
    # As a rater, the person leaves every recorded rater-effect estimate (issue 17).
    await rater_estimates.forget_rater(session, principal.tenant_id, ref)
    reports = 0
    for stored in await repo.stored_responses_naming(session, principal.tenant_id, ref):
        body = without_ref(stored.body, ref)
        if body != stored.body:
            stored.body = body
            session.add(stored)
            reports += 1
    record(
        session,
        principal,
        "subject.erased",
        "subject",
        str(subject.id),
        {
            "webhook_deliveries_cancelled": cancelled,
            "webhook_deliveries_redacted": redacted,
            "stored_responses_redacted": reports,
            "calibration_sessions_redacted": sessions,
        },
    )


ERASED_REF = "[erased]"


def without_ref(text: str, ref: str) -> str:
    """The text with every whole occurrence of the ref replaced by ``[erased]``.

    Whole means not part of a longer ref: erasing ``emp-9`` keeps ``emp-90`` and ``emp-9.x``.
    Refs hold no character JSON escapes, so this works on stored JSON text as it stands.
    """
    bounded = rf"(?<![{REF_CHARACTERS}]){re.escape(ref)}(?![{REF_CHARACTERS}])"
    return re.sub(bounded, ERASED_REF, text)


async def page(
    session: AsyncSession,
    principal: Principal,
    *,
    limit: int,
    after_ref: str | None,
    track: str | None,
    current_level: str | None,
    attributes: Mapping[str, str],
) -> list[Subject]:
    return await repo.page(
        session,
        principal.tenant_id,
        limit=limit,
        after_ref=after_ref,
        track=track,
        current_level=current_level,
        attributes=attributes,
    )


class BulkSubjectResult(BaseModel):
    mode: BulkMode
    received: int
    created: int
    refused: list[BulkRefusal]


async def bulk_create(
    session: AsyncSession, principal: Principal, items: list[Any], mode: BulkMode
) -> BulkSubjectResult:
    """Register many subjects; duplicates (in the batch or already stored) are refused."""
    refusals: list[BulkRefusal] = []
    parsed: list[tuple[int, SubjectCreate]] = []
    for i, item in enumerate(items):
        try:
            parsed.append((i, SubjectCreate.model_validate(item)))
        except ValidationError as exc:
            refusals.append(BulkRefusal(index=i, errors=validation_errors(exc, i)))
    refs = [body.external_ref for _, body in parsed]
    existing: set[str] = set()
    for start in range(0, len(refs), 5000):
        # Held: an erasure waits for this transaction, so it finds the report naming them.
        found = await repo.by_refs(
            session, principal.tenant_id, refs[start : start + 5000], hold=True
        )
        existing |= {s.external_ref for s in found}
    seen: set[str] = set()
    rows: list[dict[str, Any]] = []
    now = utcnow()
    for i, body in parsed:
        if body.external_ref in existing or body.external_ref in seen:
            refusals.append(
                BulkRefusal(
                    index=i,
                    errors=[
                        FieldError(
                            loc=["body", i, "external_ref"],
                            msg=f"subject {body.external_ref!r} already exists",
                            type="duplicate",
                        )
                    ],
                )
            )
            continue
        seen.add(body.external_ref)
        rows.append(
            {
                "tenant_id": principal.tenant_id,
                "id": uuid.uuid4(),
                **body.model_dump(),
                "revision": 1,
                "created_at": now,
                "updated_at": now,
            }
        )
    refusals.sort(key=lambda r: r.index)
    if refusals and (mode == "all_or_nothing" or not rows):  # nothing created is no 201
        raise refuse_all(refusals, len(items))
    if rows:
        await repo.insert_many(session, rows)
        record(
            session,
            principal,
            "subject.bulk_created",
            "subject",
            str(rows[0]["id"]),
            {"subjects": len(rows)},
        )
        await session.flush()
    metrics.record_bulk_items("subjects", len(rows), len(refusals))
    return BulkSubjectResult(mode=mode, received=len(items), created=len(rows), refused=refusals)
