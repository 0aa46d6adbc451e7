"""Pure competency scoring: plain values in, plain values out, no HTTP, database or I/O."""

from app.scoring.engine import (
    EARLIEST,
    aggregate,
    confidence,
    evaluate,
    evaluate_values,
    level_path,
    window_start,
)
from app.scoring.errors import (
    ScoringError,
    UnknownCompetency,
    UnknownLevel,
    UnknownTrack,
)
from app.scoring.gaps import analyze_gaps
from app.scoring.history import velocity_per_90_days
from app.scoring.model import (
    DEFAULT_ROLE_WEIGHTS,
    RATER_ROLES,
    Activity,
    Competency,
    Expectation,
    Framework,
    Level,
    Rating,
    ScoringSettings,
)
from app.scoring.plan import recommend
from app.scoring.results import (
    Aggregation,
    CompetencyValue,
    Contribution,
    Evaluation,
    GapAnalysis,
    GapItem,
    GapStatus,
    LevelReadiness,
    LevelWeight,
    Plan,
    PlanStep,
    StopReason,
)

__all__ = [
    "DEFAULT_ROLE_WEIGHTS",
    "EARLIEST",
    "RATER_ROLES",
    "Activity",
    "Aggregation",
    "Competency",
    "CompetencyValue",
    "Contribution",
    "Evaluation",
    "Expectation",
    "Framework",
    "GapAnalysis",
    "GapItem",
    "GapStatus",
    "Level",
    "LevelReadiness",
    "LevelWeight",
    "Plan",
    "PlanStep",
    "Rating",
    "ScoringError",
    "ScoringSettings",
    "StopReason",
    "UnknownCompetency",
    "UnknownLevel",
    "UnknownTrack",
    "aggregate",
    "analyze_gaps",
    "confidence",
    "evaluate",
    "evaluate_values",
    "level_path",
    "recommend",
    "velocity_per_90_days",
    "window_start",
]
