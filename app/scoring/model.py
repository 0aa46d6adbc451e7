"""Plain value types the scoring engine reads: a compiled framework and ratings.

Nothing here knows about HTTP, the database or pydantic; callers build these from whatever
they store, and the engine answers with the plain results in ``results.py``.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Literal

# How ``gap_tolerance`` reads: absolute points, steps of the scale, or a fraction of each
# requirement.
ToleranceMode = Literal["points", "steps", "fraction"]
# Whether scores use the recorded rater effects: not at all, beside the plain score, or instead.
RaterAdjustment = Literal["none", "preview", "apply"]

RATER_ROLES = ("self", "manager", "peer", "direct_report", "external", "calibrated")

DEFAULT_ROLE_WEIGHTS: Mapping[str, float] = MappingProxyType(
    {"manager": 3.0, "peer": 2.0, "direct_report": 2.0, "external": 2.0, "self": 1.0}
)


@dataclass(frozen=True, slots=True)
class ScoringSettings:
    """Thresholds a framework (or a single request) may override."""

    readiness_threshold: float = 0.85
    gap_tolerance: float = 1.0
    window_days: int = 365
    role_weights: Mapping[str, float] = field(default_factory=lambda: DEFAULT_ROLE_WEIGHTS)
    gap_tolerance_mode: ToleranceMode = "points"
    rater_adjustment: RaterAdjustment = "none"


@dataclass(frozen=True, slots=True)
class Level:
    key: str
    name: str
    rank: int
    track: str | None  # None: the shared trunk


@dataclass(frozen=True, slots=True)
class Competency:
    key: str
    name: str
    area: str
    weight: float


@dataclass(frozen=True, slots=True)
class Expectation:
    competency: str
    level: str
    required: int
    critical: bool
    indicators: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Activity:
    key: str
    title: str
    kind: str
    gains: Mapping[str, int]  # competency key -> points developed
    effort_hours: float
    band_min_rank: int  # suitable when the target level's rank lies in [min, max]
    band_max_rank: int
    url: str | None = None
    iri: str | None = None  # its identity in a learning catalogue (xAPI activity id)


@dataclass(frozen=True, slots=True)
class MapEntry:
    """One line of a competency map, as plain values: sources, targets (empty: retired), and
    the merge weights (by source) or split factors (by target) it names."""

    sources: tuple[str, ...]
    targets: tuple[str, ...]
    weights: Mapping[str, float]

    @property
    def kind(self) -> str:
        """rename, merge, split or retire."""
        if not self.targets:
            return "retire"
        if len(self.sources) > 1:
            return "merge"
        return "split" if len(self.targets) > 1 else "rename"


@dataclass(frozen=True, slots=True)
class CarriedMap:
    """The competency map of one version (from the version before it)."""

    version: int
    entries: tuple[MapEntry, ...]


@dataclass(frozen=True, slots=True)
class Framework:
    """One immutable framework version, compiled for scoring."""

    key: str
    version: int
    scale_min: int
    scale_max: int
    levels: tuple[Level, ...]
    competencies: tuple[Competency, ...]
    expectations: tuple[Expectation, ...]
    # area key -> level key -> share of that level's expectations the area carries
    area_emphasis: Mapping[str, Mapping[str, float]]
    activities: tuple[Activity, ...] = ()
    settings: ScoringSettings = field(default_factory=ScoringSettings)
    # Points between neighbouring scale values (their mean when uneven); "steps" tolerance unit.
    scale_step: float = 1.0
    # Gap items also list the unmet indicators of lower levels on the target's path.
    cumulative_indicators: bool = False
    # The maps older ratings were carried through to reach this version (for the explanation).
    carried_maps: tuple[CarriedMap, ...] = ()


@dataclass(frozen=True, slots=True)
class Rating:
    """One rater's proficiency for one competency at one moment."""

    competency: str
    proficiency: float
    rater_ref: str
    role: str
    assessed_at: datetime
    # Tie-break between two ratings of one rater with the same timestamp: higher is later.
    # Stored assessments pass their creation order; stateless input passes 0 for every rating,
    # so an exact tie keeps the higher proficiency whatever the order of the input.
    sequence: int = 0
