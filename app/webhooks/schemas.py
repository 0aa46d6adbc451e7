"""API models of webhook subscriptions and deliveries."""

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.pagination import Page

EventType = Literal[
    "assessment.created", "readiness.changed", "framework.published", "calibration.closed"
]
EVENT_TYPES: tuple[EventType, ...] = (
    "assessment.created",
    "readiness.changed",
    "framework.published",
    "calibration.closed",
)

_PORT = "(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4})"
# http(s), a host name or IPv4 address (at most 253 characters, as in DNS), an optional port,
# then printable ASCII (RFC 3986). Anything else, e.g. "http://[" or a port of 99999, would
# only fail later when the URL is split. Explicit classes read the same in JSON Schema's regex
# dialect as in Python's (their \s differ on U+0085).
URL_PATTERN = rf"^https?://[A-Za-z0-9.-]{{1,253}}(:{_PORT})?([/?#][\x21-\x7e]*)?$"


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=8, max_length=2000, pattern=URL_PATTERN)
    events: list[EventType] = Field(min_length=1, max_length=len(EVENT_TYPES))


class WebhookRead(BaseModel):
    id: uuid.UUID
    url: str
    events: list[str]
    active: bool
    created_at: datetime


class WebhookCreated(WebhookRead):
    secret: str = Field(description="Signing secret for X-Ladder-Signature. Shown only now.")


class DeliveryRead(BaseModel):
    id: uuid.UUID
    event: str
    status: Literal["pending", "delivered", "failed", "cancelled"]
    attempts: int
    next_attempt_at: datetime
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    payload: dict[str, object]


class WebhookPage(Page[WebhookRead]):
    """One page of webhook subscriptions."""


class DeliveryPage(Page[DeliveryRead]):
    """One page of a webhook's delivery log."""
