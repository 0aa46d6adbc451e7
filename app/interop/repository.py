"""The CASE identifier index: which framework version holds each identifier (add/flush, never commit).

Every CASE identifier of a version (its document's and its items') is a row, written when the
version is created and rewritten when a draft's document changes, so a CASE lookup is one
indexed read instead of deriving the identifiers of every visible framework.
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, delete
from sqlmodel.ext.asyncio.session import AsyncSession

from app.frameworks.repository import visible_to
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


@dataclass(frozen=True, slots=True)
class Located:
    """Where a CASE identifier lives: what names and renders its version, without the document."""

    kind: str
    owner: uuid.UUID
    key: str
    version_id: uuid.UUID
    version: int
    status: str
    revision: int
    updated_at: datetime


def locate_statement(tenant_id: uuid.UUID, identifier: uuid.UUID) -> sa.Select[Any]:
    """The one query of ``locate`` (also shown with EXPLAIN by ``bench/case_lookup.py``).

    Primary-key probes from the identifier to its version and framework, and (for a built-in)
    one probe of the unique (tenant, key) index for a framework of the tenant that shadows it
    (``frameworks.repository.visible_to``).
    """
    ci = CaseIdentifier.__table__.c  # type: ignore[attr-defined]
    fv = FrameworkVersion.__table__.c  # type: ignore[attr-defined]
    fw = Framework.__table__.c  # type: ignore[attr-defined]
    return (
        sa.select(
            ci.kind,
            ci.tenant_id,
            fw.key,
            fv.id,
            fv.version,
            fv.status,
            fv.revision,
            fv.updated_at,
        )
        .select_from(
            CaseIdentifier.__table__.join(  # type: ignore[attr-defined]
                FrameworkVersion.__table__,  # type: ignore[attr-defined]
                (fv.tenant_id == ci.tenant_id) & (fv.id == ci.version_id),
            ).join(
                Framework.__table__,  # type: ignore[attr-defined]
                (fw.tenant_id == fv.tenant_id) & (fw.id == fv.framework_id),
            )
        )
        .where(
            ci.identifier == identifier,
            ci.tenant_id.in_([tenant_id, SYSTEM_TENANT_ID]),
            visible_to(tenant_id, fw),
        )
        .limit(1)
    )


async def locate(
    session: AsyncSession, tenant_id: uuid.UUID, identifier: uuid.UUID
) -> Located | None:
    """The version holding a CASE identifier that the tenant can see, if any: one indexed read."""
    stmt = locate_statement(tenant_id, identifier)
    row = (await (await session.connection()).execute(stmt)).first()
    return None if row is None else Located(*row)


async def latest_published(session: AsyncSession, tenant_id: uuid.UUID) -> list[Located]:
    """The latest published version of every framework the tenant sees, by key, in one query.

    Visible as in ``locate``: the tenant's frameworks and the built-ins whose key it does not use.
    """
    fv = FrameworkVersion.__table__.c  # type: ignore[attr-defined]
    fw = Framework.__table__.c  # type: ignore[attr-defined]
    owners = [tenant_id, SYSTEM_TENANT_ID]
    newest = (
        sa.select(fv.tenant_id, fv.framework_id, sa.func.max(fv.version).label("version"))
        .where(fv.tenant_id.in_(owners), fv.status == "published")
        .group_by(fv.tenant_id, fv.framework_id)
        .subquery()
    )
    stmt = (
        sa.select(
            sa.literal("CFDocument"),
            fw.tenant_id,
            fw.key,
            fv.id,
            fv.version,
            fv.status,
            fv.revision,
            fv.updated_at,
        )
        .select_from(
            Framework.__table__.join(  # type: ignore[attr-defined]
                newest, (newest.c.tenant_id == fw.tenant_id) & (newest.c.framework_id == fw.id)
            ).join(
                FrameworkVersion.__table__,  # type: ignore[attr-defined]
                (fv.tenant_id == newest.c.tenant_id)
                & (fv.framework_id == newest.c.framework_id)
                & (fv.version == newest.c.version),
            )
        )
        .where(fw.tenant_id.in_(owners), visible_to(tenant_id, fw))
        .order_by(fw.key)
    )
    rows = await (await session.connection()).execute(stmt)
    return [Located(*row) for row in rows]


async def contents(
    session: AsyncSession, versions: Sequence[Located]
) -> dict[uuid.UUID, dict[str, Any]]:
    """The stored documents of these versions, by version id, in one query."""
    if not versions:
        return {}
    fv = FrameworkVersion.__table__.c  # type: ignore[attr-defined]
    stmt = sa.select(fv.id, fv.content).where(
        fv.tenant_id.in_({v.owner for v in versions}), fv.id.in_([v.version_id for v in versions])
    )
    rows = await (await session.connection()).execute(stmt)
    return {version_id: dict(content) for version_id, content in rows}
