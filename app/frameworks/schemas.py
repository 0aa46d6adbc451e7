"""API models of the frameworks resource (the file format itself lives in document.py)."""

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.cohorts.schemas import MAX_COHORT_SUBJECTS, CohortFilter
from app.frameworks.diff import Op, Section
from app.frameworks.document import FrameworkDocument, Key, Name
from app.pagination import Page
from app.schemas import JSON_NUMBER, Timestamp
from app.scores.schemas import LevelRef
from app.subjects.schemas import Ref

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


class FrameworkChange(BaseModel):
    """One difference between two versions, with its before and after."""

    section: Section
    op: Op
    key: str | int | None = Field(
        description="The item: a key (a scale point by its value; for expectations the "
        "competency, for area_emphasis the area); null for framework and settings fields."
    )
    level: str | None = Field(description="The level of an expectation or an area's emphasis.")
    field: str | None = Field(description="The changed field of a `changed` entry.")
    before: Any = Field(description="The old value (null when added).")
    after: Any = Field(description="The new value (null when removed).")


class ChangeCounts(BaseModel):
    added: int
    removed: int
    changed: int


class MapEntryRead(BaseModel):
    kind: Literal["rename", "merge", "split", "retire"]
    from_: list[str] = Field(alias="from", serialization_alias="from")
    to: list[str]
    weights: dict[str, float]

    model_config = ConfigDict(populate_by_name=True)


class FrameworkDiff(BaseModel):
    """What changed from one version of a framework to another (drafts included)."""

    key: str
    from_version: int
    to_version: int
    from_status: VersionStatus
    to_status: VersionStatus
    counts: ChangeCounts
    changes: list[FrameworkChange]
    competency_map: list[MapEntryRead] = Field(
        description="The `to` version's map from the version before it, when `to` follows "
        "`from` directly; ratings of `from` reach `to` through it."
    )
    release_notes: str | None = Field(description="The `to` version's release notes.")
    summary: str = Field(description="The changes in a few lines of Markdown.")


class ImpactRequest(BaseModel):
    """Whose scores to compare: the whole tenant, a filter, or a list."""

    model_config = ConfigDict(extra="forbid")

    subject_refs: Annotated[list[Ref], Field(max_length=MAX_COHORT_SUBJECTS)] | None = None
    filter: CohortFilter | None = None
    as_of: Timestamp | None = None
    top_competencies: Annotated[int, Field(ge=1, le=50), JSON_NUMBER] = Field(
        default=10, description="How many of the competencies that change most to list."
    )


class ImpactMover(BaseModel):
    """A person whose attained level changes if the version is published."""

    subject_ref: str
    display_name: str | None
    track: str | None
    direction: Literal["up", "down"]
    level_before: LevelRef | None
    level_after: LevelRef | None
    level_index_before: float
    level_index_after: float


class LevelReadinessChange(BaseModel):
    """Readiness for one level (present in both versions), after minus before, over the people."""

    level: str
    people: int
    mean_change: float
    min_change: float
    max_change: float
    raised: int = Field(description="People whose readiness for the level rose.")
    lowered: int = Field(description="People whose readiness for the level fell.")


class CompetencyImpact(BaseModel):
    """How much a competency moves readiness: per person, the absolute change of the
    readiness points it costs at their attained and next level (as before), then the mean."""

    competency: str
    in_before: bool
    in_after: bool
    mean_abs_readiness_change: float
    people_affected: int


class ImpactSummary(BaseModel):
    subjects: int
    moved_up: int
    moved_down: int
    unchanged: int
    level_counts_before: dict[str, int]
    level_counts_after: dict[str, int]
    readiness_changes: list[LevelReadinessChange]
    ratings_no_longer_count: int = Field(
        description="People with a rating that counted before and counts for nothing under the "
        "new version (its competency removed or retired, not mapped)."
    )
    ratings_no_longer_count_refs: list[str] = Field(description="The first 100 of them.")
    top_competencies: list[CompetencyImpact]


class ImpactResponse(BaseModel):
    """What publishing a version would do to the people's scores; nothing is stored."""

    key: str
    before_version: int
    after_version: int
    as_of: datetime
    unknown_refs: list[str]
    skipped: list[str] = Field(description="People on a track one of the versions does not have.")
    summary: ImpactSummary
    movers: list[ImpactMover] = Field(description="One page of the people who move, by ref.")
    next_cursor: str | None
