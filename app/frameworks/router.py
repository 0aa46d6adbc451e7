"""HTTP routes of the frameworks resource (thin: parse, authorize, call the service)."""

import io
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Header, Path, Query, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse

from app import csv_output, idempotency
from app.auth.dependencies import AnalyticsRead, FrameworksRead, FrameworksWrite, SessionDep
from app.errors import error_responses
from app.frameworks import impact, service
from app.frameworks.document import (
    FrameworkDocument,
    dump_document,
    parse_document,
    tolerance_advice,
)
from app.frameworks.files import YAML_TYPES, dump_yaml, load_file
from app.frameworks.schemas import (
    CloneRequest,
    FrameworkDiff,
    FrameworkPage,
    FrameworkSummary,
    FrameworkVersionRead,
    ImpactRequest,
    ImpactResponse,
    VersionPage,
    VersionSummary,
)
from app.idempotency import IdempotencyKey
from app.pagination import (
    PageCursor,
    PageSize,
    decode_cursor,
    encode_cursor,
    invalid_cursor,
    next_page,
)
from app.schemas import KEY_MAX_LENGTH, KEY_PATTERN

router = APIRouter(prefix="/v1/frameworks", tags=["frameworks"])

FrameworkKey = Annotated[str, Path(min_length=1, max_length=KEY_MAX_LENGTH, pattern=KEY_PATTERN)]
VersionNumber = Annotated[int, Path(ge=1, le=1_000_000)]


def _created(resolved: service.ResolvedVersion) -> tuple[FrameworkVersionRead, dict[str, str]]:
    model = read_version(resolved)
    location = f"/v1/frameworks/{model.key}/versions/{model.version}"
    return model, {"ETag": resolved.etag, "Location": location}


READ_ERRORS = error_responses(401, 403, 404, 422, 503)
WRITE_ERRORS = error_responses(401, 403, 404, 409, 412, 413, 422, 428, 503)


def read_version(
    resolved: service.ResolvedVersion, response: Response | None = None
) -> FrameworkVersionRead:
    """The API view of a framework version (and its ETag on the response, when given)."""
    v = resolved.version
    if response is not None:
        response.headers["ETag"] = resolved.etag
    return FrameworkVersionRead(
        key=resolved.framework.key,
        version=v.version,
        status=v.status,  # type: ignore[arg-type]
        builtin=resolved.builtin,
        created_at=v.created_at,
        updated_at=v.updated_at,
        published_at=v.published_at,
        etag=resolved.etag,
        document=FrameworkDocument.model_validate(v.content),
    )


@router.get("", summary="List frameworks", responses=error_responses(401, 403, 422, 503))
async def list_frameworks(
    principal: FrameworksRead, session: SessionDep, limit: PageSize, cursor: PageCursor = None
) -> FrameworkPage:
    """Your tenant's frameworks and the built-in templates every tenant can read, by key."""
    after = decode_cursor(cursor, 1)
    items = await service.list_frameworks(
        session, principal, limit=limit + 1, after_key=after[0] if after else None
    )
    kept, next_cursor = next_page(items, limit, lambda item: [item["key"]])
    return FrameworkPage(items=[FrameworkSummary(**item) for item in kept], next_cursor=next_cursor)


@router.post(
    "",
    status_code=201,
    response_model=FrameworkVersionRead,
    summary="Create a framework (draft version 1)",
    responses=WRITE_ERRORS,
)
async def create_framework(
    principal: FrameworksWrite,
    session: SessionDep,
    request: Request,
    document: Annotated[FrameworkDocument, Body()],
    publish: Annotated[bool, Query(description="Publish version 1 at once.")] = False,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Create a framework from a framework document; it starts as draft version 1."""

    async def produce() -> tuple[FrameworkVersionRead, dict[str, str]]:
        return _created(await service.create(session, principal, document, publish=publish))

    return await idempotency.execute(session, principal, request, idempotency_key, produce)


_IMPORT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/FrameworkDocument"}},
            **{t: {"schema": {"type": "string"}} for t in YAML_TYPES[:1]},
        },
    }
}


@router.post(
    "/import",
    status_code=201,
    response_model=FrameworkVersionRead,
    summary="Import a framework file (JSON or YAML)",
    responses=WRITE_ERRORS,
    openapi_extra=_IMPORT_BODY,
)
async def import_framework(
    principal: FrameworksWrite,
    session: SessionDep,
    request: Request,
    publish: Annotated[bool, Query(description="Publish the imported version at once.")] = False,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Import a framework file: a new framework, or a new version of yours with that key.

    Send JSON (`application/json`) or YAML (`application/yaml`). Every problem in the file is
    reported with the path of the offending field; nothing is stored unless all of it is valid.
    """
    data = load_file(await request.body(), content_type=request.headers.get("content-type"))
    document = parse_document(data)

    async def produce() -> tuple[FrameworkVersionRead, dict[str, str]]:
        model, headers = _created(
            await service.import_document(session, principal, document, publish=publish)
        )
        model.advice = tolerance_advice(document)
        return model, headers

    return await idempotency.execute(session, principal, request, idempotency_key, produce)


@router.get("/{key}", summary="Get a framework (latest published version)", responses=READ_ERRORS)
async def get_framework(
    key: FrameworkKey, principal: FrameworksRead, session: SessionDep, response: Response
) -> FrameworkVersionRead:
    """The latest published version of a framework, with its whole document."""
    return read_version(await service.resolve(session, principal, key), response)


@router.get("/{key}/versions", summary="List versions of a framework", responses=READ_ERRORS)
async def list_framework_versions(
    key: FrameworkKey,
    principal: FrameworksRead,
    session: SessionDep,
    limit: PageSize,
    cursor: PageCursor = None,
) -> VersionPage:
    """Every version, oldest first, with its status."""
    after = decode_cursor(cursor, 1)
    if after is not None and not after[0].isdigit():
        raise invalid_cursor()
    rows = [
        r
        for r in await service.list_versions(session, principal, key)
        if after is None or r.version > int(after[0])
    ]
    kept, next_cursor = next_page(rows[: limit + 1], limit, lambda row: [str(row.version)])
    items = [
        VersionSummary(
            version=r.version,
            status=r.status,  # type: ignore[arg-type]
            created_at=r.created_at,
            updated_at=r.updated_at,
            published_at=r.published_at,
        )
        for r in kept
    ]
    return VersionPage(items=items, next_cursor=next_cursor)


@router.post(
    "/{key}/versions",
    status_code=201,
    response_model=FrameworkVersionRead,
    summary="Start a new draft version",
    responses=WRITE_ERRORS,
)
async def create_framework_draft(
    key: FrameworkKey,
    principal: FrameworksWrite,
    session: SessionDep,
    request: Request,
    document: Annotated[FrameworkDocument | None, Body()] = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Start a draft from the document sent, or as a copy of the newest version."""

    async def produce() -> tuple[FrameworkVersionRead, dict[str, str]]:
        return _created(await service.new_draft(session, principal, key, document))

    return await idempotency.execute(session, principal, request, idempotency_key, produce)


@router.get("/{key}/versions/{version}", summary="Get one framework version", responses=READ_ERRORS)
async def get_framework_version(
    key: FrameworkKey,
    version: VersionNumber,
    principal: FrameworksRead,
    session: SessionDep,
    response: Response,
) -> FrameworkVersionRead:
    """One version of a framework, whatever its status; the ETag guards draft updates."""
    return read_version(await service.resolve(session, principal, key, version), response)


@router.put("/{key}/versions/{version}", summary="Update a draft version", responses=WRITE_ERRORS)
async def update_draft(
    key: FrameworkKey,
    version: VersionNumber,
    principal: FrameworksWrite,
    session: SessionDep,
    response: Response,
    document: Annotated[FrameworkDocument, Body()],
    if_match: Annotated[str | None, Header(max_length=200)] = None,
) -> FrameworkVersionRead:
    """Replace a draft's document. Needs `If-Match` with the draft's ETag; published versions are 409."""
    resolved = await service.update_draft(session, principal, key, version, document, if_match)
    return read_version(resolved, response)


@router.post(
    "/{key}/versions/{version}/publish", summary="Publish a draft version", responses=WRITE_ERRORS
)
async def publish_framework_version(
    key: FrameworkKey,
    version: VersionNumber,
    principal: FrameworksWrite,
    session: SessionDep,
    response: Response,
) -> FrameworkVersionRead:
    """Publish a draft. It becomes immutable and the previous published version is archived."""
    resolved = await service.publish(session, principal, key, version)
    return read_version(resolved, response)


@router.get(
    "/{key}/versions/{version}/export",
    summary="Export a version as a framework file",
    responses={
        **READ_ERRORS,
        200: {
            "content": {
                "application/json": {},
                # The same document, written as YAML.
                "application/yaml": {"schema": {"$ref": "#/components/schemas/FrameworkDocument"}},
            }
        },
    },
    response_model=FrameworkDocument,
)
async def export_framework_version(
    key: FrameworkKey,
    version: VersionNumber,
    principal: FrameworksRead,
    session: SessionDep,
    format: Annotated[Literal["json", "yaml"], Query(description="File format.")] = "json",
) -> Response:
    """The version's framework file; importing it again gives the same framework."""
    resolved = await service.resolve(session, principal, key, version)
    data = dump_document(FrameworkDocument.model_validate(resolved.version.content))
    filename = f"{key}-v{version}.{format}"
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
    if format == "yaml":
        return PlainTextResponse(dump_yaml(data), media_type="application/yaml", headers=headers)
    return JSONResponse(data, headers=headers)


@router.post(
    "/{key}/clone",
    status_code=201,
    response_model=FrameworkVersionRead,
    summary="Clone a framework into your tenant",
    responses=WRITE_ERRORS,
)
async def clone_framework(
    key: FrameworkKey,
    principal: FrameworksWrite,
    session: SessionDep,
    request: Request,
    body: Annotated[CloneRequest, Body()],
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Copy a framework (for example a built-in template) under a new key, as draft version 1."""

    async def produce() -> tuple[FrameworkVersionRead, dict[str, str]]:
        return _created(
            await service.clone(session, principal, key, body.key, body.name, body.version)
        )

    return await idempotency.execute(session, principal, request, idempotency_key, produce)


@router.get("/{key}/diff", summary="What changed between two versions", responses=READ_ERRORS)
async def diff_framework_versions(
    key: FrameworkKey,
    principal: FrameworksRead,
    session: SessionDep,
    from_version: Annotated[
        int | None,
        Query(alias="from", ge=1, le=1_000_000, description="Default: the published version."),
    ] = None,
    to_version: Annotated[
        int | None,
        Query(alias="to", ge=1, le=1_000_000, description="Default: the newest version."),
    ] = None,
) -> FrameworkDiff:
    """Levels, tracks, areas, scale, competencies, expectations (required, critical,
    indicators), area emphasis, activities and settings, each added, removed or changed with
    its before and after; drafts included. `summary` says it in a few lines of Markdown."""
    return await impact.diff_versions(session, principal, key, from_version, to_version)


IMPACT_COLUMNS = (
    "subject_ref",
    "display_name",
    "track",
    "direction",
    "level_before",
    "level_after",
    "level_index_before",
    "level_index_after",
)


@router.post(
    "/{key}/versions/{version}/impact",
    summary="Preview whom publishing a version affects",
    response_model=ImpactResponse,
    responses={
        **error_responses(401, 403, 404, 413, 422, 503),
        200: {"content": {"application/json": {}, "text/csv": {"schema": {"type": "string"}}}},
    },
)
async def preview_framework_impact(
    key: FrameworkKey,
    version: VersionNumber,
    principal: AnalyticsRead,
    session: SessionDep,
    limit: PageSize,
    body: Annotated[ImpactRequest, Body()],
    cursor: PageCursor = None,
    format: Annotated[
        Literal["json", "csv"], Query(description="csv: every person who moves, as one table.")
    ] = "json",
) -> Response:
    """Scores the people (all, a filter or a list) under the published version and under this
    one, its competency map carrying older ratings: who moves up or down a level (paged), the
    readiness change per level, level counts before and after, people whose ratings no longer
    count, and the competencies that cause most of the change. Nothing is stored."""
    after = decode_cursor(cursor, 1)
    result = await impact.impact(session, principal, key, version, body)
    if format == "csv":
        out = io.StringIO()
        writer = csv_output.Writer(out)
        writer.writerow(IMPACT_COLUMNS)
        for mover in result.movers:
            row = mover.model_dump()
            for side in ("level_before", "level_after"):
                row[side] = row[side]["key"] if row[side] else ""
            writer.writerow(["" if row[c] is None else row[c] for c in IMPACT_COLUMNS])
        return Response(
            out.getvalue(),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{key}-v{version}-impact.csv"'},
        )
    page, last = impact.page_movers(result.movers, limit, after[0] if after else None)
    answer = result.response.model_copy(
        update={"movers": page, "next_cursor": encode_cursor([last]) if last else None}
    )
    return Response(answer.model_dump_json(), media_type="application/json")
