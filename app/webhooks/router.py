"""Admin routes for outbound webhooks."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Body, Path, Query, Request, Response

from app.auth.dependencies import Admin, SessionDep
from app.errors import error_responses
from app.models import WebhookSubscription
from app.webhooks import service
from app.webhooks.schemas import DeliveryRead, WebhookCreate, WebhookCreated, WebhookRead

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
    deliveries are retried with exponential backoff. Loopback, private, link-local and reserved
    targets are refused unless the operator allows them.
    """
    sub, secret = await service.subscribe(
        session,
        principal,
        body,
        allow_private=request.app.state.settings.webhooks_allow_private_targets,
    )
    await session.commit()
    return WebhookCreated(**_read(sub).model_dump(), secret=secret)


@router.get("", summary="List webhooks", responses=error_responses(401, 403, 503))
async def list_webhooks(principal: Admin, session: SessionDep) -> list[WebhookRead]:
    """Your tenant's subscriptions (never the secrets)."""
    return [_read(s) for s in await service.list_all(session, principal)]


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
    await session.commit()
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
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[DeliveryRead]:
    """Each event sent (or being retried) to this URL: status, attempts, last response, payload."""
    rows = await service.deliveries(session, principal, webhook_id, limit)
    return [DeliveryRead.model_validate(r, from_attributes=True) for r in rows]
