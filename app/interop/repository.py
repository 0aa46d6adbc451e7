"""The CASE identifier index: which framework version holds each identifier (add/flush, never commit).

Every CASE identifier of a version (its document's and its items') is a row, written when the
version is created and rewritten when a draft's document changes, so a CASE lookup is one
indexed read instead of deriving the identifiers of every visible framework.
"""

import uuid

from sqlalchemy.orm import aliased
from sqlmodel import and_, col, delete, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.interop import case
from app.models import SYSTEM_TENANT_ID, CaseIdentifier, Framework, FrameworkVersion


def index_version(session: AsyncSession, fw: Framework, row: FrameworkVersion) -> None:
    """Add the CASE identifiers of a new version (written with it at the next flush)."""
    ids = case.CaseIds(owner=fw.tenant_id, key=fw.key, version=row.version)
    session.add_all(
        CaseIdentifier(
            tenant_id=row.tenant_id, identifier=uuid.UUID(ident), version_id=row.id, kind=kind
        )
        for ident, kind in case.identifiers(row.content, ids).items()
    )


async def reindex_version(session: AsyncSession, fw: Framework, row: FrameworkVersion) -> None:
    """Replace a version's CASE identifiers after its document changed."""
    await session.exec(
        delete(CaseIdentifier).where(
            col(CaseIdentifier.tenant_id) == row.tenant_id,
            col(CaseIdentifier.version_id) == row.id,
        )
    )
    index_version(session, fw, row)


async def locate(
    session: AsyncSession, tenant_id: uuid.UUID, identifier: uuid.UUID
) -> tuple[str, Framework, FrameworkVersion] | None:
    """The CASE class, framework and version of an identifier the tenant can see, if any.

    The tenant sees its own frameworks and the built-in ones, except a built-in whose key the
    tenant uses for a framework of its own (that one shadows it).
    """
    own = aliased(Framework)
    shadowed = select(own.id).where(own.tenant_id == tenant_id, own.key == Framework.key).exists()
    stmt = (
        select(CaseIdentifier.kind, Framework, FrameworkVersion)
        .join(
            FrameworkVersion,
            and_(
                FrameworkVersion.tenant_id == CaseIdentifier.tenant_id,
                FrameworkVersion.id == CaseIdentifier.version_id,
            ),
        )
        .join(
            Framework,
            and_(
                Framework.tenant_id == FrameworkVersion.tenant_id,
                Framework.id == FrameworkVersion.framework_id,
            ),
        )
        .where(
            CaseIdentifier.identifier == identifier,
            col(CaseIdentifier.tenant_id).in_([tenant_id, SYSTEM_TENANT_ID]),
            or_(CaseIdentifier.tenant_id == tenant_id, ~shadowed),
        )
        .limit(1)
    )
    row = (await session.exec(stmt)).first()
    return None if row is None else (row[0], row[1], row[2])
