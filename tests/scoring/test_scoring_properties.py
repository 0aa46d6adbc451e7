"""Properties that hold for any framework and any ratings (hypothesis)."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from app.scoring import (
    Activity,
    Competency,
    Evaluation,
    Expectation,
    Framework,
    Level,
    Rating,
    analyze_gaps,
    evaluate,
    evaluate_values,
    recommend,
)

AS_OF = datetime(2025, 6, 30, 12, 0, tzinfo=UTC)
COMPETENCIES = (
    ("discovery", "craft"),
    ("delivery", "craft"),
    ("data", "craft"),
    ("influence", "people"),
    ("mentoring", "people"),
)
KEYS = tuple(key for key, _ in COMPETENCIES)
LEVELS = (
    Level("L1", "One", 1, None),
    Level("L2", "Two", 2, None),
    Level("L3ic", "Three IC", 3, "ic"),
    Level("L4ic", "Four IC", 4, "ic"),
    Level("L3m", "Three M", 3, "mgmt"),
)
RATERS = (
    ("manager", "m1"),
    ("manager", "m2"),
    ("peer", "p1"),
    ("peer", "p2"),
    ("self", "me"),
    ("direct_report", "d1"),
    ("external", "x1"),
    ("calibrated", "c1"),
    ("calibrated", "c2"),
    ("intern", "i1"),  # no role weight: ignored
)
PROPERTY_SETTINGS = settings(derandomize=True, max_examples=200, deadline=None, database=None)

proficiencies = st.one_of(
    st.integers(0, 5).map(float), st.floats(0, 5, allow_nan=False, allow_infinity=False)
)
tracks = st.sampled_from([None, "ic", "mgmt"])


@st.composite
def frameworks(draw: st.DrawFn) -> Framework:
    """Random weights, emphasis, requirements, critical flags and activities on fixed keys."""
    weights = [draw(st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.0])) for _ in COMPETENCIES]
    expectations = tuple(
        Expectation(key, level.key, draw(st.integers(0, 5)), draw(st.booleans()))
        for level in LEVELS
        for key in KEYS
        if draw(st.booleans())
    )
    emphasis = {
        area: {
            level.key: draw(st.sampled_from([0.0, 0.2, 0.5, 0.8, 1.0]))
            for level in LEVELS
            if draw(st.booleans())
        }
        for area in ("craft", "people")
    }
    activities = []
    for index in range(draw(st.integers(0, 6))):
        gains = draw(st.dictionaries(st.sampled_from([*KEYS, "unknown"]), st.integers(1, 3)))
        band_min = draw(st.integers(1, 4))
        activities.append(
            Activity(
                key=f"a{index}",
                title=f"Activity {index}",
                kind="practice",
                gains=gains,
                effort_hours=draw(st.sampled_from([5.0, 10.0, 20.0, 40.0])),
                band_min_rank=band_min,
                band_max_rank=draw(st.integers(band_min, 4)),
            )
        )
    return Framework(
        key="random",
        version=1,
        scale_min=0,
        scale_max=5,
        levels=LEVELS,
        competencies=tuple(
            Competency(key, key.title(), area, weight)
            for (key, area), weight in zip(COMPETENCIES, weights, strict=True)
        ),
        expectations=expectations,
        area_emphasis=emphasis,
        activities=tuple(activities),
        scale_step=draw(st.sampled_from([1.0, 0.5, 2.5])),
        cumulative_indicators=draw(st.booleans()),
    )


ratings_lists = st.lists(
    st.builds(
        lambda competency, proficiency, rater, days_ago, sequence: Rating(
            competency, proficiency, rater[1], rater[0], AS_OF - timedelta(days=days_ago), sequence
        ),
        st.sampled_from([*KEYS, "legacy"]),
        proficiencies,
        st.sampled_from(RATERS),
        st.integers(-3, 400),
        st.integers(0, 2),
    ),
    max_size=25,
)
value_maps = st.dictionaries(st.sampled_from(KEYS), proficiencies)


def _attained_rank(evaluation: Evaluation) -> int:
    if evaluation.attained_level is None:
        return 0
    return evaluation.level(evaluation.attained_level).rank


@PROPERTY_SETTINGS
@given(frameworks(), ratings_lists, tracks)
def test_every_number_stays_in_bounds(
    framework: Framework, ratings: list[Rating], track: str | None
) -> None:
    evaluation = evaluate(framework, ratings, as_of=AS_OF, track=track)
    for level in evaluation.levels:
        assert 0.0 <= level.readiness <= 1.0
        assert 0.0 <= level.coverage <= 1.0
        assert level.meets is (not level.reasons)
    assert 0.0 <= evaluation.coverage <= 1.0
    assert 0.0 <= evaluation.confidence <= evaluation.coverage
    assert evaluation.attained_level in (None, *evaluation.path)
    assert _attained_rank(evaluation) <= evaluation.level_index < _attained_rank(evaluation) + 1


@PROPERTY_SETTINGS
@given(frameworks(), ratings_lists.filter(bool), tracks, st.data())
def test_raising_a_rating_never_lowers_anything(
    framework: Framework, ratings: list[Rating], track: str | None, data: st.DataObject
) -> None:
    index = data.draw(st.integers(0, len(ratings) - 1))
    bump = data.draw(st.floats(0.01, 5))
    raised = list(ratings)
    raised[index] = replace(ratings[index], proficiency=ratings[index].proficiency + bump)
    before = evaluate(framework, ratings, as_of=AS_OF, track=track)
    after = evaluate(framework, raised, as_of=AS_OF, track=track)
    for old, new in zip(before.levels, after.levels, strict=True):
        assert new.readiness >= old.readiness
        assert new.meets or not old.meets
    assert after.level_index >= before.level_index
    assert _attained_rank(after) >= _attained_rank(before)


@PROPERTY_SETTINGS
@given(frameworks(), ratings_lists, tracks, st.data())
def test_rating_order_does_not_matter(
    framework: Framework, ratings: list[Rating], track: str | None, data: st.DataObject
) -> None:
    shuffled = data.draw(st.permutations(ratings))
    assert evaluate(framework, shuffled, as_of=AS_OF, track=track) == evaluate(
        framework, ratings, as_of=AS_OF, track=track
    )


@PROPERTY_SETTINGS
@given(frameworks(), st.integers(0, 5), tracks)
def test_meeting_every_requirement_means_full_readiness(
    framework: Framework, extra: int, track: str | None
) -> None:
    values = {
        key: min(
            5,
            extra
            + max((e.required for e in framework.expectations if e.competency == key), default=0),
        )
        for key in KEYS
    }
    evaluation = evaluate_values(framework, values, track=track)
    for level in evaluation.levels:
        # A level that expects nothing is never met (nothing could show it).
        assert (level.readiness == 1.0 and level.meets) is bool(level.weights)
    met = [key for key in evaluation.path if evaluation.level(key).meets]
    first_unmet = next(
        (i for i, key in enumerate(evaluation.path) if not evaluation.level(key).meets),
        len(evaluation.path),
    )
    assert evaluation.attained_level == (evaluation.path[first_unmet - 1] if first_unmet else None)
    assert set(evaluation.path[:first_unmet]) <= set(met)


@PROPERTY_SETTINGS
@given(frameworks(), value_maps, st.sampled_from([level.key for level in LEVELS]))
def test_gap_costs_add_up_to_missing_readiness(
    framework: Framework, values: dict[str, float], target: str
) -> None:
    evaluation = evaluate_values(framework, values)
    gaps = analyze_gaps(framework, evaluation, target_level=target)
    assert gaps.readiness == evaluation.level(target).readiness
    lost = sum(item.readiness_points_lost for item in gaps.items)
    if gaps.items:  # a level that expects nothing has readiness 0 and no items
        assert abs(lost - (1.0 - gaps.readiness)) <= 1e-9
    else:
        assert (gaps.readiness, gaps.meets) == (0.0, False)
    assert gaps.gap_count == sum(item.status in ("gap", "critical_gap") for item in gaps.items)


@PROPERTY_SETTINGS
@given(
    frameworks(),
    value_maps,
    st.sampled_from([level.key for level in LEVELS]),
    st.one_of(st.none(), st.floats(0, 150)),
    st.one_of(st.none(), st.integers(0, 4)),
    st.sets(st.sampled_from([f"a{index}" for index in range(6)])),
)
def test_plan_properties(
    framework: Framework,
    values: dict[str, float],
    target: str,
    budget_hours: float | None,
    max_steps: int | None,
    completed: set[str],
) -> None:
    evaluation = evaluate_values(framework, values)
    plan = recommend(
        framework,
        evaluation,
        target_level=target,
        budget_hours=budget_hours,
        max_steps=max_steps,
        completed_activities=completed,
    )
    assert plan.readiness_now == evaluation.level(target).readiness
    previous = plan.readiness_now
    for step in plan.steps:
        assert step.readiness_before == previous
        # A step may gain no readiness when it removes a blocker (critical or tolerance).
        assert step.readiness_after >= step.readiness_before
        assert step.activity not in completed
        previous = step.readiness_after
    assert len({step.activity for step in plan.steps}) == len(plan.steps)
    assert plan.projected_readiness == previous
    if budget_hours is not None:
        assert plan.total_hours <= budget_hours + 1e-9
    if max_steps is not None:
        assert len(plan.steps) <= max_steps
    rescored = evaluate_values(framework, plan.projected_values).level(target)
    assert rescored.readiness == plan.projected_readiness
    assert rescored.meets is plan.target_met
    assert (plan.stop_reason in ("already_met", "target_met")) is plan.target_met
