"""Aggregation of ratings and the level verdicts: readiness, meets, attained level and index.

Every function is pure: plain values in, plain results out, no clock and no I/O.
"""

import math
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeAlias

from app.scoring.errors import ScoringError, UnknownCompetency, UnknownLevel, UnknownTrack
from app.scoring.model import (
    Competency,
    Expectation,
    Framework,
    Level,
    Rating,
    ScoringSettings,
)
from app.scoring.results import (
    Aggregation,
    CompetencyValue,
    Contribution,
    Evaluation,
    LevelReadiness,
    LevelWeight,
)

__all__ = [
    "EPSILON",
    "INDEX_CAP",
    "NOTHING_EXPECTED",
    "Requirement",
    "UnknownCompetency",
    "UnknownLevel",
    "UnknownTrack",
    "aggregate",
    "allowed_shortfall",
    "as_utc",
    "attainment",
    "confidence",
    "ensure_same_framework",
    "evaluate",
    "evaluate_values",
    "find_level",
    "format_number",
    "level_path",
    "level_requirements",
    "score_level",
]

# Comparisons against thresholds forgive float noise from weighted means and emphasis shares,
# so a value that is mathematically equal to its requirement always counts as meeting it.
EPSILON = 1e-9
# The fractional part of the level index stays below 1 so it never reads as the next rank.
INDEX_CAP = 0.99
CALIBRATED = "calibrated"
SELF = "self"
# Self-vs-others difference (in points) that flags a blind spot or a hidden strength.
PERCEPTION_GAP_POINTS = 1.0
# The first moment a date can name; windows reaching further back begin here.
EARLIEST = datetime.min.replace(tzinfo=UTC)

_RaterKey: TypeAlias = tuple[str, str]  # (role, rater_ref)
_Latest: TypeAlias = tuple[datetime, int, float]  # (assessed_at, sequence, proficiency)


@dataclass(frozen=True, slots=True)
class Requirement:
    """One expectation with required proficiency > 0 at a level, and its weight w_L(c)."""

    competency: Competency
    expectation: Expectation
    weight: float


def as_utc(moment: datetime) -> datetime:
    """Return the moment as an aware UTC datetime, reading a naive one as UTC."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def window_start(as_of: datetime, days: int) -> datetime:
    """The start of the window of ``days`` ending at ``as_of``, or the first moment of the year 1
    when it would begin before: nothing is dated earlier, so the window holds the same ratings."""
    try:
        return as_of - timedelta(days=days)
    except OverflowError:
        return EARLIEST


def format_number(value: float) -> str:
    """Format a number for a human sentence: at most two decimals, no trailing zeros."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _finite(value: float, what: str) -> float:
    if not math.isfinite(value):
        raise ScoringError(f"{what} must be a finite number, got {value!r}")
    return float(value)


def _clamp(framework: Framework, value: float, what: str) -> float:
    return min(float(framework.scale_max), max(float(framework.scale_min), _finite(value, what)))


def _settings(framework: Framework, settings: ScoringSettings | None) -> ScoringSettings:
    return framework.settings if settings is None else settings


def aggregate(
    framework: Framework,
    ratings: Iterable[Rating],
    *,
    as_of: datetime,
    settings: ScoringSettings | None = None,
) -> Aggregation:
    """Aggregate each rater's latest rating in the window into one value per competency."""
    effective = _settings(framework, settings)
    as_of = as_utc(as_of)
    begins = window_start(as_of, effective.window_days)
    known = {competency.key for competency in framework.competencies}
    ignored: set[str] = set()
    latest: dict[str, dict[_RaterKey, _Latest]] = {}
    for rating in ratings:
        if rating.role != CALIBRATED and effective.role_weights.get(rating.role, 0.0) <= 0:
            continue
        assessed_at = as_utc(rating.assessed_at)
        if not begins < assessed_at <= as_of:
            continue
        if rating.competency not in known:
            ignored.add(rating.competency)
            continue
        proficiency = _clamp(framework, rating.proficiency, "proficiency")
        # Proficiency breaks exact (assessed_at, sequence) ties so the answer never depends on
        # input order and a higher rating can never lower a value.
        candidate = (assessed_at, rating.sequence, proficiency)
        by_rater = latest.setdefault(rating.competency, {})
        rater = (rating.role, rating.rater_ref)
        current = by_rater.get(rater)
        if current is None or candidate > current:
            by_rater[rater] = candidate
    values = {
        competency.key: _competency_value(
            competency.key, latest.get(competency.key, {}), effective.role_weights
        )
        for competency in framework.competencies
    }
    raters = {rater for by_rater in latest.values() for rater in by_rater}
    return Aggregation(
        values=values, ignored_competencies=tuple(sorted(ignored)), distinct_raters=len(raters)
    )


def _weighted_mean(points: list[tuple[float, float]]) -> float | None:
    """Weighted mean of (weight, value) pairs, kept inside the values' range against rounding."""
    total = math.fsum(weight for weight, _ in points)
    if total <= 0:
        return None
    mean = math.fsum(weight * value for weight, value in points) / total
    values = [value for _, value in points]
    return min(max(values), max(min(values), mean))


def _competency_value(
    key: str, by_rater: Mapping[_RaterKey, _Latest], role_weights: Mapping[str, float]
) -> CompetencyValue:
    calibrated = [
        (at, sequence, proficiency, ref)
        for (role, ref), (at, sequence, proficiency) in by_rater.items()
        if role == CALIBRATED
    ]
    chosen = max(calibrated) if calibrated else None
    chosen_ref = chosen[3] if chosen is not None else None

    contributions: list[Contribution] = []
    points: list[tuple[float, float]] = []
    self_points: list[tuple[float, float]] = []
    other_points: list[tuple[float, float]] = []
    # Sorted so sums and the contribution list are identical whatever the input order.
    for (role, ref), (at, _, proficiency) in sorted(by_rater.items()):
        if role == CALIBRATED:
            weight = 1.0 if ref == chosen_ref else 0.0
        else:
            weight = role_weights[role]
            points.append((weight, proficiency))
            (self_points if role == SELF else other_points).append((weight, proficiency))
        contributions.append(Contribution(ref, role, proficiency, weight, at))

    mean = _weighted_mean(points)
    spread = 0.0
    if mean is not None and len(points) > 1:
        total = math.fsum(weight for weight, _ in points)
        variance = math.fsum(weight * (value - mean) ** 2 for weight, value in points) / total
        spread = math.sqrt(variance)

    self_mean = _weighted_mean(self_points)
    others_mean = _weighted_mean(other_points)
    self_vs_others = None
    blind_spot = hidden_strength = False
    if self_mean is not None and others_mean is not None:
        self_vs_others = self_mean - others_mean
        blind_spot = self_vs_others >= PERCEPTION_GAP_POINTS - EPSILON
        hidden_strength = self_vs_others <= -PERCEPTION_GAP_POINTS + EPSILON
    return CompetencyValue(
        key=key,
        value=chosen[2] if chosen is not None else mean,
        raters=len(points),
        spread=spread,
        calibrated=chosen is not None,
        self_vs_others=self_vs_others,
        blind_spot=blind_spot,
        hidden_strength=hidden_strength,
        contributions=tuple(contributions),
    )


def find_level(framework: Framework, key: str) -> Level:
    """Return the framework's level with this key."""
    for level in framework.levels:
        if level.key == key:
            return level
    raise UnknownLevel(f"unknown level {key!r}")


def level_path(framework: Framework, track: str | None) -> tuple[str, ...]:
    """Return the level keys of the trunk plus the track's levels, in (rank, key) order."""
    if track is not None and not any(level.track == track for level in framework.levels):
        raise UnknownTrack(f"unknown track {track!r}")
    on_path = (level for level in framework.levels if level.track in (None, track))
    return tuple(level.key for level in sorted(on_path, key=lambda level: (level.rank, level.key)))


# A level's requirements depend only on its (immutable) framework, and computing them took a
# quarter of an evaluation: they are kept per framework object. An entry holds its framework, so
# the id it is filed under cannot name another object while it is kept.
_REQUIREMENTS: "OrderedDict[int, tuple[Framework, dict[str, tuple[Requirement, ...]]]]" = (
    OrderedDict()
)
_REQUIREMENTS_KEPT = 64


def level_requirements(framework: Framework, level: Level) -> tuple[Requirement, ...]:
    """Return the level's expectations with required > 0 and their weights w_L(c)."""
    entry = _REQUIREMENTS.get(id(framework))
    if entry is None or entry[0] is not framework:
        entry = (framework, {})
        _REQUIREMENTS[id(framework)] = entry
        if len(_REQUIREMENTS) > _REQUIREMENTS_KEPT:
            _REQUIREMENTS.popitem(last=False)
    found = entry[1].get(level.key)
    if found is None:
        found = entry[1][level.key] = _level_requirements(framework, level)
    return found


def _level_requirements(framework: Framework, level: Level) -> tuple[Requirement, ...]:
    competencies = {competency.key: competency for competency in framework.competencies}
    order = {competency.key: index for index, competency in enumerate(framework.competencies)}
    expected = sorted(
        (
            (competencies[expectation.competency], expectation)
            for expectation in framework.expectations
            if expectation.level == level.key
            and expectation.required > 0
            and expectation.competency in competencies
        ),
        key=lambda pair: order[pair[0].key],
    )
    emphasis = {
        area: shares[level.key]
        for area, shares in framework.area_emphasis.items()
        if level.key in shares
    }
    if not emphasis:
        requirements = tuple(Requirement(c, e, c.weight) for c, e in expected)
    else:
        requirements = _emphasis_requirements(expected, emphasis)
    if requirements and math.fsum(r.weight for r in requirements) <= 0:
        # Nothing would carry weight, so readiness would be 1 on no evidence at all: every
        # expected competency counts equally instead.
        return tuple(Requirement(r.competency, r.expectation, 1.0) for r in requirements)
    return requirements


def _emphasis_requirements(
    expected: list[tuple[Competency, Expectation]], emphasis: Mapping[str, float]
) -> tuple[Requirement, ...]:
    by_area: dict[str, list[Competency]] = {}
    for competency, _ in expected:
        by_area.setdefault(competency.area, []).append(competency)
    weights: dict[str, float] = {}
    for area, members in by_area.items():
        share = emphasis.get(area, 0.0)
        area_weight = math.fsum(member.weight for member in members)
        for member in members:
            # Equal split when the area's competencies all weigh 0, so the share is not lost.
            weights[member.key] = (
                share * member.weight / area_weight if area_weight > 0 else share / len(members)
            )
    return tuple(Requirement(c, e, weights[c.key]) for c, e in expected)


def attainment(actual: float | None, required: int) -> float:
    """Return min(1, a / r) with an unrated competency counted as 0, never below 0."""
    return max(0.0, min(1.0, (actual or 0.0) / required))


def _floor_hundredths(value: float) -> str:
    # Rounded down so a readiness just under the threshold never prints as equal to it.
    return f"{math.floor(value * 100 + 1e-6) / 100:.2f}"


def _describe(actual: float | None) -> str:
    return "not rated yet" if actual is None else format_number(actual)


def allowed_shortfall(settings: ScoringSettings, required: float, scale_step: float) -> float:
    """Points an expected competency may lie below its requirement under the gap tolerance."""
    if settings.gap_tolerance_mode == "steps":
        return settings.gap_tolerance * scale_step
    if settings.gap_tolerance_mode == "fraction":
        return settings.gap_tolerance * required
    return settings.gap_tolerance


def _tolerance_phrase(settings: ScoringSettings, required: int, scale_step: float) -> str:
    tolerance = format_number(settings.gap_tolerance)
    points = format_number(allowed_shortfall(settings, required, scale_step))
    if settings.gap_tolerance_mode == "steps":
        return f"{tolerance} scale step(s) ({points} point(s))"
    if settings.gap_tolerance_mode == "fraction":
        return f"{format_number(settings.gap_tolerance * 100)}% ({points} point(s))"
    return f"{tolerance} point(s)"


NOTHING_EXPECTED = (
    "no competency is required above 0 at this level, so no rating can show it is attained"
)


def score_level(
    level: Level,
    requirements: tuple[Requirement, ...],
    values: Mapping[str, float],
    settings: ScoringSettings,
    *,
    scale_step: float = 1.0,
) -> LevelReadiness:
    """Score one level: readiness, coverage and whether it is met, with the reasons."""
    weights = tuple(
        LevelWeight(
            competency=requirement.competency.key,
            area=requirement.competency.area,
            weight=requirement.weight,
            required=requirement.expectation.required,
            actual=values.get(requirement.competency.key),
            attainment=attainment(
                values.get(requirement.competency.key), requirement.expectation.required
            ),
            critical=requirement.expectation.critical,
        )
        for requirement in requirements
    )
    total = math.fsum(weight.weight for weight in weights)
    if total > 0:
        readiness = math.fsum(weight.weight * weight.attainment for weight in weights) / total
        coverage = math.fsum(weight.weight for weight in weights if weight.actual is not None)
        coverage /= total
    else:
        # Nothing is expected here (level_requirements gives weight to anything expected):
        # a person never attains a level without evidence.
        readiness = coverage = 0.0

    critical_unmet = sorted(
        weight.competency
        for weight in weights
        if weight.critical and (weight.actual or 0.0) < weight.required - EPSILON
    )
    below_tolerance = sorted(
        weight.competency
        for weight in weights
        if (weight.actual or 0.0)
        < weight.required - allowed_shortfall(settings, weight.required, scale_step) - EPSILON
    )
    actual_of = {weight.competency: weight for weight in weights}
    reasons: list[str] = []
    if not weights:
        reasons.append(NOTHING_EXPECTED)
    elif readiness < settings.readiness_threshold - EPSILON:
        reasons.append(
            f"readiness {_floor_hundredths(readiness)} is below the threshold "
            f"{format_number(settings.readiness_threshold)}"
        )
    reasons.extend(
        f"critical expectation not met: {key} is {_describe(actual_of[key].actual)}, "
        f"requires {actual_of[key].required}"
        for key in critical_unmet
    )
    reasons.extend(
        f"{key} is more than "
        f"{_tolerance_phrase(settings, actual_of[key].required, scale_step)} below its "
        f"requirement: {_describe(actual_of[key].actual)}, requires {actual_of[key].required}"
        for key in below_tolerance
    )
    return LevelReadiness(
        level=level.key,
        name=level.name,
        rank=level.rank,
        track=level.track,
        readiness=readiness,
        coverage=coverage,
        meets=not reasons,
        reasons=tuple(reasons),
        weights=weights,
        critical_unmet=tuple(critical_unmet),
        below_tolerance=tuple(below_tolerance),
    )


def confidence(coverage: float, distinct_raters: int) -> float:
    """Return coverage × (1 − 0.5^raters): 0 without raters, rising with both inputs."""
    return coverage * (1.0 - 0.5 ** max(0, distinct_raters))


def _ordered(framework: Framework, values: Mapping[str, float]) -> dict[str, float]:
    return {c.key: values[c.key] for c in framework.competencies if c.key in values}


def evaluate(
    framework: Framework,
    ratings: Iterable[Rating],
    *,
    as_of: datetime,
    track: str | None = None,
    settings: ScoringSettings | None = None,
    overrides: Mapping[str, float] | None = None,
) -> Evaluation:
    """Score a subject's ratings against every level, optionally with what-if overrides."""
    effective = _settings(framework, settings)
    path = level_path(framework, track)
    aggregation = aggregate(framework, ratings, as_of=as_of, settings=effective)
    known = {competency.key for competency in framework.competencies}
    clamped: dict[str, float] = {}
    for key, value in (overrides or {}).items():
        if key not in known:
            # A typo in a what-if must not silently answer a different question.
            raise UnknownCompetency(f"unknown competency {key!r} in overrides")
        clamped[key] = _clamp(framework, value, f"override for {key!r}")
    values = {key: cv.value for key, cv in aggregation.values.items() if cv.value is not None}
    values.update(clamped)
    return _evaluation(
        framework,
        _ordered(framework, values),
        track=track,
        path=path,
        settings=effective,
        aggregation=aggregation,
        overrides=_ordered(framework, clamped),
    )


def evaluate_values(
    framework: Framework,
    values: Mapping[str, float],
    *,
    track: str | None = None,
    settings: ScoringSettings | None = None,
) -> Evaluation:
    """Score already aggregated values (unknown keys ignored, values clamped to the scale)."""
    effective = _settings(framework, settings)
    path = level_path(framework, track)
    known = {competency.key for competency in framework.competencies}
    clamped = {
        key: _clamp(framework, value, f"value for {key!r}")
        for key, value in values.items()
        if key in known
    }
    return _evaluation(
        framework,
        _ordered(framework, clamped),
        track=track,
        path=path,
        settings=effective,
        aggregation=None,
        overrides={},
    )


def _evaluation(
    framework: Framework,
    values: dict[str, float],
    *,
    track: str | None,
    path: tuple[str, ...],
    settings: ScoringSettings,
    aggregation: Aggregation | None,
    overrides: dict[str, float],
) -> Evaluation:
    levels = tuple(
        score_level(
            level,
            level_requirements(framework, level),
            values,
            settings,
            scale_step=framework.scale_step,
        )
        for level in sorted(framework.levels, key=lambda level: (level.rank, level.key))
    )
    by_key = {readiness.level: readiness for readiness in levels}

    attained: str | None = None
    for key in path:
        if not by_key[key].meets:
            break
        attained = key
    if attained is None:
        next_level = path[0] if path else None
    else:
        position = path.index(attained) + 1
        next_level = path[position] if position < len(path) else None

    level_index = float(by_key[attained].rank) if attained is not None else 0.0
    if next_level is not None:
        level_index += min(by_key[next_level].readiness, INDEX_CAP)

    total_weight = math.fsum(competency.weight for competency in framework.competencies)
    rated_weight = math.fsum(c.weight for c in framework.competencies if c.key in values)
    coverage = rated_weight / total_weight if total_weight > 0 else 1.0
    # Values given directly carry no rater evidence, so their confidence is 0.
    distinct_raters = aggregation.distinct_raters if aggregation is not None else 0
    return Evaluation(
        framework_key=framework.key,
        framework_version=framework.version,
        track=track,
        values=values,
        aggregation=aggregation,
        levels=levels,
        path=path,
        attained_level=attained,
        next_level=next_level,
        level_index=level_index,
        coverage=coverage,
        confidence=confidence(coverage, distinct_raters),
        settings=settings,
        overrides=overrides,
    )


def ensure_same_framework(framework: Framework, evaluation: Evaluation) -> None:
    """Refuse to analyse an evaluation against a different framework version."""
    if (framework.key, framework.version) != (
        evaluation.framework_key,
        evaluation.framework_version,
    ):
        raise ScoringError(
            f"evaluation is for {evaluation.framework_key} v{evaluation.framework_version}, "
            f"not {framework.key} v{framework.version}"
        )
