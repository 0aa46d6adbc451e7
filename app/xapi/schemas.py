"""API models of the learning-record admin routes (statements themselves are raw xAPI JSON)."""

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

HomePage = Annotated[
    str,
    Field(
        min_length=8,
        max_length=2000,
        pattern=r"^https?://[\x21-\x7e]+$",
        examples=["https://lms.example.com"],
    ),
]


class LearningRecordSettingsUpdate(BaseModel):
    """How statements' actors map to subjects."""

    model_config = ConfigDict(extra="forbid")

    account_home_pages: list[HomePage] = Field(
        max_length=20,
        description="An actor `account` with one of these homePages maps to the subject whose "
        "external_ref is the account's `name`.",
    )
    result_ratings: bool = Field(
        default=False,
        description="Opt-in: a statement's `result.score.scaled` about an activity a framework "
        "names becomes an `external` rating (rater `xapi:<statement id>`) of each competency "
        "the activity develops: min + scaled × (max − min) of the framework's scale, rounded "
        "to the nearest scale value; a negative score counts as 0. Voiding the statement "
        "removes it.",
    )


class LearningRecordSettingsRead(BaseModel):
    account_home_pages: list[str]
    result_ratings: bool


class MboxRegistration(BaseModel):
    """A person's xAPI mailbox; statements naming it as ``mbox`` or as its ``mbox_sha1sum``
    are about them."""

    model_config = ConfigDict(extra="forbid")

    mbox: str = Field(
        max_length=320,
        pattern=r"^mailto:[^@\x00-\x20\x7f-\x9f]+@[^@\x00-\x20\x7f-\x9f]+$",
        examples=["mailto:ada@example.com"],
        description="The mailto: IRI; stored only as its SHA-1 sum (xAPI's mbox_sha1sum).",
    )


class MboxesRead(BaseModel):
    subject_ref: str
    mbox_sha1sums: list[str] = Field(description="SHA-1 sums of the registered mailboxes.")


class UnmappedLine(BaseModel):
    reason: Literal["unknown_actor", "unknown_activity"]
    actor_kind: str | None = Field(description="mbox, mbox_sha1sum, openid or account.")
    actor_id: str | None = Field(
        description="The actor's identifier (an account as `<homePage>|<name>`); only for "
        "unknown actors."
    )
    activity_iri: str | None
    statements: int
    first_seen_at: datetime
    last_seen_at: datetime


class UnmappedReport(BaseModel):
    """Completion statements this tenant could not map, most recently seen first."""

    items: list[UnmappedLine]
    next_cursor: str | None = None
    limit: int = Field(description="Lines kept at most; the least recently seen go first.")
