"""API models of subjects (the people being assessed)."""

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.pagination import Page
from app.schemas import CLOSED_MAP, KeyStr

# The characters of a ref; erasure also uses them to find a ref's bounds inside text.
REF_CHARACTERS = r"A-Za-z0-9._:@\-"
# A subject's or rater's ref, wherever one is taken (bodies, paths, query filters).
REF_PATTERN = rf"^[A-Za-z0-9][{REF_CHARACTERS}]*$"
REF_MAX_LENGTH = 200
Ref = Annotated[
    str, StringConstraints(min_length=1, max_length=REF_MAX_LENGTH, pattern=REF_PATTERN)
]
# An attribute's name; a cohort filter is the name, ":" and the value.
ATTRIBUTE_NAME = r"[A-Za-z0-9][A-Za-z0-9_.\-]*"
AttrKey = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=rf"^{ATTRIBUTE_NAME}$")
]
AttrValue = Annotated[str, StringConstraints(max_length=200, pattern=r"^[^\x00-\x1f]*$")]
DisplayName = Annotated[
    str, StringConstraints(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f]*$")
]
Attributes = Annotated[
    dict[AttrKey, AttrValue],
    Field(
        max_length=20,
        description="Free attributes for cohort filters: team, department, location...",
        json_schema_extra=CLOSED_MAP,
    ),
]


class SubjectCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    external_ref: Ref = Field(
        description="Your system's id for this person; unique in your tenant."
    )
    display_name: DisplayName | None = None
    track: KeyStr | None = Field(default=None, description="Track key, e.g. 'ic' or 'management'.")
    current_level: KeyStr | None = Field(default=None, description="Official level key, e.g. 'pm'.")
    attributes: Attributes = Field(default_factory=dict)


class SubjectUpdate(BaseModel):
    """Partial update: only the fields sent change; send null to clear one (`{}` clears the
    attributes, which are always a map)."""

    model_config = ConfigDict(extra="forbid")

    display_name: DisplayName | None = None
    track: KeyStr | None = None
    current_level: KeyStr | None = None
    # Not nullable: a nullable map becomes a second class in generated clients.
    attributes: Attributes = Field(default_factory=dict)


class SubjectRead(BaseModel):
    id: uuid.UUID
    external_ref: str
    display_name: str | None
    track: str | None
    current_level: str | None
    attributes: dict[str, str]
    created_at: datetime
    updated_at: datetime
    etag: str


class SubjectPage(Page[SubjectRead]):
    """One page of subjects."""
