"""HTTP routes of subjects."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Body, Header, Path, Query, Request, Response
from pydantic import StringConstraints

from app import idempotency
from app.auth.dependencies import SessionDep, SubjectsRead, SubjectsWrite
from app.bulk import BulkModeQuery, bulk_request_body, read_items
from app.errors import FieldError, InvalidInput, error_responses
from app.idempotency import IdempotencyKey
from app.models import Subject
from app.pagination import PageCursor, PageSize, decode_cursor, next_page
from app.schemas import KEY_MAX_LENGTH, KEY_PATTERN
from app.subjects import service
from app.subjects.schemas import (
    ATTRIBUTE_NAME,
    REF_MAX_LENGTH,
    REF_PATTERN,
    SubjectCreate,
    SubjectPage,
    SubjectRead,
    SubjectUpdate,
)

router = APIRouter(prefix="/v1/subjects", tags=["subjects"])

SubjectRef = Annotated[str, Path(min_length=1, max_length=REF_MAX_LENGTH, pattern=REF_PATTERN)]
AttributeFilter = Annotated[
    str,
    StringConstraints(max_length=300, pattern=rf"^{ATTRIBUTE_NAME}:[^\x00-\x1f]*$"),
]


def read(subject: Subject, response: Response | None = None) -> SubjectRead:
    tag = service.etag(subject)
    if response is not None:
        response.headers["ETag"] = tag
    return SubjectRead(
        id=subject.id,
        external_ref=subject.external_ref,
        display_name=subject.display_name,
        track=subject.track,
        current_level=subject.current_level,
        attributes=dict(subject.attributes),
        created_at=subject.created_at,
        updated_at=subject.updated_at,
        etag=tag,
    )


def parse_attribute_filters(raw: list[str]) -> dict[str, str]:
    """``team:growth`` style filters into a mapping; 422 for anything else."""
    out: dict[str, str] = {}
    for i, item in enumerate(raw):
        key, sep, value = item.partition(":")
        if not sep or not key:
            raise InvalidInput(
                "Attribute filters look like 'team:growth'.",
                errors=[
                    FieldError(
                        loc=["query", "attribute", i], msg="expected key:value", type="format"
                    )
                ],
            )
        out[key] = value
    return out


@router.post(
    "",
    status_code=201,
    summary="Register a subject",
    response_model=SubjectRead,
    responses=error_responses(401, 403, 409, 413, 422, 503),
)
async def create_subject(
    principal: SubjectsWrite,
    session: SessionDep,
    request: Request,
    body: Annotated[SubjectCreate, Body()],
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Register a person by your own id (`external_ref`)."""

    async def produce() -> tuple[SubjectRead, dict[str, str], uuid.UUID]:
        created = read(await service.create(session, principal, body))
        location = f"/v1/subjects/{created.external_ref}"
        return created, {"ETag": created.etag, "Location": location}, created.id

    return await idempotency.execute(session, principal, request, idempotency_key, produce)


@router.post(
    "/bulk",
    status_code=201,
    summary="Register many subjects at once",
    response_model=service.BulkSubjectResult,
    responses=error_responses(401, 403, 409, 413, 422, 503),
    openapi_extra=bulk_request_body("SubjectCreate"),
)
async def bulk_create_subjects(
    principal: SubjectsWrite,
    session: SessionDep,
    request: Request,
    mode: BulkModeQuery = "all_or_nothing",
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """A JSON array (or NDJSON stream) of subjects; existing refs are refused, not overwritten."""
    items = read_items(
        await request.body(),
        request.headers.get("content-type"),
        request.app.state.settings.max_bulk_items,
    )

    async def produce() -> tuple[service.BulkSubjectResult, dict[str, str]]:
        return await service.bulk_create(session, principal, items, mode), {}

    return await idempotency.execute(session, principal, request, idempotency_key, produce)


@router.get("", summary="List subjects", responses=error_responses(401, 403, 422, 503))
async def list_subjects(
    principal: SubjectsRead,
    session: SessionDep,
    limit: PageSize,
    track: Annotated[str | None, Query(max_length=KEY_MAX_LENGTH, pattern=KEY_PATTERN)] = None,
    current_level: Annotated[
        str | None, Query(max_length=KEY_MAX_LENGTH, pattern=KEY_PATTERN)
    ] = None,
    attribute: Annotated[
        list[AttributeFilter],
        Query(max_length=20, description="Filter 'key:value', repeatable (all must match)."),
    ] = [],  # noqa: B006 - FastAPI copies defaults per request
    cursor: PageCursor = None,
) -> SubjectPage:
    """Subjects ordered by `external_ref`, in cursor pages, filtered by track, level, attributes."""
    for value in attribute:
        if len(value) > 300:
            raise InvalidInput("Attribute filters are at most 300 characters.")
    decoded = decode_cursor(cursor, 1)
    rows = await service.page(
        session,
        principal,
        limit=limit + 1,
        after_ref=decoded[0] if decoded else None,
        track=track,
        current_level=current_level,
        attributes=parse_attribute_filters(attribute),
    )
    kept, next_cursor = next_page(rows, limit, lambda row: [row.external_ref])
    return SubjectPage(items=[read(row) for row in kept], next_cursor=next_cursor)


@router.get("/{ref}", summary="Get a subject", responses=error_responses(401, 403, 404, 422, 503))
async def get_subject(
    ref: SubjectRef, principal: SubjectsRead, session: SessionDep, response: Response
) -> SubjectRead:
    """One subject, with the ETag to send as If-Match when updating it."""
    return read(await service.get(session, principal, ref), response)


@router.patch(
    "/{ref}",
    summary="Update a subject",
    responses=error_responses(401, 403, 404, 412, 413, 422, 428, 503),
)
async def update_subject(
    ref: SubjectRef,
    principal: SubjectsWrite,
    session: SessionDep,
    response: Response,
    body: Annotated[SubjectUpdate, Body()],
    if_match: Annotated[str | None, Header(max_length=200)] = None,
) -> SubjectRead:
    """Change the fields sent. Needs `If-Match` with the current ETag (428 without, 412 stale)."""
    subject = await service.update(session, principal, ref, body, if_match)
    return read(subject, response)


@router.delete(
    "/{ref}",
    status_code=204,
    summary="Erase a subject",
    responses=error_responses(401, 403, 404, 422, 503),
)
async def erase_subject(
    ref: SubjectRef, principal: SubjectsWrite, session: SessionDep, request: Request
) -> Response:
    """Erase the person and every assessment, rating, evidence text and activity about them."""
    await service.erase(session, principal, ref)
    # This worker forgets the person's remembered score now; the others do at their next read
    # of the ref (the subject is gone from the fingerprint), and in any case within its maximum age.
    request.app.state.score_memo.forget((principal.tenant_id, ref))
    return Response(status_code=204)
