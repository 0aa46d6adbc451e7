"""Plain, immutable results of the scoring engine: every number with the inputs behind it.

Mappings are plain dicts typed as read-only ``Mapping`` so ``dataclasses.asdict`` and any
serializer can walk them; the engine never mutates a result after building it.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from app.scoring.errors import UnknownLevel
from app.scoring.model import ScoringSettings

GapStatus = Literal["met", "gap", "critical_gap", "exceeds"]
StopReason = Literal["already_met", "target_met", "budget", "max_steps", "no_helpful_activity"]


@dataclass(frozen=True, slots=True)
class Contribution:
    """One rater's latest rating of one competency and the weight it carried."""

    rater_ref: str
    role: str
    proficiency: float
    # Role weight in the weighted mean; for calibrated ratings 1 for the one that sets the
    # value and 0 for the others.
    weight: float
    assessed_at: datetime


@dataclass(frozen=True, slots=True)
class CompetencyValue:
    """The aggregated value ``a_c`` of one competency and how much the raters agree."""

    key: str
    value: float | None  # None: unrated
    raters: int  # non-calibrated raters with a counted rating
    spread: float  # weighted population standard deviation of those raters
    calibrated: bool
    self_vs_others: float | None
    blind_spot: bool
    hidden_strength: bool
    contributions: tuple[Contribution, ...]


@dataclass(frozen=True, slots=True)
class Aggregation:
    """Per-competency values for every competency of the framework."""

    values: Mapping[str, CompetencyValue]
    ignored_competencies: tuple[str, ...]
    distinct_raters: int


@dataclass(frozen=True, slots=True)
class LevelWeight:
    """One competency's part in a level's readiness."""

    competency: str
    area: str
    weight: float  # w_L(c), before normalising by the level's total weight
    required: int
    actual: float | None
    attainment: float  # min(1, a / r), unrated counted as 0
    critical: bool


@dataclass(frozen=True, slots=True)
class LevelReadiness:
    """Readiness, coverage and the meets verdict for one level, with its reasons."""

    level: str
    name: str
    rank: int
    track: str | None
    readiness: float
    coverage: float
    meets: bool
    reasons: tuple[str, ...]  # why the level is not met; empty when it is
    weights: tuple[LevelWeight, ...]
    critical_unmet: tuple[str, ...]
    below_tolerance: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Evaluation:
    """Where a subject stands: every level's readiness, the attained level and the index."""

    framework_key: str
    framework_version: int
    track: str | None
    values: Mapping[str, float]  # a_c of rated competencies, what-if overrides applied
    aggregation: Aggregation | None  # None when scored from values directly
    levels: tuple[LevelReadiness, ...]  # every level of the framework, by (rank, key)
    path: tuple[str, ...]
    attained_level: str | None
    next_level: str | None
    level_index: float
    coverage: float
    confidence: float
    settings: ScoringSettings
    overrides: Mapping[str, float]

    def level(self, key: str) -> LevelReadiness:
        """Return the readiness of the level with this key."""
        for readiness in self.levels:
            if readiness.level == key:
                return readiness
        raise UnknownLevel(f"unknown level {key!r}")


@dataclass(frozen=True, slots=True)
class GapItem:
    """One expected competency of the target level and what it costs in readiness."""

    competency: str
    name: str
    area: str
    required: int
    actual: float | None
    gap_points: float
    readiness_points_lost: float  # d_c; the items' d_c add up to 1 - readiness
    critical: bool
    status: GapStatus
    indicators_not_shown: tuple[str, ...]
    uncertain: bool  # at least two raters who disagree by a point or more
    raters: int
    spread: float


@dataclass(frozen=True, slots=True)
class GapAnalysis:
    """What is missing for a target level; target None means the top of the path."""

    target_level: str | None
    target_name: str | None
    readiness: float | None
    meets: bool | None
    reasons: tuple[str, ...]
    gap_count: int
    critical_gap_count: int
    items: tuple[GapItem, ...]
    strengths: tuple[str, ...]
    blind_spots: tuple[str, ...]
    hidden_strengths: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PlanStep:
    """One recommended activity and its projected effect on the target level."""

    activity: str
    title: str
    kind: str
    develops: Mapping[str, tuple[float, float]]  # competency -> (before, after)
    effort_hours: float
    cumulative_hours: float
    readiness_before: float
    readiness_after: float
    meets_after: bool
    url: str | None


@dataclass(frozen=True, slots=True)
class Plan:
    """A greedy development plan toward a target level; target None means the top of the path."""

    target_level: str | None
    target_name: str | None
    readiness_now: float | None
    meets_now: bool | None
    steps: tuple[PlanStep, ...]
    projected_readiness: float | None
    target_met: bool | None
    total_hours: float
    stop_reason: StopReason
    message: str
    projected_values: Mapping[str, float]
