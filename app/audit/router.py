"""Admin route for the audit log."""

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from app.audit.repository import list_events
from app.auth.dependencies import Admin, SessionDep
from app.config import get_settings
from app.errors import error_responses
from app.pagination import CURSOR_PATTERN, Page, decode_cursor, encode_cursor, invalid_cursor
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


@router.get("", summary="List audit events", responses=error_responses(401, 403, 422, 503))
async def list_audit_events(
    principal: Admin,
    session: SessionDep,
    action: Annotated[str | None, Query(max_length=64, pattern=NUL_FREE)] = None,
    object_type: Annotated[str | None, Query(max_length=64, pattern=NUL_FREE)] = None,
    object_id: Annotated[str | None, Query(max_length=200, pattern=NUL_FREE)] = None,
    since: Annotated[Timestamp | None, Query()] = None,
    until: Annotated[Timestamp | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=512, pattern=CURSOR_PATTERN)] = None,
) -> Page[AuditEventRead]:
    """Who changed what and when in your tenant, newest first."""
    limit = min(limit, get_settings().max_page_size)
    after = None
    decoded = decode_cursor(cursor, 2)
    if decoded is not None:
        try:
            after = (datetime.fromisoformat(decoded[0]), uuid.UUID(decoded[1]))
        except ValueError:
            raise invalid_cursor() from None
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
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        next_cursor = encode_cursor([last.occurred_at.isoformat(), str(last.id)])
    return Page[AuditEventRead](
        items=[AuditEventRead.model_validate(r, from_attributes=True) for r in rows],
        next_cursor=next_cursor,
    )
