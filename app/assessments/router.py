"""HTTP routes of assessments."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Body, Path, Query, Request, Response

from app import idempotency
from app.assessments import bulk, service
from app.assessments.bulk import BulkAssessmentResult
from app.assessments.schemas import AssessmentCreate, AssessmentPage, AssessmentRead, RaterRole
from app.auth.dependencies import AssessmentsRead, AssessmentsWrite, SessionDep
from app.bulk import BulkModeQuery, bulk_request_body, iter_items
from app.errors import error_responses
from app.idempotency import IdempotencyKey
from app.pagination import PageCursor, PageSize, decode_moment_cursor, moment_cursor, next_page
from app.schemas import Timestamp
from app.subjects.schemas import REF_MAX_LENGTH, REF_PATTERN

router = APIRouter(prefix="/v1/assessments", tags=["assessments"])


@router.post(
    "",
    status_code=201,
    summary="Record an assessment",
    response_model=AssessmentRead,
    responses=error_responses(401, 403, 404, 409, 413, 422, 503),
)
async def create_assessment(
    principal: AssessmentsWrite,
    session: SessionDep,
    request: Request,
    body: Annotated[AssessmentCreate, Body()],
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """One rater's ratings of one subject, pinned to a published framework version.

    Ratings must name competencies of that version and use values of its scale; otherwise the
    whole assessment is refused (422) and nothing is stored. Assessments never change: a
    correction is a new assessment (the latest rating of each rater counts).
    """

    async def produce() -> tuple[AssessmentRead, dict[str, str], uuid.UUID]:
        created, subject_id = await service.create(session, principal, body)
        return created, {"Location": f"/v1/assessments/{created.id}"}, subject_id

    return await idempotency.execute(session, principal, request, idempotency_key, produce)


@router.get("", summary="List assessments", responses=error_responses(401, 403, 404, 422, 503))
async def list_assessments(
    principal: AssessmentsRead,
    session: SessionDep,
    limit: PageSize,
    subject_ref: Annotated[
        str | None, Query(max_length=REF_MAX_LENGTH, pattern=REF_PATTERN)
    ] = None,
    rater_ref: Annotated[str | None, Query(max_length=REF_MAX_LENGTH, pattern=REF_PATTERN)] = None,
    rater_role: Annotated[RaterRole | None, Query()] = None,
    since: Annotated[Timestamp | None, Query(description="assessed_at at or after")] = None,
    until: Annotated[Timestamp | None, Query(description="assessed_at before")] = None,
    cursor: PageCursor = None,
) -> AssessmentPage:
    """Assessments newest first, filtered by subject, rater, role and date range."""
    after = decode_moment_cursor(cursor)
    rows = await service.page(
        session,
        principal,
        limit=limit + 1,
        after=after,
        subject_ref=subject_ref,
        rater_ref=rater_ref,
        rater_role=rater_role,
        since=since,
        until=until,
    )
    kept, next_cursor = next_page(rows, limit, lambda row: moment_cursor(row.assessed_at, row.id))
    return AssessmentPage(items=kept, next_cursor=next_cursor)


@router.get(
    # Only a UUID routes here, so /v1/assessments/bulk is not read as an id: GET answers 405.
    "/{assessment_id:uuid}",
    summary="Get an assessment",
    responses=error_responses(401, 403, 404, 422, 503),
)
async def get_assessment(
    assessment_id: Annotated[uuid.UUID, Path()], principal: AssessmentsRead, session: SessionDep
) -> AssessmentRead:
    """One assessment with its ratings."""
    return await service.get(session, principal, assessment_id)


@router.post(
    "/bulk",
    status_code=201,
    summary="Record many assessments at once",
    response_model=BulkAssessmentResult,
    responses=error_responses(401, 403, 409, 413, 422, 503),
    openapi_extra=bulk_request_body("AssessmentCreate"),
)
async def bulk_create_assessments(
    principal: AssessmentsWrite,
    session: SessionDep,
    request: Request,
    mode: BulkModeQuery = "all_or_nothing",
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """A JSON array (or NDJSON stream) of assessments, validated like single creates.

    By default the whole batch is refused (422, every reason listed with its item index) when any
    item is invalid. With `mode=partial` the valid items are stored and the others reported (a 422
    if none is valid).
    """
    raw = await request.body()
    content_type = request.headers.get("content-type")
    max_items = request.app.state.settings.max_bulk_items

    async def produce() -> tuple[BulkAssessmentResult, dict[str, str]]:
        # Decoded item by item while storing, batch by batch (app/assessments/bulk.py).
        items = lambda: iter_items(raw, content_type, max_items)  # noqa: E731
        return await bulk.bulk_create(session, principal, items, mode), {}

    return await idempotency.execute(session, principal, request, idempotency_key, produce)
