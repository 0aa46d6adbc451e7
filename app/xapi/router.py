"""The xAPI Statement Resource subset at /xapi/statements, and the learning-record admin routes.

LRS clients authenticate with HTTP Basic: the password is the whole API key (the user name is
not read). Bearer keys work too. Statements are read from the raw body, so that anything wrong
with them is the 400 xAPI clients expect, never a 422.
"""

import json
import uuid
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Annotated, Any, cast

from fastapi import APIRouter, Header, Query, Request, Response, Security
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.security.http import HTTPBase

from app.auth.dependencies import (
    Admin,
    LearningRecordsRead,
    LearningRecordsWrite,
    SessionDep,
    SubjectsRead,
    SubjectsWrite,
)
from app.config import Settings
from app.errors import PROBLEM_JSON, BadRequest, FieldError, Problem, error_responses
from app.models import LearningRecordSettings
from app.subjects.router import SubjectRef
from app.xapi import schemas as s
from app.xapi import service
from app.xapi.statements import (
    VERSION_HEADER,
    check_version_header,
    mbox_sha1,
    parse_batch,
    parse_statement,
    parse_uuid,
)

basic = HTTPBase(
    scheme="basic",
    auto_error=False,
    scheme_name="ApiKeyBasic",
    description="For LRS clients: HTTP Basic with the whole API key as the password (any user "
    "name).",
)


class XapiRoute(APIRoute):
    """A route of /xapi answers every error itself, the unexpected ones too (a 500 problem,
    logged by the handler of last resort): so every answer passes the request guards, which
    add the X-Experience-API-Version header the xAPI specification requires of an LRS on
    every answer (``version_header``, wired in ``app.main``)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except Exception as exc:
                return await _problem(request, exc)

        return answer


async def _problem(request: Request, exc: Exception) -> Response:
    """The answer the app's own error handlers give ``exc`` (the most specific one; the
    handler of Exception answers 500 and logs it)."""
    handlers = request.app.exception_handlers
    for kind in type(exc).__mro__:
        if kind in handlers:
            return cast(Response, await handlers[kind](request, exc))
    raise exc


router = APIRouter(tags=["learning records"])
xapi = APIRouter(
    prefix="/xapi",
    tags=["learning records"],
    dependencies=[Security(basic)],
    route_class=XapiRoute,
)

BAD_STATEMENT: dict[int | str, dict[str, Any]] = {
    400: {
        "model": Problem,
        "description": "A statement breaks the xAPI rules for a field this service reads (the "
        "problem names it), or the version header is missing or unsupported.",
        "content": {PROBLEM_JSON: {}},
    }
}
STATEMENT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        {"type": "object", "description": "One xAPI statement."},
                        {
                            "type": "array",
                            "items": {"type": "object"},
                            "description": "A list of xAPI statements (at most "
                            "XAPI_MAX_STATEMENTS, 1000 by default).",
                        },
                    ]
                }
            }
        },
    }
}
VersionHeader = Annotated[
    str | None,
    Header(
        alias=VERSION_HEADER,
        description="The xAPI version the client speaks: 1.0.x or 2.0.x.",
        max_length=20,
    ),
]


async def _json_body(request: Request) -> Any:
    try:
        return json.loads(await request.body())
    except (ValueError, RecursionError):
        raise BadRequest(
            "The body is not valid JSON.",
            errors=[FieldError(loc=["body"], msg="not valid JSON", type="json_invalid")],
        ) from None


def _statement_id(value: str | None, name: str) -> uuid.UUID | None:
    return None if value is None else parse_uuid(value, ["query", name])


@xapi.post(
    "/statements",
    summary="Store xAPI statements",
    responses={**BAD_STATEMENT, **error_responses(401, 403, 409, 413, 415, 429, 503)},
    openapi_extra=STATEMENT_BODY,
    response_model=list[uuid.UUID],
)
async def post_statements(
    principal: LearningRecordsWrite,
    session: SessionDep,
    request: Request,
    version: VersionHeader = None,
) -> Response:
    """One statement or a list; answers their ids in order. A statement id sent before with
    the same content is a no-op, with other content 409 (and nothing of the request is kept).
    Completion verbs on a known activity IRI record the activity as completed."""
    check_version_header(version)
    body = await _json_body(request)
    settings: Settings = request.app.state.settings
    most = settings.xapi_max_statements
    if isinstance(body, list) and len(body) > most:
        raise BadRequest(
            f"Send at most {most} statements per request (XAPI_MAX_STATEMENTS).",
            errors=[FieldError(loc=["body"], msg=f"at most {most} statements", type="too_long")],
        )
    outcome = await service.receive(
        session, principal, parse_batch(body), unmapped_limit=settings.xapi_unmapped_limit
    )
    return JSONResponse([str(i) for i in outcome.ids])


@xapi.put(
    "/statements",
    status_code=204,
    summary="Store one xAPI statement by id",
    responses={**BAD_STATEMENT, **error_responses(401, 403, 409, 415, 429, 503)},
    openapi_extra=STATEMENT_BODY,
)
async def put_statement(
    principal: LearningRecordsWrite,
    session: SessionDep,
    request: Request,
    statement_id: Annotated[
        str | None, Query(alias="statementId", description="The statement's id (a UUID).")
    ] = None,
    version: VersionHeader = None,
) -> Response:
    """Store the statement under ``statementId``; 204 whether it is new or a replay."""
    check_version_header(version)
    wanted = _statement_id(statement_id, "statementId")
    if wanted is None:
        raise BadRequest(
            "PUT needs the statementId parameter.",
            errors=[FieldError(loc=["query", "statementId"], msg="required", type="missing")],
        )
    statement = parse_statement(await _json_body(request), wanted)
    limit = request.app.state.settings.xapi_unmapped_limit
    await service.receive(session, principal, [statement], unmapped_limit=limit)
    return Response(status_code=204)


@xapi.get(
    "/statements",
    summary="Read one xAPI statement",
    responses={**BAD_STATEMENT, **error_responses(401, 403, 404, 429, 503)},
    response_model=dict[str, Any],
)
async def get_statement(
    principal: LearningRecordsRead,
    session: SessionDep,
    statement_id: Annotated[str | None, Query(alias="statementId")] = None,
    voided_statement_id: Annotated[str | None, Query(alias="voidedStatementId")] = None,
    version: VersionHeader = None,
) -> Response:
    """A statement by ``statementId`` (404 once voided), or a voided one by
    ``voidedStatementId``. Only statements about a mapped person are kept; queries over many
    statements are not offered."""
    check_version_header(version)
    wanted = _statement_id(statement_id, "statementId")
    voided = _statement_id(voided_statement_id, "voidedStatementId")
    if voided is None and wanted is not None:
        content = await service.statement(session, principal, wanted, voided=False)
    elif wanted is None and voided is not None:
        content = await service.statement(session, principal, voided, voided=True)
    else:
        raise BadRequest(
            "Send exactly one of statementId and voidedStatementId.",
            errors=[FieldError(loc=["query"], msg="exactly one id", type="missing")],
        )
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return JSONResponse(content, headers={"X-Experience-API-Consistent-Through": now})


def _settings_read(saved: LearningRecordSettings) -> s.LearningRecordSettingsRead:
    return s.LearningRecordSettingsRead(
        account_home_pages=list(saved.account_home_pages), result_ratings=saved.result_ratings
    )


@router.get(
    "/v1/learning-records/settings",
    summary="Read the learning-record settings",
    responses=error_responses(401, 403, 429, 503),
)
async def read_settings(principal: Admin, session: SessionDep) -> s.LearningRecordSettingsRead:
    """The account homePages statements' actors are mapped by, and whether results become
    ratings."""
    saved = await service.get_settings(session, principal)
    return _settings_read(saved)


@router.put(
    "/v1/learning-records/settings",
    summary="Change the learning-record settings",
    responses=error_responses(401, 403, 415, 422, 429, 503),
)
async def write_settings(
    principal: Admin, session: SessionDep, body: s.LearningRecordSettingsUpdate
) -> s.LearningRecordSettingsRead:
    """Replace the settings: an actor ``account`` with one of these homePages and ``name``
    equal to a subject's external_ref is that subject; ``result_ratings`` opts in to
    ratings from ``result.score.scaled``."""
    pages = list(dict.fromkeys(body.account_home_pages))
    saved = await service.put_settings(
        session, principal, pages, result_ratings=body.result_ratings
    )
    return _settings_read(saved)


@router.post(
    "/v1/learning-records/mboxes/{ref}",
    summary="Register a person's xAPI mailbox",
    responses=error_responses(401, 403, 404, 409, 415, 422, 429, 503),
)
async def register_mbox(
    ref: SubjectRef, principal: SubjectsWrite, session: SessionDep, body: s.MboxRegistration
) -> s.MboxesRead:
    """Statements whose actor has this ``mbox`` (or its ``mbox_sha1sum``) are about the
    subject. Only the SHA-1 sum is kept; a mailbox names one person (409 otherwise)."""
    await service.register_mbox(session, principal, ref, mbox_sha1(body.mbox))
    return s.MboxesRead(
        subject_ref=ref, mbox_sha1sums=await service.mboxes(session, principal, ref)
    )


@router.get(
    "/v1/learning-records/mboxes/{ref}",
    summary="List a person's registered mailboxes",
    responses=error_responses(401, 403, 404, 429, 503),
)
async def list_mboxes(
    ref: SubjectRef, principal: SubjectsRead, session: SessionDep
) -> s.MboxesRead:
    """The SHA-1 sums of the mailboxes registered for the subject."""
    return s.MboxesRead(
        subject_ref=ref, mbox_sha1sums=await service.mboxes(session, principal, ref)
    )


@router.get(
    "/v1/learning-records/unmapped",
    summary="Statements that could not be mapped",
    responses=error_responses(401, 403, 429, 503),
)
async def unmapped(principal: Admin, session: SessionDep, request: Request) -> s.UnmappedReport:
    """Completion statements about an actor no subject answers to, or an activity IRI no
    framework names: one line per actor and IRI (or per IRI), with counts. Bounded: the least
    recently seen lines make room for new ones."""
    lines = await service.unmapped_report(session, principal)
    return s.UnmappedReport(
        items=[
            s.UnmappedLine(
                reason=line.reason,  # type: ignore[arg-type]
                actor_kind=line.actor_kind,
                actor_id=line.actor_id,
                activity_iri=line.activity_iri,
                statements=line.statements,
                first_seen_at=line.first_seen_at,
                last_seen_at=line.last_seen_at,
            )
            for line in lines
        ],
        limit=request.app.state.settings.xapi_unmapped_limit,
    )


router.include_router(xapi)
