"""HTTP routes of CASE 1.1 interoperability: package import and export, and read-only CASE routes.

The read-only routes (``/ims/case/v1p1``) serve the frameworks the caller can see, addressed by
the deterministic identifiers of ``app.interop.case``; anything else is a 404, so one tenant never
learns of another's frameworks.
"""

import uuid
from collections import OrderedDict
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Body, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlmodel.ext.asyncio.session import AsyncSession

from app import idempotency
from app.auth.dependencies import FrameworksRead, FrameworksWrite, SessionDep
from app.auth.principal import Principal
from app.errors import NotFound, error_responses
from app.frameworks import service
from app.frameworks.document import FrameworkDocument
from app.frameworks.router import FrameworkKey, VersionNumber, _created
from app.frameworks.schemas import FrameworkVersionRead
from app.idempotency import IdempotencyKey
from app.interop import case
from app.interop import repository as case_index
from app.schemas import KEY_MAX_LENGTH, KEY_PATTERN

router = APIRouter()

CASE_PATH = "/ims/case/v1p1"
IMPORT_ERRORS = error_responses(401, 403, 409, 413, 422, 503)
READ_ERRORS = error_responses(401, 403, 404, 422, 503)

SourcedId = Annotated[
    str,
    Path(
        min_length=1,
        max_length=100,
        description="The object's CASE identifier (a UUID), as found in an exported package.",
        examples=["0b7c1b6e-3f9d-5a43-9b0e-2f6d0c8a1e57"],
    ),
]


class CaseImportRead(BaseModel):
    """The framework version a CASE package became, and how each part of the package was used."""

    framework: FrameworkVersionRead
    report: list[case.ReportEntry] = Field(
        description="What was mapped where, and every field, association or extension not kept."
    )


def _document(resolved: service.ResolvedVersion) -> FrameworkDocument:
    return FrameworkDocument.model_validate(resolved.version.content)


def _context(resolved: service.ResolvedVersion, request: Request) -> case.ExportContext:
    fw, v = resolved.framework, resolved.version
    return _export_context(fw.tenant_id, fw.key, v.version, v.status, v.updated_at, request)


def _export_context(
    owner: uuid.UUID, key: str, version: int, status: str, changed_at: datetime, request: Request
) -> case.ExportContext:
    return case.ExportContext(
        ids=case.CaseIds(owner=owner, key=key, version=version),
        status=status,
        changed_at=changed_at,
        # From configuration: a request's Host header is the client's to choose.
        base_uri=request.app.state.settings.public_base_url + CASE_PATH,
    )


_DOCUMENTS: "OrderedDict[tuple[uuid.UUID, int], FrameworkDocument]" = OrderedDict()
_DOCUMENTS_MAX = 256


def _located_context(found: case_index.Located, request: Request) -> case.ExportContext:
    return _export_context(
        found.owner, found.key, found.version, found.status, found.updated_at, request
    )


async def _documents(
    session: AsyncSession, versions: list[case_index.Located]
) -> dict[uuid.UUID, FrameworkDocument]:
    """The versions' documents, read (in one query) only where this process does not hold them
    yet: they are kept per version and revision, and a revision never changes."""
    out: dict[uuid.UUID, FrameworkDocument] = {}
    missing = []
    for found in versions:
        doc = _DOCUMENTS.get((found.version_id, found.revision))
        if doc is None:
            missing.append(found)
        else:
            _DOCUMENTS.move_to_end((found.version_id, found.revision))
            out[found.version_id] = doc
    stored = await case_index.contents(session, missing)
    for found in missing:
        doc = out[found.version_id] = FrameworkDocument.model_validate(stored[found.version_id])
        _DOCUMENTS[(found.version_id, found.revision)] = doc
        if len(_DOCUMENTS) > _DOCUMENTS_MAX:
            _DOCUMENTS.popitem(last=False)
    return out


async def _found(
    session: AsyncSession, principal: Principal, sourced_id: str, kind: str, request: Request
) -> tuple[FrameworkDocument, case.ExportContext]:
    """The document and export context of the visible version with this CASE object: one
    indexed read finds the version."""
    missing = NotFound(f"No {kind} {sourced_id!r} is visible to this tenant.")
    try:
        identifier = uuid.UUID(sourced_id)
    except ValueError:
        raise missing from None
    found = await case_index.locate(session, principal.tenant_id, identifier)
    if found is None or found.kind != kind:
        raise missing
    doc = (await _documents(session, [found]))[found.version_id]
    return doc, _located_context(found, request)


@router.post(
    "/v1/frameworks/import/case",
    status_code=201,
    tags=["frameworks"],
    summary="Import a CASE 1.1 package",
    description=(
        "Import a 1EdTech CASE 1.1 CFPackage as a framework: a new framework, or a new version "
        "of yours with that key. A package exported by this service comes back unchanged. A "
        "package from another tool is mapped by documented rules: top-level items with children "
        "become areas, leaf items competencies (weight 1), the rubric criterion with the most "
        "scored levels the scale, and one level `proficient` is made because CASE has no career "
        "levels. The `report` lists what became what, and every field, association and "
        "extension that was not kept, with its path. Identifiers that are not UUIDs are accepted "
        "unless `strict=true`. Nothing is stored unless the whole package converts into a valid "
        "framework; otherwise the 422 names each offending field of the package. With an "
        "`Idempotency-Key`, a replay returns the first response and imports nothing."
    ),
    response_model=CaseImportRead,
    responses=IMPORT_ERRORS,
)
async def import_case_package(
    principal: FrameworksWrite,
    session: SessionDep,
    request: Request,
    package: Annotated[case.CFPackage, Body()],
    strict: Annotated[
        bool, Query(description="Refuse identifiers that are not CASE UUIDs (422 per field).")
    ] = False,
    publish: Annotated[bool, Query(description="Publish the imported version at once.")] = False,
    key: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=KEY_MAX_LENGTH,
            pattern=KEY_PATTERN,
            description="Framework key to import under; default: the package's own.",
        ),
    ] = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Import a CASE CFPackage as a framework version, with the report of how."""
    result = case.package_to_document(package, strict=strict, key=key)

    async def produce() -> tuple[CaseImportRead, dict[str, str]]:
        resolved = await service.import_document(
            session, principal, result.document, publish=publish
        )
        framework, headers = _created(resolved)
        return CaseImportRead(framework=framework, report=result.report), headers

    return await idempotency.execute(session, principal, request, idempotency_key, produce)


@router.get(
    "/v1/frameworks/{key}/versions/{version}/export/case",
    tags=["frameworks"],
    summary="Export a version as a CASE 1.1 package",
    description=(
        "The version as a 1EdTech CASE 1.1 CFPackage: areas, competencies and levels as CFItems "
        "linked by isChildOf associations, the scale and each competency's expectations as "
        "CFRubrics, and what CASE has no field for in `extensions.competencyLadder`. Identifiers "
        "are stable: exporting the same version again gives the same package, and importing it "
        "gives the same framework."
    ),
    responses=READ_ERRORS,
    response_model=case.CFPackage,
)
async def export_case_package(
    key: FrameworkKey,
    version: VersionNumber,
    principal: FrameworksRead,
    session: SessionDep,
    request: Request,
) -> Response:
    """One framework version as a CASE CFPackage."""
    resolved = await service.resolve(session, principal, key, version)
    package = case.document_to_package(_document(resolved), _context(resolved, request))
    filename = f"{key}-v{version}.case.json"
    return JSONResponse(
        package, headers={"Content-Disposition": f'attachment; filename="{filename}"'}
    )


@router.get(
    f"{CASE_PATH}/CFDocuments",
    tags=["CASE"],
    summary="List CASE documents",
    description=(
        "CASE getAllCFDocuments: the latest published version of every framework you can see "
        "(yours and the built-in templates) as CFDocuments. Frameworks with no published "
        "version are left out."
    ),
    responses=error_responses(401, 403, 503),
    response_model=case.CFDocumentSet,
)
async def list_case_documents(
    principal: FrameworksRead, session: SessionDep, request: Request
) -> Response:
    """Every visible framework's latest published version, as a CASE document list."""
    versions = await case_index.latest_published(session, principal.tenant_id)
    docs = await _documents(session, versions)
    documents = [
        case.cf_document(docs[v.version_id], _located_context(v, request)) for v in versions
    ]
    return JSONResponse({"CFDocuments": documents})


@router.get(
    f"{CASE_PATH}/CFDocuments/{{sourcedId}}",
    tags=["CASE"],
    summary="Get a CASE document",
    description="CASE getCFDocument: one framework version's CFDocument, by its identifier.",
    responses=READ_ERRORS,
    response_model=case.CFDocument,
)
async def get_case_document(
    sourcedId: SourcedId, principal: FrameworksRead, session: SessionDep, request: Request
) -> Response:
    """One CFDocument by identifier."""
    doc, ctx = await _found(session, principal, sourcedId, "CFDocument", request)
    return JSONResponse(case.cf_document(doc, ctx))


@router.get(
    f"{CASE_PATH}/CFPackages/{{sourcedId}}",
    tags=["CASE"],
    summary="Get a CASE package",
    description=(
        "CASE getCFPackage: one framework version as a whole CFPackage, by its document's "
        "identifier. The same package as the version's CASE export."
    ),
    responses=READ_ERRORS,
    response_model=case.CFPackage,
)
async def get_case_package(
    sourcedId: SourcedId, principal: FrameworksRead, session: SessionDep, request: Request
) -> Response:
    """One CFPackage by its document's identifier."""
    doc, ctx = await _found(session, principal, sourcedId, "CFDocument", request)
    return JSONResponse(case.document_to_package(doc, ctx))


@router.get(
    f"{CASE_PATH}/CFItems/{{sourcedId}}",
    tags=["CASE"],
    summary="Get a CASE item",
    description=(
        "CASE getCFItem: one area, competency or level of a framework version as a CFItem, "
        "with the link to its document."
    ),
    responses=READ_ERRORS,
    response_model=case.CFItem,
)
async def get_case_item(
    sourcedId: SourcedId, principal: FrameworksRead, session: SessionDep, request: Request
) -> Response:
    """One CFItem by identifier."""
    doc, ctx = await _found(session, principal, sourcedId, "CFItem", request)
    item = case.cf_item(doc, ctx, str(uuid.UUID(sourcedId)))
    if item is None:
        raise NotFound(f"No CFItem {sourcedId!r} is visible to this tenant.")
    return JSONResponse(item)
