"""Greedy development plan: the activities that raise readiness for a target level fastest."""

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from app.scoring.engine import (
    EPSILON,
    _floor_hundredths,
    ensure_same_framework,
    find_level,
    format_number,
    level_requirements,
    score_level,
)
from app.scoring.errors import ScoringError
from app.scoring.model import Activity, Framework
from app.scoring.results import Evaluation, LevelReadiness, Plan, PlanStep, StopReason

# Gains and gain-per-hour differences at or below this are float noise, not progress.
GAIN_TOLERANCE = 1e-12


@dataclass(frozen=True, slots=True)
class _Option:
    activity: Activity
    values: dict[str, float]
    develops: dict[str, tuple[float, float]]
    readiness: LevelReadiness
    gain_per_hour: float


def _apply(
    framework: Framework, values: Mapping[str, float], activity: Activity, known: Collection[str]
) -> tuple[dict[str, float], dict[str, tuple[float, float]]]:
    after = dict(values)
    develops: dict[str, tuple[float, float]] = {}
    for competency, gain in sorted(activity.gains.items()):
        if competency not in known or gain <= 0:
            continue
        before = after.get(competency, 0.0)  # unrated counts as 0
        raised = min(float(framework.scale_max), before + gain)
        if raised != before:
            after[competency] = raised
            develops[competency] = (before, raised)
    return after, develops


def _not_met(name: str, readiness: LevelReadiness) -> str:
    return f"{name} is not met ({'; '.join(readiness.reasons)})"


def _steps_phrase(count: int, hours: float) -> str:
    return f"{count} step{'' if count == 1 else 's'} ({format_number(hours)} h)"


def _message(
    stop_reason: StopReason,
    name: str,
    final: LevelReadiness,
    steps: int,
    hours: float,
    budget_hours: float | None,
) -> str:
    # Floored to hundredths like the level reasons, so the two numbers in one message agree
    # (rounding printed "reaches 0.70 readiness" beside "readiness 0.69 is below the threshold").
    reached = f"{_floor_hundredths(final.readiness)} readiness"
    if stop_reason == "already_met":
        return f"Already meets {name}; no steps needed."
    if stop_reason == "target_met":
        return f"The plan reaches {reached} and meets {name} after {_steps_phrase(steps, hours)}."
    if stop_reason == "budget":
        return (
            f"Within the budget of {format_number(budget_hours or 0.0)} h the plan reaches "
            f"{reached} after {_steps_phrase(steps, hours)}; {_not_met(name, final)}."
        )
    if stop_reason == "max_steps":
        return (
            f"After the maximum of {_steps_phrase(steps, hours)} the plan reaches {reached}; "
            f"{_not_met(name, final)}."
        )
    return f"Activities available reach {reached}; {_not_met(name, final)}."


def recommend(
    framework: Framework,
    evaluation: Evaluation,
    *,
    target_level: str | None = None,
    budget_hours: float | None = None,
    max_steps: int | None = None,
    completed_activities: Collection[str] = (),
) -> Plan:
    """Plan activities toward the target level (default: the next level), best gain per hour."""
    ensure_same_framework(framework, evaluation)
    if budget_hours is not None and not (math.isfinite(budget_hours) and budget_hours >= 0):
        raise ScoringError(f"budget_hours must be a finite number >= 0, got {budget_hours!r}")
    if max_steps is not None and max_steps < 0:
        raise ScoringError(f"max_steps must be >= 0, got {max_steps!r}")

    values = dict(evaluation.values)
    target = evaluation.next_level if target_level is None else target_level
    if target is None:
        return Plan(
            target_level=None,
            target_name=None,
            readiness_now=None,
            meets_now=None,
            steps=(),
            projected_readiness=None,
            target_met=None,
            total_hours=0.0,
            stop_reason="already_met",
            message="Already at the top of the path; there is no next level to plan for.",
            projected_values=values,
        )

    level = find_level(framework, target)
    requirements = level_requirements(framework, level)
    settings = evaluation.settings
    known = {competency.key for competency in framework.competencies}
    current = score_level(level, requirements, values, settings)
    start = current
    # Sorted by (effort, key) so the first of equally good candidates is the tie-break winner.
    candidates = sorted(
        (
            activity
            for activity in framework.activities
            if activity.band_min_rank <= level.rank <= activity.band_max_rank
            and activity.key not in completed_activities
        ),
        key=lambda activity: (activity.effort_hours, activity.key),
    )
    steps: list[PlanStep] = []
    hours = 0.0
    stop_reason: StopReason
    while True:
        if current.meets:
            stop_reason = "target_met" if steps else "already_met"
            break
        if max_steps is not None and len(steps) >= max_steps:
            stop_reason = "max_steps"
            break
        best: _Option | None = None
        over_budget = False
        for activity in candidates:
            assert activity.effort_hours > 0, "effort_hours is validated > 0 upstream"
            after_values, develops = _apply(framework, values, activity, known)
            after = score_level(level, requirements, after_values, settings)
            gain = after.readiness - current.readiness
            if gain <= GAIN_TOLERANCE:
                continue
            if budget_hours is not None and hours + activity.effort_hours > budget_hours + EPSILON:
                over_budget = True
                continue
            gain_per_hour = gain / activity.effort_hours
            if best is None or gain_per_hour > best.gain_per_hour + GAIN_TOLERANCE:
                best = _Option(activity, after_values, develops, after, gain_per_hour)
        if best is None:
            stop_reason = "budget" if over_budget else "no_helpful_activity"
            break
        activity = best.activity
        hours += activity.effort_hours
        steps.append(
            PlanStep(
                activity=activity.key,
                title=activity.title,
                kind=activity.kind,
                develops=best.develops,
                effort_hours=activity.effort_hours,
                cumulative_hours=hours,
                readiness_before=current.readiness,
                readiness_after=best.readiness.readiness,
                meets_after=best.readiness.meets,
                url=activity.url,
            )
        )
        values, current = best.values, best.readiness
        candidates.remove(activity)

    return Plan(
        target_level=level.key,
        target_name=level.name,
        readiness_now=start.readiness,
        meets_now=start.meets,
        steps=tuple(steps),
        projected_readiness=current.readiness,
        target_met=current.meets,
        total_hours=hours,
        stop_reason=stop_reason,
        message=_message(stop_reason, level.name, current, len(steps), hours, budget_hours),
        projected_values=values,
    )
