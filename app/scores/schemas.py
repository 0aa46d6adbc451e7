"""API models of scores, gaps, plans and history; built from the engine's plain results."""

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.assessments.schemas import FrameworkRef, RaterRole
from app.pagination import Page
from app.schemas import CLOSED_MAP, JSON_NUMBER, KeyStr, Timestamp
from app.subjects.schemas import Ref

# A JSON number, never a string or a boolean coerced into one.
Proficiency = Annotated[float, Field(ge=0, le=100, allow_inf_nan=False), JSON_NUMBER]


class LevelRef(BaseModel):
    key: str
    name: str
    rank: int
    track: str | None


class SettingsRead(BaseModel):
    readiness_threshold: float
    gap_tolerance: float
    gap_tolerance_mode: Literal["points", "steps", "fraction"] = Field(
        description="The framework's unit of gap_tolerance: points, scale steps, or a fraction "
        "of each requirement."
    )
    window_days: int
    role_weights: dict[str, float] = Field(
        description="The weights used: the defaults merged with the framework's and the request's."
    )
    rater_adjustment: Literal["none", "preview", "apply"] = Field(
        default="none",
        description="The framework's use of recorded rater effects: none, preview (the fair "
        "block beside the score) or apply (the adjusted score is the score).",
    )


class SettingsOverride(BaseModel):
    """Per-request overrides of the framework's scoring settings."""

    model_config = ConfigDict(extra="forbid")

    readiness_threshold: float | None = Field(default=None, gt=0, le=1)
    gap_tolerance: float | None = Field(default=None, ge=0, le=100)
    window_days: int | None = Field(default=None, ge=1, le=3650)
    role_weights: (
        dict[
            Literal["self", "manager", "peer", "direct_report", "external"],
            Annotated[float, Field(ge=0, le=100)],
        ]
        | None
    ) = None


class ContributionRead(BaseModel):
    rater_ref: str
    role: str
    proficiency: float
    weight: float
    assessed_at: datetime


class CompetencyScore(BaseModel):
    key: str
    name: str
    area: str
    value: float | None = Field(description="Aggregated proficiency a_c; null when unrated.")
    raters: int
    spread: float = Field(description="Weighted standard deviation of the raters' values.")
    calibrated: bool
    self_vs_others: float | None
    blind_spot: bool
    hidden_strength: bool


class LevelWeightRead(BaseModel):
    competency: str
    area: str
    weight: float = Field(description="w_L(c) before normalising by the level's total weight.")
    required: int
    actual: float | None
    attainment: float = Field(description="min(1, actual / required); unrated counts as 0.")
    critical: bool


class LevelScore(BaseModel):
    level: str
    name: str
    rank: int
    track: str | None
    readiness: float
    coverage: float
    meets: bool
    reasons: list[str] = Field(description="Why the level is not met; empty when it is.")
    critical_unmet: list[str]
    below_tolerance: list[str]


class LevelExplanation(BaseModel):
    level: str
    weight_total: float
    weights: list[LevelWeightRead]
    formula: str


class MapEntryNote(BaseModel):
    # "from" however the response is written (the score memo renders without FastAPI).
    model_config = ConfigDict(serialize_by_alias=True)

    kind: Literal["rename", "merge", "split", "retire"]
    from_: list[str] = Field(serialization_alias="from")
    to: list[str]
    weights: dict[str, float] = Field(
        description="Merge: weight per source; split: factor per target (default 1)."
    )


class CompetencyMapNote(BaseModel):
    """A version's competency map, through which ratings of older versions were carried."""

    version: int = Field(description="The version the map leads into (from the one before).")
    entries: list[MapEntryNote]


class AdjustedRatingRead(BaseModel):
    competency: str
    rater_ref: str
    role: str
    assessed_at: datetime
    rated: float = Field(description="The proficiency as rated.")
    effect: float | None = Field(
        description="The rater's recorded effect, subtracted; null when not adjusted."
    )
    value: float = Field(
        description="rated − effect, clamped to the scale (rated if not adjusted)."
    )
    clamped: bool = Field(description="rated − effect lay outside the scale and was clamped.")
    reason: Literal[
        "adjusted",
        "self",
        "calibrated",
        "not_in_estimate",
        "insufficient_data",
        "not_comparable",
        "outside_group",
    ] = Field(
        description="adjusted, or why not: self ratings are a facet of their own, calibrated "
        "ratings are decisions, the rater is not in the estimate, has too little evidence, "
        "shares no person with another rater, or belongs to another connected group than the "
        "person's (effects of different groups are not comparable)."
    )


class RaterAdjustmentNote(BaseModel):
    """How recorded rater effects entered this score (frameworks with rater_adjustment)."""

    mode: Literal["preview", "apply"]
    estimate_id: str | None = Field(description="The estimate used; null: none recorded.")
    estimate_recorded_at: datetime | None
    estimate_as_of: datetime | None = Field(description="End of the window the estimate fit.")
    group: int | None = Field(
        description="The person's connected group: that of most of their adjustable ratings."
    )
    note: str
    ratings: list[AdjustedRatingRead] = Field(
        description="Every rating of the person, as rated and as adjusted."
    )


class FairScore(BaseModel):
    """The score with the recorded rater effects subtracted (rater_adjustment preview)."""

    attained_level: LevelRef | None
    next_level: LevelRef | None
    level_index: float
    readiness_next: float | None
    values: dict[str, float | None] = Field(description="a_c by competency, adjusted.")


class Explanation(BaseModel):
    """The inputs that produced every number, so a person can redo the arithmetic."""

    settings: SettingsRead
    window_start: datetime | None = Field(
        description="Ratings count if window_start < assessed_at ≤ as_of."
    )
    as_of: datetime | None
    path: list[str] = Field(
        description="Levels of the subject's track in rank order (trunk included)."
    )
    distinct_raters: int
    ignored_competencies: list[str] = Field(
        description="Rated competencies this framework version does not define (ignored)."
    )
    overrides: dict[str, float] = Field(description="What-if values that replaced aggregated ones.")
    contributions: dict[str, list[ContributionRead]] = Field(
        description="Per competency: each rater's latest rating and the weight it carried."
    )
    levels: list[LevelExplanation]
    level_index_formula: str
    confidence_formula: str
    competency_maps: list[CompetencyMapNote] = Field(
        default_factory=list,
        description="Ratings given against older versions reach this one through these maps, "
        "oldest first: per assessment, each new competency gets Σ weight·factor·rating / "
        "Σ weight over the map's sources it rated.",
    )
    rater_adjustment: RaterAdjustmentNote | None = Field(
        default=None,
        description="Frameworks with rater_adjustment preview or apply: the estimate used and "
        "each rating's effect subtracted.",
    )


class ScoreRead(BaseModel):
    subject_ref: str | None
    framework: FrameworkRef
    track: str | None
    as_of: datetime | None
    attained_level: LevelRef | None
    next_level: LevelRef | None
    level_index: float = Field(
        description="rank(attained) + readiness for the next level (capped at 0.99)."
    )
    readiness_next: float | None
    coverage: float
    confidence: float
    levels: list[LevelScore]
    competencies: list[CompetencyScore]
    fair: FairScore | None = Field(
        default=None,
        description="rater_adjustment preview with an estimate recorded: the score with the "
        "raters' effects subtracted, beside this one.",
    )
    explanation: Explanation


class GapItemRead(BaseModel):
    competency: str
    name: str
    area: str
    required: int
    actual: float | None
    gap_points: float
    readiness_points_lost: float = Field(description="d_c; all items add up to 1 − readiness.")
    critical: bool
    status: Literal["met", "gap", "critical_gap", "exceeds"]
    indicators_not_shown: list[str]
    uncertain: bool = Field(description="Two or more raters disagree by a point or more.")
    raters: int
    spread: float


class FairGaps(BaseModel):
    """Readiness toward the target with the recorded rater effects subtracted (preview)."""

    readiness: float | None
    meets: bool | None
    gap_count: int
    critical_gap_count: int


class GapsRead(BaseModel):
    subject_ref: str | None
    framework: FrameworkRef
    target_level: LevelRef | None
    readiness: float | None
    meets: bool | None
    reasons: list[str]
    gap_count: int
    critical_gap_count: int
    items: list[GapItemRead]
    strengths: list[str]
    blind_spots: list[str]
    hidden_strengths: list[str]
    fair: FairGaps | None = Field(
        default=None,
        description="rater_adjustment preview with an estimate recorded: the same toward the "
        "target with the raters' effects subtracted.",
    )


class PlanStepRead(BaseModel):
    activity: str
    title: str
    kind: str
    develops: dict[str, tuple[float, float]] = Field(description="Competency → [before, after].")
    effort_hours: float
    cumulative_hours: float
    readiness_before: float
    readiness_after: float
    meets_after: bool
    url: str | None
    iri: str | None = Field(
        default=None, description="The activity's xAPI id, as a learning platform names it."
    )


class PlanRead(BaseModel):
    subject_ref: str | None
    framework: FrameworkRef
    target_level: LevelRef | None
    readiness_now: float | None
    meets_now: bool | None
    steps: list[PlanStepRead]
    projected_readiness: float | None
    target_met: bool | None
    total_hours: float
    stop_reason: Literal["already_met", "target_met", "budget", "max_steps", "no_helpful_activity"]
    message: str
    excluded_activities: list[str] = Field(
        description="Completed activities not recommended again."
    )
    fair: FairGaps | None = Field(
        default=None,
        description="rater_adjustment preview with an estimate recorded: where the subject "
        "stands toward the target with the raters' effects subtracted (the plan is as rated).",
    )


class EvaluationRead(BaseModel):
    """Score, gaps and plan together."""

    score: ScoreRead
    gaps: GapsRead
    plan: PlanRead


class HistoryPoint(BaseModel):
    as_of: datetime
    attained_level: LevelRef | None
    next_level: LevelRef | None
    level_index: float
    readiness_next: float | None
    confidence: float
    fair_level_index: float | None = Field(
        default=None,
        description="rater_adjustment preview with an estimate recorded: the level index with "
        "the latest estimate's effects subtracted.",
    )


class HistoryRead(BaseModel):
    subject_ref: str
    framework: FrameworkRef
    track: str | None
    points: list[HistoryPoint]
    velocity_per_90_days: float | None = Field(
        description="Least-squares slope of the level index per 90 days; null with < 2 dates."
    )


class WhatIfRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    changes: dict[KeyStr, Proficiency] = Field(
        max_length=300,
        description="Competency → hypothetical proficiency replacing the aggregated value.",
        json_schema_extra=CLOSED_MAP,
    )
    framework: FrameworkRef | None = None
    as_of: Timestamp | None = None
    track: KeyStr | None = None
    target_level: KeyStr | None = None
    budget_hours: Annotated[float, Field(ge=0, le=100_000), JSON_NUMBER] | None = None
    max_steps: Annotated[int, Field(ge=0, le=100), JSON_NUMBER] | None = None
    settings: SettingsOverride | None = None


class EvaluateRating(BaseModel):
    """One rater's rating of one competency, sent to the stateless evaluation."""

    model_config = ConfigDict(extra="forbid")

    competency: KeyStr
    proficiency: Proficiency
    rater_ref: Ref = "anonymous"
    rater_role: RaterRole
    assessed_at: Timestamp | None = Field(default=None, description="Default: as_of.")


class EvaluateRequest(BaseModel):
    """Everything needed to score without storing anything."""

    model_config = ConfigDict(extra="forbid")

    framework: FrameworkRef
    ratings: list[EvaluateRating] = Field(max_length=5000)
    as_of: Timestamp | None = None
    track: KeyStr | None = None
    target_level: KeyStr | None = None
    budget_hours: Annotated[float, Field(ge=0, le=100_000), JSON_NUMBER] | None = None
    max_steps: Annotated[int, Field(ge=0, le=100), JSON_NUMBER] | None = None
    completed_activities: list[KeyStr] = Field(default_factory=list, max_length=1000)
    changes: dict[KeyStr, Proficiency] = Field(
        default_factory=dict, max_length=300, json_schema_extra=CLOSED_MAP
    )
    settings: SettingsOverride | None = None


class CompletedActivityCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    activity: KeyStr
    completed_at: Timestamp


class CompletedActivityRead(BaseModel):
    activity: str
    completed_at: datetime


class CompletedActivityPage(Page[CompletedActivityRead]):
    """One page of a subject's completed activities."""
