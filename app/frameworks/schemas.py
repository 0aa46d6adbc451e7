"""API models of the frameworks resource (the file format itself lives in document.py)."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.frameworks.document import FrameworkDocument, Key, Name
from app.pagination import Page

VersionStatus = Literal["draft", "published", "archived"]


class FrameworkSummary(BaseModel):
    key: str
    name: str
    description: str
    builtin: bool = Field(description="Built-in templates are read-only; clone one to adapt it.")
    latest_published_version: int | None
    draft_version: int | None
    versions: int
    cloned_from: str | None = None


class VersionSummary(BaseModel):
    version: int
    status: VersionStatus
    created_at: datetime
    updated_at: datetime
    published_at: datetime | None


class FrameworkVersionRead(BaseModel):
    key: str
    version: int
    status: VersionStatus
    builtin: bool
    created_at: datetime
    updated_at: datetime
    published_at: datetime | None
    etag: str = Field(description="Send back as If-Match to update this draft.")
    document: FrameworkDocument
    advice: list[str] = Field(
        default_factory=list,
        description="On import: why a setting left at its default may not suit this framework "
        "(e.g. the gap tolerance on its scale). Advice only; nothing was refused.",
    )


class CloneRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: Key = Field(description="Key of the new framework in your tenant.")
    name: Name | None = Field(default=None, description="Defaults to the source's name.")
    version: int | None = Field(
        default=None, ge=1, le=1_000_000, description="Source version; default latest published."
    )


class FrameworkPage(Page[FrameworkSummary]):
    """One page of frameworks, by key."""


class VersionPage(Page[VersionSummary]):
    """One page of a framework's versions, oldest first."""
