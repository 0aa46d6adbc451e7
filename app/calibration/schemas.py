"""API models of calibration: rater effects, their evidence, and fair averages."""

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.assessments.schemas import FrameworkRef, RaterRole
from app.cohorts.schemas import MAX_COHORT_SUBJECTS, CohortFilter, SkippedSubject
from app.schemas import JSON_NUMBER, Timestamp
from app.scores.schemas import LevelRef
from app.subjects.schemas import Ref


class Thresholds(BaseModel):
    """When a rater has enough evidence, and when a flag is raised (defaults documented)."""

    model_config = ConfigDict(extra="forbid")

    min_ratings: Annotated[int, Field(ge=1, le=100_000), JSON_NUMBER] = Field(
        default=10, description="Ratings in cells another rater also rated."
    )
    min_subjects: Annotated[int, Field(ge=1, le=100_000), JSON_NUMBER] = Field(
        default=3, description="Distinct people behind those ratings."
    )
    effect_points: Annotated[float, Field(ge=0, le=100), JSON_NUMBER] = Field(
        default=0.5, description="Lenient/severe when effect ∓ z·se is beyond ± this."
    )
    z: Annotated[float, Field(ge=0, le=10), JSON_NUMBER] = 1.96
    central_ratio: Annotated[float, Field(ge=0, le=10), JSON_NUMBER] = 0.6
    halo_ratio: Annotated[float, Field(ge=0, le=10), JSON_NUMBER] = 0.5
    misfit_low: Annotated[float, Field(ge=0, le=100), JSON_NUMBER] = 0.5
    misfit_high: Annotated[float, Field(ge=0, le=100), JSON_NUMBER] = 1.5
    misfit_min_ratings: Annotated[int, Field(ge=1, le=100_000), JSON_NUMBER] = Field(
        default=30, description="Shared ratings before a mean square can flag misfit."
    )
    self_inflation_points: Annotated[float, Field(ge=0, le=100), JSON_NUMBER] = 1.0
    self_min_competencies: Annotated[int, Field(ge=1, le=1000), JSON_NUMBER] = 3


class RaterEffectsRequest(BaseModel):
    """A cohort by filter or by list (neither: the whole tenant), one framework version, one
    window of ratings."""

    model_config = ConfigDict(extra="forbid")

    framework: FrameworkRef
    subject_refs: Annotated[list[Ref], Field(max_length=MAX_COHORT_SUBJECTS)] | None = Field(
        default=None,
        description=f"At most {MAX_COHORT_SUBJECTS} refs; unknown ones are listed back.",
    )
    filter: CohortFilter | None = None
    as_of: Timestamp | None = Field(default=None, description="End of the window; now.")
    window_days: Annotated[int, Field(ge=1, le=36_500), JSON_NUMBER] | None = Field(
        default=None, description="Default: the framework's window."
    )
    thresholds: Thresholds = Field(default_factory=Thresholds)
    include_fair_averages: bool = Field(
        default=True, description="Per person the values and level index with effects removed."
    )
    record: bool = Field(
        default=False,
        description="Also store the raters' effects as this framework version's latest estimate "
        "(admin scope): scores of a framework with rater_adjustment preview or apply use it.",
    )


class Flag(BaseModel):
    kind: Literal["lenient", "severe", "central_tendency", "halo", "misfit"]
    evidence: dict[str, float] = Field(description="The numbers and thresholds behind it.")


class RaterEffect(BaseModel):
    rater_ref: str
    role: RaterRole
    group: int | None = Field(description="Connected group; null: shares no person with anyone.")
    status: Literal["ok", "insufficient_data", "not_comparable"]
    effect: float | None = Field(description="Points above the group's average rater.")
    standard_error: float | None
    ratings: int = Field(description="Latest ratings in the window.")
    shared_ratings: int = Field(description="Of them, on a person and competency others rated.")
    subjects: int = Field(description="Distinct people behind the shared ratings.")
    mean_square: float | None = Field(description="Residual mean square (1 fits the model).")
    between_ratio: float | None = Field(
        description="Spread of their person means over the others' on the same people."
    )
    within_ratio: float | None = Field(
        description="Spread across one person's competencies over the others'."
    )
    flags: list[Flag]
    distribution: list[int] = Field(description="Latest ratings per scale value.")


class Group(BaseModel):
    group: int
    raters: int


class Agreement(BaseModel):
    competency: str
    alpha: float | None = Field(description="Krippendorff's alpha, interval level.")
    alpha_adjusted: float | None = Field(description="The same with rater effects removed.")
    subjects: int = Field(description="People with two or more raters on it.")
    ratings: int


class SelfRatingRow(BaseModel):
    subject_ref: str
    mean_difference: float = Field(description="Self minus the others' fair consensus.")
    competencies: int
    inflated: bool


class SelfFacet(BaseModel):
    effect: float | None = Field(description="Mean self minus consensus over every pair.")
    standard_error: float | None
    people: list[SelfRatingRow]


class Fit(BaseModel):
    sigma: float | None = Field(description="Residual standard deviation σ̂.")
    degrees_of_freedom: int
    iterations: int
    ratings: int = Field(description="Latest non-self ratings used.")
    shared_ratings: int


class FairPerson(BaseModel):
    subject_ref: str
    values: list[float | None] = Field(description="a_c as scored, by competency.")
    fair_values: list[float | None] = Field(description="a_c with rater effects removed.")
    level_index: float
    fair_level_index: float
    attained_level: LevelRef | None
    fair_attained_level: LevelRef | None


class FairAverages(BaseModel):
    competencies: list[str]
    people: list[FairPerson]


class RecordedEstimate(BaseModel):
    id: str
    recorded_at: datetime
    raters: int = Field(description="Raters stored (all statuses; effects of ok ones only).")


class RaterEffectsResponse(BaseModel):
    framework: FrameworkRef
    as_of: datetime
    window_days: int
    unknown_refs: list[str]
    skipped: list[SkippedSubject]
    thresholds: Thresholds
    fit: Fit
    groups: list[Group]
    raters: list[RaterEffect]
    scale: list[float]
    cohort_distribution: list[int]
    agreement: list[Agreement]
    self_ratings: SelfFacet
    fair_averages: FairAverages | None
    estimate: RecordedEstimate | None = Field(
        default=None, description="The estimate stored when the request asked to record it."
    )
