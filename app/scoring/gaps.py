"""Gap analysis: what a subject is missing for a target level and what each gap costs."""

import math

from app.scoring.engine import EPSILON, ensure_same_framework, find_level
from app.scoring.model import Framework, Level
from app.scoring.results import Evaluation, GapAnalysis, GapItem, GapStatus

# Points above the requirement that make a competency a strength.
STRENGTH_MARGIN = 1.0
# Rater disagreement (weighted standard deviation, in points) that makes a value uncertain.
UNCERTAIN_SPREAD = 1.0
_GAP_STATUSES: tuple[GapStatus, ...] = ("gap", "critical_gap")


def _status(actual: float, required: int, critical: bool) -> GapStatus:
    if actual >= required + STRENGTH_MARGIN - EPSILON:
        return "exceeds"
    if actual >= required - EPSILON:
        return "met"
    return "critical_gap" if critical else "gap"


def _dedupe(indicators: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(indicators))


def _unmet_indicators(
    framework: Framework, evaluation: Evaluation, target: Level
) -> dict[str, tuple[str, ...]]:
    """With cumulative indicators: per competency, the indicators of lower levels on the
    target's path (trunk and the target's track) whose requirement is not met, lowest first."""
    if not framework.cumulative_indicators:
        return {}
    lower = {
        level.key: level
        for level in framework.levels
        if level.rank < target.rank and level.track in (None, target.track)
    }
    found: dict[str, list[tuple[int, str, tuple[str, ...]]]] = {}
    for expectation in framework.expectations:
        level = lower.get(expectation.level)
        if level is None or expectation.required <= 0 or not expectation.indicators:
            continue
        actual = evaluation.values.get(expectation.competency, 0.0)
        if actual < expectation.required - EPSILON:
            found.setdefault(expectation.competency, []).append(
                (level.rank, level.key, expectation.indicators)
            )
    return {
        key: tuple(text for *_, texts in sorted(entries) for text in texts)
        for key, entries in found.items()
    }


def analyze_gaps(
    framework: Framework, evaluation: Evaluation, *, target_level: str | None = None
) -> GapAnalysis:
    """List each expectation of the target level (default: the next level) and its cost."""
    ensure_same_framework(framework, evaluation)
    aggregation = evaluation.aggregation
    blind_spots: tuple[str, ...] = ()
    hidden_strengths: tuple[str, ...] = ()
    if aggregation is not None:
        blind_spots = tuple(sorted(k for k, v in aggregation.values.items() if v.blind_spot))
        hidden_strengths = tuple(
            sorted(k for k, v in aggregation.values.items() if v.hidden_strength)
        )

    target = evaluation.next_level if target_level is None else target_level
    if target is None:
        return GapAnalysis(
            target_level=None,
            target_name=None,
            readiness=None,
            meets=None,
            reasons=(),
            gap_count=0,
            critical_gap_count=0,
            items=(),
            strengths=(),
            blind_spots=blind_spots,
            hidden_strengths=hidden_strengths,
        )

    level = find_level(framework, target)
    readiness = evaluation.level(target)
    competencies = {competency.key: competency for competency in framework.competencies}
    indicators = _unmet_indicators(framework, evaluation, level)
    own = {
        expectation.competency: expectation.indicators
        for expectation in framework.expectations
        if expectation.level == target
    }
    total = math.fsum(weight.weight for weight in readiness.weights)
    items: list[GapItem] = []
    for weight in readiness.weights:
        actual = weight.actual if weight.actual is not None else 0.0
        status = _status(actual, weight.required, weight.critical)
        value = aggregation.values.get(weight.competency) if aggregation is not None else None
        raters = value.raters if value is not None else 0
        spread = value.spread if value is not None else 0.0
        items.append(
            GapItem(
                competency=weight.competency,
                name=competencies[weight.competency].name,
                area=weight.area,
                required=weight.required,
                actual=weight.actual,
                gap_points=max(0.0, weight.required - actual),
                # Same weights and attainments as the readiness, so the d_c add up to 1 - R_T.
                readiness_points_lost=(
                    weight.weight * (1.0 - weight.attainment) / total if total > 0 else 0.0
                ),
                critical=weight.critical,
                status=status,
                indicators_not_shown=_dedupe(
                    (*indicators.get(weight.competency, ()), *own.get(weight.competency, ()))
                    if status in _GAP_STATUSES
                    else indicators.get(weight.competency, ())
                ),
                uncertain=raters >= 2 and spread >= UNCERTAIN_SPREAD - EPSILON,
                raters=raters,
                spread=spread,
            )
        )
    items.sort(
        key=lambda item: (
            item.status != "critical_gap",
            -item.readiness_points_lost,
            item.competency,
        )
    )
    exceeding = [item for item in items if item.status == "exceeds"]
    exceeding.sort(key=lambda item: (-((item.actual or 0.0) - item.required), item.competency))
    return GapAnalysis(
        target_level=level.key,
        target_name=level.name,
        readiness=readiness.readiness,
        meets=readiness.meets,
        reasons=readiness.reasons,
        gap_count=sum(1 for item in items if item.status in _GAP_STATUSES),
        critical_gap_count=sum(1 for item in items if item.status == "critical_gap"),
        items=tuple(items),
        strengths=tuple(item.competency for item in exceeding),
        blind_spots=blind_spots,
        hidden_strengths=hidden_strengths,
    )
