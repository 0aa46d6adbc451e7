"""Webhook queries: subscriptions, deliveries and the queue (add/flush, never commit)."""

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TypeVar

from sqlalchemy import func
from sqlmodel import col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.models import WebhookDelivery, WebhookQueue, WebhookSubscription
from app.pagination import after_moment

Row = TypeVar("Row", WebhookDelivery, WebhookSubscription, WebhookQueue)


async def find_subscription(
    session: AsyncSession, tenant_id: uuid.UUID, webhook_id: uuid.UUID
) -> WebhookSubscription | None:
    """One of the tenant's subscriptions."""
    stmt = select(WebhookSubscription).where(
        WebhookSubscription.tenant_id == tenant_id, WebhookSubscription.id == webhook_id
    )
    return (await session.exec(stmt)).first()


async def delete_subscription(
    session: AsyncSession, tenant_id: uuid.UUID, webhook_id: uuid.UUID
) -> bool:
    """Delete one of the tenant's subscriptions (its deliveries cascade); False when it was
    already gone (a concurrent delete removed it first)."""
    stmt = delete(WebhookSubscription).where(
        col(WebhookSubscription.tenant_id) == tenant_id, col(WebhookSubscription.id) == webhook_id
    )
    return bool((await session.exec(stmt)).rowcount)


async def page_subscriptions(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    *,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None,
) -> Sequence[WebhookSubscription]:
    """The tenant's subscriptions, oldest first, keyset-paginated on (created_at, id)."""
    created, row_id = col(WebhookSubscription.created_at), col(WebhookSubscription.id)
    stmt = select(WebhookSubscription).where(WebhookSubscription.tenant_id == tenant_id)
    if after:
        stmt = stmt.where(after_moment(created, row_id, after, newest_first=False))
    return (await session.exec(stmt.order_by(created, row_id).limit(limit))).all()


async def page_deliveries(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    webhook_id: uuid.UUID,
    *,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None,
) -> Sequence[WebhookDelivery]:
    """The deliveries of one subscription, newest first, keyset-paginated on (created_at, id)."""
    created, row_id = col(WebhookDelivery.created_at), col(WebhookDelivery.id)
    stmt = select(WebhookDelivery).where(
        WebhookDelivery.tenant_id == tenant_id,
        WebhookDelivery.subscription_id == webhook_id,
    )
    if after:
        stmt = stmt.where(after_moment(created, row_id, after, newest_first=True))
    return (await session.exec(stmt.order_by(created.desc(), row_id.desc()).limit(limit))).all()


async def active_subscriptions(
    session: AsyncSession, tenant_id: uuid.UUID
) -> Sequence[WebhookSubscription]:
    """The tenant's active subscriptions, to any event."""
    stmt = select(WebhookSubscription).where(
        WebhookSubscription.tenant_id == tenant_id, col(WebhookSubscription.active).is_(True)
    )
    return (await session.exec(stmt)).all()


async def deliveries_about(
    session: AsyncSession, tenant_id: uuid.UUID, subject_id: uuid.UUID
) -> Sequence[WebhookDelivery]:
    """Every delivery of the tenant about one person, whatever its status."""
    stmt = select(WebhookDelivery).where(
        WebhookDelivery.tenant_id == tenant_id, WebhookDelivery.subject_id == subject_id
    )
    return (await session.exec(stmt)).all()


async def dequeue(
    session: AsyncSession, tenant_id: uuid.UUID, delivery_ids: Sequence[uuid.UUID]
) -> None:
    """Drop the tenant's queue rows of these deliveries (they will not be sent)."""
    await session.exec(
        delete(WebhookQueue).where(
            col(WebhookQueue.tenant_id) == tenant_id,
            col(WebhookQueue.delivery_id).in_(delivery_ids),
        )
    )


async def lock_due(session: AsyncSession, now: datetime, limit: int) -> list[WebhookQueue]:
    """Up to ``limit`` queue rows due at ``now``, earliest first, of every tenant (the queue has
    no row-level security); on Postgres locked FOR UPDATE SKIP LOCKED, so other dispatchers
    pass them over until this transaction ends."""
    stmt = (
        select(WebhookQueue)
        .where(col(WebhookQueue.next_attempt_at) <= now)
        .order_by(col(WebhookQueue.next_attempt_at))
        .limit(limit)
    )
    if (await session.connection()).dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    return list((await session.exec(stmt)).all())


async def by_key(
    session: AsyncSession,
    model: type[Row],
    key: str,
    tenant_id: uuid.UUID,
    values: Iterable[uuid.UUID],
) -> dict[uuid.UUID, Row]:
    """The tenant's rows of ``model`` whose ``key`` column is one of ``values``, by that key."""
    column = getattr(model, key)
    stmt = select(model).where(model.tenant_id == tenant_id, col(column).in_(list(values)))
    return {getattr(row, key): row for row in (await session.exec(stmt)).all()}


async def outbox(session: AsyncSession, now: datetime) -> tuple[int, int, datetime | None]:
    """Every tenant's queue at once (the metrics' view, outside row-level security): deliveries
    waiting, those due by ``now``, and the earliest moment one of those fell due."""
    due = col(WebhookQueue.next_attempt_at) <= now
    stmt = select(
        func.count(),
        func.count().filter(due),
        func.min(col(WebhookQueue.next_attempt_at)).filter(due),
    )
    depth, due_count, oldest = (await session.exec(stmt)).one()
    return depth, due_count, oldest
