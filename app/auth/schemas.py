"""API models of API keys."""

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from app.auth.keys import Scope
from app.pagination import Page
from app.schemas import NUL_FREE, Timestamp


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, pattern=NUL_FREE, examples=["hris-sync"])
    scopes: list[Scope] = Field(
        min_length=1, max_length=8, examples=[["subjects:read", "assessments:write"]]
    )
    expires_at: Timestamp | None = Field(
        default=None, description="Optional expiry (timezone-aware)."
    )


class ApiKeyRead(BaseModel):
    id: uuid.UUID
    name: str
    scopes: list[str]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyRead):
    key: str = Field(description="The full key. Shown only now: store it safely.")


class ApiKeyPage(Page[ApiKeyRead]):
    """One page of API keys."""
