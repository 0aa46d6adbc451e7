"""Admin routes for outbound webhooks."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Body, Path, Request, Response

from app.auth.dependencies import Admin, SessionDep
from app.errors import error_responses
from app.models import WebhookSubscription
from app.pagination import PageCursor, PageSize, decode_moment_cursor, moment_cursor, next_page
from app.webhooks import service
from app.webhooks.schemas import (
    DeliveryPage,
    DeliveryRead,
    WebhookCreate,
    WebhookCreated,
    WebhookPage,
    WebhookRead,
)

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])
WebhookId = Annotated[uuid.UUID, Path()]


def _read(sub: WebhookSubscription) -> WebhookRead:
    return WebhookRead(
        id=sub.id,
        url=sub.url,
        events=list(sub.events),
        active=sub.active,
        created_at=sub.created_at,
    )


@router.post(
    "",
    status_code=201,
    summary="Subscribe a URL to events",
    responses=error_responses(401, 403, 413, 422, 503),
)
async def create_webhook(
    principal: Admin, session: SessionDep, request: Request, body: Annotated[WebhookCreate, Body()]
) -> WebhookCreated:
    """Deliver `assessment.created` and/or `readiness.changed` events to a URL.

    Each delivery is a JSON POST signed with `X-Ladder-Signature: t=<unix>,v1=<hex>` where
    `v1` is the HMAC-SHA256 of `"<t>.<body>"` with the secret returned here (once). Failed
    deliveries are retried with exponential backoff. Targets must resolve to public internet
    addresses (every IANA special-purpose range is refused) unless the operator allows others.
    """
    sub, secret = await service.subscribe(
        session,
        principal,
        body,
        allow_private=request.app.state.settings.webhooks_allow_private_targets,
    )
    return WebhookCreated(**_read(sub).model_dump(), secret=secret)


@router.get("", summary="List webhooks", responses=error_responses(401, 403, 422, 503))
async def list_webhooks(
    principal: Admin, session: SessionDep, limit: PageSize, cursor: PageCursor = None
) -> WebhookPage:
    """Your tenant's subscriptions, oldest first (never the secrets)."""
    rows = await service.list_all(
        session, principal, limit=limit + 1, after=decode_moment_cursor(cursor)
    )
    kept, next_cursor = next_page(rows, limit, lambda row: moment_cursor(row.created_at, row.id))
    return WebhookPage(items=[_read(sub) for sub in kept], next_cursor=next_cursor)


@router.get(
    "/{webhook_id}", summary="Get a webhook", responses=error_responses(401, 403, 404, 422, 503)
)
async def get_webhook(webhook_id: WebhookId, principal: Admin, session: SessionDep) -> WebhookRead:
    """One subscription."""
    return _read(await service.get(session, principal, webhook_id))


@router.delete(
    "/{webhook_id}",
    status_code=204,
    summary="Delete a webhook",
    responses=error_responses(401, 403, 404, 422, 503),
)
async def delete_webhook(webhook_id: WebhookId, principal: Admin, session: SessionDep) -> Response:
    """Stop deliveries and drop the subscription's delivery log."""
    await service.remove(session, principal, webhook_id)
    return Response(status_code=204)


@router.get(
    "/{webhook_id}/deliveries",
    summary="Delivery log of a webhook",
    responses=error_responses(401, 403, 404, 422, 503),
)
async def list_webhook_deliveries(
    webhook_id: WebhookId,
    principal: Admin,
    session: SessionDep,
    limit: PageSize,
    cursor: PageCursor = None,
) -> DeliveryPage:
    """Each event sent (or being retried) to this URL, newest first: status, attempts, last
    response, payload."""
    rows = await service.deliveries(
        session, principal, webhook_id, limit=limit + 1, after=decode_moment_cursor(cursor)
    )
    kept, next_cursor = next_page(rows, limit, lambda row: moment_cursor(row.created_at, row.id))
    return DeliveryPage(
        items=[DeliveryRead.model_validate(r, from_attributes=True) for r in kept],
        next_cursor=next_cursor,
    )
