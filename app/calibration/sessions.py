"""HTTP routes of calibration sessions: snapshot, proposals (JSON or CSV), close, CSV grid."""

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import ValidationError

from app import idempotency
from app.auth.dependencies import AnalyticsRead, AssessmentsWrite, SessionDep
from app.calibration import sessions_schemas as s
from app.calibration import sessions_service as service
from app.calibration.router import _csv as rater_effects_csv
from app.calibration.schemas import RaterEffectsResponse
from app.errors import error_responses
from app.idempotency import IdempotencyKey
from app.pagination import (
    PageCursor,
    PageSize,
    decode_cursor,
    decode_moment_cursor,
    moment_cursor,
    next_page,
)
from app.schemas import KeyStr
from app.subjects.schemas import Ref

router = APIRouter(prefix="/v1/calibration/sessions", tags=["calibration"])

SessionId = Annotated[uuid.UUID, Path(description="The session's id.")]
Format = Annotated[Literal["json", "csv"], Query(description="csv returns the table as CSV.")]
CSV_TYPES = ("text/csv",)
_CSV_OK: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/json": {}, "text/csv": {"schema": {"type": "string"}}}}
}
_PROPOSAL_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": s.ProposalCreate.model_json_schema()},
            "text/csv": {
                "schema": {
                    "type": "string",
                    "description": "The grid's CSV (columns subject_ref, competency, "
                    "proposed_value, reason, optional proposer; others ignored).",
                }
            },
        },
    }
}


@router.post(
    "",
    status_code=201,
    summary="Open a calibration session (takes the snapshot)",
    response_model=s.SessionRead,
    responses=error_responses(401, 403, 404, 409, 413, 422, 429, 503),
)
async def create_session(
    principal: AssessmentsWrite,
    session: SessionDep,
    request: Request,
    body: Annotated[s.SessionCreate, Body()],
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Snapshot a cohort against a published framework version: each person's score (attained
    level, readiness per level, level index, value and fair value per competency) and the rater
    effects, with each rater's distribution beside the cohort's. Members then propose
    adjustments; closing writes them as `calibrated` ratings. With an `Idempotency-Key`, a
    retry answers the session the first request opened."""

    async def produce() -> tuple[s.SessionRead, dict[str, str]]:
        created = await service.create(session, principal, body)
        return created, {"Location": f"/v1/calibration/sessions/{created.id}"}

    return await idempotency.execute(session, principal, request, idempotency_key, produce)


@router.get(
    "",
    summary="List calibration sessions",
    response_model=s.SessionPage,
    responses=error_responses(401, 403, 422, 503),
)
async def list_sessions(
    principal: AnalyticsRead, session: SessionDep, limit: PageSize, cursor: PageCursor = None
) -> s.SessionPage:
    """Sessions newest first, in cursor pages."""
    rows = await service.page(
        session, principal, limit=limit + 1, after=decode_moment_cursor(cursor)
    )
    items, next_cursor = next_page(rows, limit, lambda r: moment_cursor(r.created_at, r.id))
    return s.SessionPage(items=items, next_cursor=next_cursor)


@router.get(
    "/{session_id}",
    summary="Get a calibration session and its snapshot",
    response_model=s.SessionRead,
    responses=error_responses(401, 403, 404, 422, 503),
)
async def get_session(
    principal: AnalyticsRead, session: SessionDep, session_id: SessionId
) -> Response:
    """Its status and counts, each member's score when the snapshot was taken (a person
    erased since is gone from it), and the rater effects of that moment."""
    answer = await service.get(session, principal, session_id)
    return Response(answer.model_dump_json(), media_type="application/json")


@router.get(
    "/{session_id}/rater-effects",
    summary="The rater effects of a session's snapshot",
    response_model=RaterEffectsResponse,
    responses={**error_responses(401, 403, 404, 422, 503), **_CSV_OK},
)
async def session_rater_effects(
    principal: AnalyticsRead, session: SessionDep, session_id: SessionId, format: Format = "json"
) -> Response:
    """As `POST /v1/calibration/rater-effects` answered when the session was opened (per-person
    parts are in the session's members); `format=csv` gives the raters table."""
    answer = await service.rater_effects(session, principal, session_id)
    if format == "json":
        return Response(answer.model_dump_json(), media_type="application/json")
    return Response(
        rater_effects_csv(answer, "raters"),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="rater-effects-{session_id}.csv"'},
    )


@router.get(
    "/{session_id}/grid",
    summary="A session's grid: people × competencies with proposals",
    response_model=s.Grid,
    responses={**error_responses(401, 403, 404, 422, 503), **_CSV_OK},
)
async def session_grid(
    principal: AnalyticsRead, session: SessionDep, session_id: SessionId, format: Format = "json"
) -> Response:
    """Per person and competency the snapshot's value, its fair value and the standing
    proposal (value, reason, proposer). As CSV it is the file to edit and import back."""
    answer = await service.grid(session, principal, session_id)
    if format == "json":
        return Response(answer.model_dump_json(), media_type="application/json")
    return Response(
        service.grid_csv(answer),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="calibration-{session_id}.csv"'},
    )


@router.post(
    "/{session_id}/proposals",
    summary="Propose adjustments (one as JSON, or many as CSV)",
    response_model=s.ProposalRead | s.ProposalImport,
    responses={
        **error_responses(401, 403, 404, 409, 413, 415, 422, 503),
        201: {"description": "A new proposal.", "model": s.ProposalRead},
    },
    openapi_extra=_PROPOSAL_BODY,
)
async def propose(
    principal: AssessmentsWrite, session: SessionDep, session_id: SessionId, request: Request
) -> Response:
    """A proposed value for a person's competency, with its reason. One standing proposal per
    person and competency: proposing again replaces it (200; 201 when new), so a retried
    request changes nothing more. A CSV body (the grid, edited) records every row with a
    proposed value, all or nothing: a bad row is a 422 naming it, and nothing is stored."""
    raw = await request.body()
    media = (request.headers.get("content-type") or "").split(";", 1)[0].strip().lower()
    if media in CSV_TYPES:
        imported = await service.import_proposals(session, principal, session_id, raw)
        return Response(imported.model_dump_json(), media_type="application/json")
    try:
        body = s.ProposalCreate.model_validate_json(raw or b"null")
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]
        ) from None
    proposal, created = await service.propose(session, principal, session_id, body)
    return Response(
        proposal.model_dump_json(),
        status_code=201 if created else 200,
        media_type="application/json",
    )


@router.get(
    "/{session_id}/proposals",
    summary="List a session's proposals",
    response_model=s.ProposalPage,
    responses=error_responses(401, 403, 404, 422, 503),
)
async def list_proposals(
    principal: AnalyticsRead,
    session: SessionDep,
    session_id: SessionId,
    limit: PageSize,
    cursor: PageCursor = None,
) -> s.ProposalPage:
    """Standing and withdrawn proposals, by person then competency, in cursor pages."""
    decoded = decode_cursor(cursor, 2)
    after = (decoded[0], decoded[1]) if decoded else None
    rows = await service.proposals(session, principal, session_id, limit=limit + 1, after=after)
    items, next_cursor = next_page(rows, limit, lambda p: [p.subject_ref, p.competency])
    return s.ProposalPage(items=items, next_cursor=next_cursor)


@router.delete(
    "/{session_id}/proposals/{subject_ref}/{competency}",
    status_code=204,
    summary="Withdraw a proposal",
    responses=error_responses(401, 403, 404, 409, 422, 503),
)
async def withdraw_proposal(
    principal: AssessmentsWrite,
    session: SessionDep,
    session_id: SessionId,
    subject_ref: Annotated[Ref, Path()],
    competency: Annotated[KeyStr, Path()],
) -> Response:
    """The proposal stays on the record as withdrawn; closing the session skips it."""
    await service.withdraw(session, principal, session_id, subject_ref, competency)
    return Response(status_code=204)


@router.post(
    "/{session_id}/close",
    summary="Close a session: write its proposals as calibrated ratings",
    response_model=s.SessionSummary,
    responses=error_responses(401, 403, 404, 409, 422, 503),
)
async def close_session(
    principal: AssessmentsWrite, session: SessionDep, session_id: SessionId
) -> s.SessionSummary:
    """Every standing proposal becomes a `calibrated` rating (one assessment per person, rater
    `calibration-session:<id>`, the reason as its evidence) in one transaction, with audit
    events, `assessment.created` and `calibration.closed` webhooks. A closed session never
    changes: closing it again, or proposing in it, is a 409."""
    return await service.close(session, principal, session_id)
