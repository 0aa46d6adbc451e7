"""Webhook subscriptions, the outbox of deliveries, and signing."""

import hashlib
import hmac
import secrets
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from app.audit.repository import record
from app.auth.principal import Principal
from app.errors import NotFound
from app.models import WebhookDelivery, WebhookQueue, WebhookSubscription, utcnow
from app.webhooks import repository
from app.webhooks.schemas import WebhookCreate
from app.webhooks.targets import validate_subscription_url

SIGNATURE_HEADER = "X-Ladder-Signature"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """``t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">``: receivers recompute and compare."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


async def subscribe(
    session: AsyncSession, principal: Principal, body: WebhookCreate, *, allow_private: bool
) -> tuple[WebhookSubscription, str]:
    """A new subscription and its signing secret (returned once)."""
    await validate_subscription_url(body.url, allow_private=allow_private)
    secret = "whsec_" + secrets.token_urlsafe(32)
    sub = WebhookSubscription(
        tenant_id=principal.tenant_id, url=body.url, events=sorted(set(body.events)), secret=secret
    )
    session.add(sub)
    record(session, principal, "webhook.created", "webhook", str(sub.id), {"events": sub.events})
    await session.flush()
    return sub, secret


async def get(
    session: AsyncSession, principal: Principal, webhook_id: uuid.UUID
) -> WebhookSubscription:
    sub = await repository.find_subscription(session, principal.tenant_id, webhook_id)
    if sub is None:
        raise _missing(webhook_id)
    return sub


def _missing(webhook_id: uuid.UUID) -> NotFound:
    return NotFound(f"No webhook {webhook_id} in this tenant.")


async def list_all(
    session: AsyncSession,
    principal: Principal,
    *,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None,
) -> Sequence[WebhookSubscription]:
    """The tenant's subscriptions, oldest first, keyset-paginated on (created_at, id)."""
    return await repository.page_subscriptions(
        session, principal.tenant_id, limit=limit, after=after
    )


async def remove(session: AsyncSession, principal: Principal, webhook_id: uuid.UUID) -> None:
    """Delete a subscription and its delivery log; queued attempts are dropped by the dispatcher."""
    if not await repository.delete_subscription(session, principal.tenant_id, webhook_id):
        raise _missing(webhook_id)  # never there, or deleted by a concurrent request
    record(session, principal, "webhook.deleted", "webhook", str(webhook_id))
    await session.flush()


async def deliveries(
    session: AsyncSession,
    principal: Principal,
    webhook_id: uuid.UUID,
    *,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None,
) -> Sequence[WebhookDelivery]:
    """The delivery log of a subscription, newest first, keyset-paginated on (created_at, id)."""
    await get(session, principal, webhook_id)
    return await repository.page_deliveries(
        session, principal.tenant_id, webhook_id, limit=limit, after=after
    )


async def subscribers(
    session: AsyncSession, tenant_id: uuid.UUID, event: str
) -> list[WebhookSubscription]:
    """Active subscriptions of a tenant to one event type."""
    subs = await repository.active_subscriptions(session, tenant_id)
    return [s for s in subs if event in s.events]


async def enqueue(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    event: str,
    payloads: Sequence[dict[str, Any]],
    subs: Sequence[WebhookSubscription] | None = None,
    *,
    subject_ids: Sequence[uuid.UUID | None],
) -> int:
    """Add deliveries to the outbox in the caller's transaction: sent only if it commits.

    Each payload is about one person, ``subject_ids[i]`` (None: about no one): erasure finds
    the person's deliveries by it.
    """
    targets = list(subs) if subs is not None else await subscribers(session, tenant_id, event)
    now = utcnow()
    count = 0
    for sub in targets:
        for payload, subject_id in zip(payloads, subject_ids, strict=True):
            delivery = WebhookDelivery(
                tenant_id=tenant_id,
                subscription_id=sub.id,
                subject_id=subject_id,
                event=event,
                payload={
                    "id": str(uuid.uuid4()),
                    "event": event,
                    "occurred_at": now.isoformat(),
                    "data": payload,
                },
                next_attempt_at=now,
            )
            session.add(delivery)
            session.add(
                WebhookQueue(delivery_id=delivery.id, tenant_id=tenant_id, next_attempt_at=now)
            )
            count += 1
    return count


# What a delivery's payload says about an erased person: nothing but the fact.
ERASED_DATA = {"erased": True}


async def forget_subject(
    session: AsyncSession, tenant_id: uuid.UUID, subject_id: uuid.UUID
) -> tuple[int, int]:
    """Erasure, in the caller's transaction: cancel the person's pending deliveries and
    replace the data of every delivery about them; returns (cancelled, redacted)."""
    found = list(await repository.deliveries_about(session, tenant_id, subject_id))
    cancelled = [d.id for d in found if d.status == "pending"]
    for delivery in found:
        # The envelope (event id, type, time) stays so the log still lines up with what
        # receivers were sent; the data about the person goes.
        delivery.payload = {**delivery.payload, "data": ERASED_DATA}
        if delivery.status == "pending":
            delivery.status = "cancelled"
        session.add(delivery)
    if cancelled:
        await repository.dequeue(session, tenant_id, cancelled)
    await session.flush()
    return len(cancelled), len(found)
