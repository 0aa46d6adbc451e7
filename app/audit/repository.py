"""Audit events are written in the transaction of the change they record."""

import uuid
from datetime import datetime
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.auth.principal import Principal
from app.models import AuditEvent
from app.pagination import after_moment


def record(
    session: AsyncSession,
    principal: Principal,
    action: str,
    object_type: str,
    object_id: str,
    details: dict[str, Any] | None = None,
) -> None:
    """Add an audit event (ids, keys and counts only: never secrets or evidence text)."""
    session.add(
        AuditEvent(
            tenant_id=principal.tenant_id,
            actor_key_id=principal.key_id,
            action=action,
            object_type=object_type,
            object_id=object_id,
            details=details or {},
        )
    )


async def list_events(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    *,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None,
    action: str | None,
    object_type: str | None,
    object_id: str | None,
    since: datetime | None,
    until: datetime | None,
) -> list[AuditEvent]:
    """Newest first, keyset-paginated on (occurred_at, id)."""
    stmt = select(AuditEvent).where(AuditEvent.tenant_id == tenant_id)
    if action:
        stmt = stmt.where(AuditEvent.action == action)
    if object_type:
        stmt = stmt.where(AuditEvent.object_type == object_type)
    if object_id:
        stmt = stmt.where(AuditEvent.object_id == object_id)
    if since:
        stmt = stmt.where(col(AuditEvent.occurred_at) >= since)
    if until:
        stmt = stmt.where(col(AuditEvent.occurred_at) < until)
    if after:
        stmt = stmt.where(
            after_moment(col(AuditEvent.occurred_at), col(AuditEvent.id), after, newest_first=True)
        )
    stmt = stmt.order_by(col(AuditEvent.occurred_at).desc(), col(AuditEvent.id).desc()).limit(limit)
    return list((await session.exec(stmt)).all())
