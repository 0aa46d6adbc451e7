"""API models of cohort evaluation."""

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.assessments.schemas import FrameworkRef
from app.schemas import JSON_NUMBER, KeyStr, Timestamp
from app.scores.schemas import LevelRef
from app.subjects.schemas import Attributes, Ref

MAX_COHORT_SUBJECTS = 100_000


class CohortFilter(BaseModel):
    """Which subjects: every condition given must hold."""

    model_config = ConfigDict(extra="forbid")

    track: KeyStr | None = None
    current_level: KeyStr | None = None
    attributes: Attributes = Field(default_factory=dict)


class CohortRequest(BaseModel):
    """A cohort by filter or by list (neither: the whole tenant), scored against one framework."""

    model_config = ConfigDict(extra="forbid")

    framework: FrameworkRef
    subject_refs: Annotated[list[Ref], Field(max_length=MAX_COHORT_SUBJECTS)] | None = Field(
        default=None,
        description=f"At most {MAX_COHORT_SUBJECTS} refs; unknown ones are listed back.",
    )
    filter: CohortFilter | None = None
    as_of: Timestamp | None = None
    target_level: KeyStr | None = Field(
        default=None, description="Default: each subject's next level."
    )
    top_gaps: Annotated[int, Field(ge=0, le=20), JSON_NUMBER] = Field(
        default=3, description="Gaps listed per person."
    )
    include_people: bool = True
    include_heatmap: bool = True


class PersonGap(BaseModel):
    competency: str
    readiness_points_lost: float


class CohortPerson(BaseModel):
    subject_ref: str
    display_name: str | None
    track: str | None
    current_level: str | None = Field(description="The subject's official level (its key).")
    attained_level: LevelRef | None
    next_level: LevelRef | None
    level_index: float
    target_level: LevelRef | None
    target_readiness: float | None
    coverage: float
    confidence: float
    top_gaps: list[PersonGap]


class Heatmap(BaseModel):
    """Actual minus required at each person's target level (null where nothing is required)."""

    competencies: list[str]
    subject_refs: list[str]
    values: list[list[float | None]]


class CohortGap(BaseModel):
    competency: str
    name: str
    mean_readiness_points_lost: float
    people_below_requirement: int


class CohortSummary(BaseModel):
    subjects: int
    rated_subjects: int
    mean_coverage: float
    mean_level_index: float
    level_distribution: dict[str, int] = Field(
        description="Attained level → people; 'none' for no level."
    )
    biggest_gaps: list[CohortGap]
    promotion_ready: list[str] = Field(description="Attained level ranks above the official level.")
    below_level: list[str] = Field(description="Attained level ranks below the official level.")


class SkippedSubject(BaseModel):
    subject_ref: str = Field(max_length=200)
    reason: str = Field(max_length=500, description="Why the person could not be scored.")


class CohortRaterAdjustment(BaseModel):
    mode: Literal["preview", "apply"]
    estimate_id: str | None = Field(description="null: none recorded, scored as rated.")
    estimate_recorded_at: datetime | None
    note: str


class CohortResponse(BaseModel):
    framework: FrameworkRef
    as_of: datetime
    target_level: LevelRef | None
    unknown_refs: list[str]
    skipped: list[SkippedSubject] = Field(
        default_factory=list,
        description="People who match but cannot be scored against this framework version "
        "(e.g. a track it does not have); everyone else is scored.",
    )
    summary: CohortSummary
    people: list[CohortPerson] | None
    heatmap: Heatmap | None
    rater_adjustment: CohortRaterAdjustment | None = Field(
        default=None,
        description="Frameworks with rater_adjustment: the estimate used. With apply every "
        "number above is scored from the adjusted ratings, exactly as each person's score is.",
    )
