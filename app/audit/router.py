"""Admin route for the audit log."""

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from app.audit.repository import list_events
from app.auth.dependencies import Admin, SessionDep
from app.errors import error_responses
from app.pagination import (
    Page,
    PageCursor,
    PageSize,
    decode_moment_cursor,
    moment_cursor,
    next_page,
)
from app.schemas import NUL_FREE, Timestamp

router = APIRouter(prefix="/v1/audit-events", tags=["audit"])


class AuditEventRead(BaseModel):
    id: uuid.UUID
    occurred_at: datetime
    actor_key_id: uuid.UUID | None
    action: str
    object_type: str
    object_id: str
    details: dict[str, Any]


class AuditEventPage(Page[AuditEventRead]):
    """One page of audit events."""


@router.get("", summary="List audit events", responses=error_responses(401, 403, 422, 503))
async def list_audit_events(
    principal: Admin,
    session: SessionDep,
    limit: PageSize,
    action: Annotated[str | None, Query(max_length=64, pattern=NUL_FREE)] = None,
    object_type: Annotated[str | None, Query(max_length=64, pattern=NUL_FREE)] = None,
    object_id: Annotated[str | None, Query(max_length=200, pattern=NUL_FREE)] = None,
    since: Annotated[Timestamp | None, Query()] = None,
    until: Annotated[Timestamp | None, Query()] = None,
    cursor: PageCursor = None,
) -> AuditEventPage:
    """Who changed what and when in your tenant, newest first."""
    after = decode_moment_cursor(cursor)
    rows = await list_events(
        session,
        principal.tenant_id,
        limit=limit + 1,
        after=after,
        action=action,
        object_type=object_type,
        object_id=object_id,
        since=since,
        until=until,
    )
    kept, next_cursor = next_page(rows, limit, lambda row: moment_cursor(row.occurred_at, row.id))
    return AuditEventPage(
        items=[AuditEventRead.model_validate(r, from_attributes=True) for r in kept],
        next_cursor=next_cursor,
    )
