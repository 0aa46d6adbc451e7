"""API models of webhook subscriptions and deliveries."""

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

EventType = Literal["assessment.created", "readiness.changed"]
EVENT_TYPES: tuple[EventType, ...] = ("assessment.created", "readiness.changed")


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=8, max_length=2000, pattern=r"^https?://[^\s\x00-\x1f]+$")
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
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    next_attempt_at: datetime
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    payload: dict[str, object]
