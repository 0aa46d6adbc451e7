"""Development plan toward a target level: greedy by readiness and blockers removed per hour,
replaced by the cheapest set that meets the target when the greedy walk misses it."""

import math
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from itertools import combinations

from app.scoring.engine import (
    EPSILON,
    _floor_hundredths,
    allowed_shortfall,
    ensure_same_framework,
    find_level,
    format_number,
    level_requirements,
    score_level,
)
from app.scoring.errors import ScoringError
from app.scoring.model import Activity, Framework, ScoringSettings
from app.scoring.results import Evaluation, LevelReadiness, Plan, PlanStep, StopReason

# Gains and gain-per-hour differences at or below this are float noise, not progress.
GAIN_TOLERANCE = 1e-12


# Exhaustive search over sets of candidates replaces a greedy plan that misses the target only
# when there are at most this many candidates (2^12 = 4,096 sets).
EXACT_SEARCH_LIMIT = 12


@dataclass(frozen=True, slots=True)
class _Option:
    activity: Activity
    values: dict[str, float]
    develops: dict[str, tuple[float, float]]
    readiness: LevelReadiness
    gain_per_hour: float
    unblock_per_hour: float


def blocking_points(readiness: LevelReadiness, settings: ScoringSettings, step: float) -> float:
    """Points still missing on critical expectations plus points beyond the gap tolerance:
    what stands between the level and ``meets`` besides readiness (0 when nothing blocks)."""
    total = 0.0
    for w in readiness.weights:
        actual = w.actual or 0.0
        if w.critical and actual < w.required:
            total += w.required - actual
        floor = w.required - allowed_shortfall(settings, w.required, step)
        if actual < floor:
            total += floor - actual
    return total


def _better(option: _Option, best: _Option | None) -> bool:
    """Readiness gained per hour first; among equal gains, blocking points removed per hour."""
    if best is None or option.gain_per_hour > best.gain_per_hour + GAIN_TOLERANCE:
        return True
    return (
        option.gain_per_hour >= best.gain_per_hour - GAIN_TOLERANCE
        and option.unblock_per_hour > best.unblock_per_hour + GAIN_TOLERANCE
    )


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
    *,
    no_activities: bool = False,
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
    if no_activities:
        return f"This framework has no development activities; {_not_met(name, final)}."
    return f"Activities available reach {reached}; {_not_met(name, final)}."


def _cheapest_set(
    framework: Framework,
    values: dict[str, float],
    candidates: list[Activity],
    rescore: Callable[[Mapping[str, float]], LevelReadiness],
    known: Collection[str],
    budget_hours: float | None,
    max_steps: int | None,
) -> tuple[Activity, ...] | None:
    """The set of candidates with the fewest hours (then fewest steps, then keys) whose gains
    together meet the level within the budget and max_steps; None when no set does."""
    everything = values
    for activity in candidates:
        everything, _ = _apply(framework, everything, activity, known)
    if not rescore(everything).meets:
        return None  # meeting is monotone in the values: no smaller set meets either
    largest = len(candidates) if max_steps is None else min(max_steps, len(candidates))
    best: tuple[tuple[float, int, tuple[str, ...]], tuple[Activity, ...]] | None = None
    for size in range(1, largest + 1):
        for members in combinations(candidates, size):
            hours = math.fsum(activity.effort_hours for activity in members)
            if budget_hours is not None and hours > budget_hours + EPSILON:
                continue
            rank = (hours, size, tuple(sorted(activity.key for activity in members)))
            if best is not None and rank >= best[0]:
                continue
            after = values
            for activity in members:
                # Gains are capped at the scale max, so the order of applying them is irrelevant.
                after, _ = _apply(framework, after, activity, known)
            if rescore(after).meets:
                best = (rank, members)
    return None if best is None else best[1]


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
    step = framework.scale_step
    known = {competency.key for competency in framework.competencies}

    def rescore(candidate_values: Mapping[str, float]) -> LevelReadiness:
        return score_level(level, requirements, candidate_values, settings, scale_step=step)

    def option(
        activity: Activity, base: dict[str, float], now: LevelReadiness, now_blocking: float
    ) -> _Option:
        after_values, develops = _apply(framework, base, activity, known)
        after = rescore(after_values)
        unblocked = now_blocking - blocking_points(after, settings, step)
        return _Option(
            activity,
            after_values,
            develops,
            after,
            (after.readiness - now.readiness) / activity.effort_hours,
            unblocked / activity.effort_hours,
        )

    current = rescore(values)
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
    remaining = list(candidates)
    chosen: list[_Option] = []
    hours = 0.0
    stop_reason: StopReason
    while True:
        if current.meets:
            stop_reason = "target_met" if chosen else "already_met"
            break
        if max_steps is not None and len(chosen) >= max_steps:
            stop_reason = "max_steps"
            break
        best: _Option | None = None
        over_budget = False
        now_blocking = blocking_points(current, settings, step)
        for activity in remaining:
            assert activity.effort_hours > 0, "effort_hours is validated > 0 upstream"
            candidate = option(activity, values, current, now_blocking)
            # Helpful when it raises readiness or removes a blocker (critical, tolerance).
            if (
                candidate.gain_per_hour * activity.effort_hours <= GAIN_TOLERANCE
                and candidate.unblock_per_hour * activity.effort_hours <= GAIN_TOLERANCE
            ):
                continue
            if budget_hours is not None and hours + activity.effort_hours > budget_hours + EPSILON:
                over_budget = True
                continue
            if _better(candidate, best):
                best = candidate
        if best is None:
            stop_reason = "budget" if over_budget else "no_helpful_activity"
            break
        hours += best.activity.effort_hours
        chosen.append(best)
        values, current = best.values, best.readiness
        remaining.remove(best.activity)

    if not current.meets and len(candidates) <= EXACT_SEARCH_LIMIT:
        cheapest = _cheapest_set(
            framework, dict(evaluation.values), candidates, rescore, known, budget_hours, max_steps
        )
        if cheapest is not None:
            # A set that meets the target exists although the greedy walk missed it: take the
            # cheapest such set, its steps in the greedy order (each best among the rest).
            values, current, chosen = dict(evaluation.values), start, []
            rest = list(cheapest)
            while rest:
                best = None
                now_blocking = blocking_points(current, settings, step)
                for activity in rest:
                    candidate = option(activity, values, current, now_blocking)
                    if _better(candidate, best):
                        best = candidate
                assert best is not None
                chosen.append(best)
                values, current = best.values, best.readiness
                rest.remove(best.activity)
            stop_reason = "target_met"

    steps: list[PlanStep] = []
    before = start
    cumulative = 0.0
    for picked in chosen:
        cumulative += picked.activity.effort_hours
        steps.append(
            PlanStep(
                activity=picked.activity.key,
                title=picked.activity.title,
                kind=picked.activity.kind,
                develops=picked.develops,
                effort_hours=picked.activity.effort_hours,
                cumulative_hours=cumulative,
                readiness_before=before.readiness,
                readiness_after=picked.readiness.readiness,
                meets_after=picked.readiness.meets,
                url=picked.activity.url,
            )
        )
        before = picked.readiness
    hours = cumulative
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
        message=_message(
            stop_reason,
            level.name,
            current,
            len(steps),
            hours,
            budget_hours,
            no_activities=not framework.activities,
        ),
        projected_values=values,
    )
