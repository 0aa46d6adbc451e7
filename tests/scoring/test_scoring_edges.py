"""Scoring at its edges (issue 14): no level on nothing, order never matters, one meaning of
role weights, tolerance on other scales, a plan that sees blockers, cumulative indicators."""

import random
from dataclasses import replace
from datetime import timedelta
from itertools import combinations
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.frameworks.compile import compile_framework
from app.frameworks.document import parse_document, tolerance_advice
from app.scores.schemas import EvaluateRating
from app.scores.service import request_ratings
from app.scoring import (
    Activity,
    Competency,
    Expectation,
    Framework,
    Level,
    Rating,
    ScoringSettings,
    analyze_gaps,
    evaluate,
    evaluate_values,
    recommend,
)
from app.scoring.cohort import CohortRatings, cohort_ratings, score_cohort
from app.scoring.plan import _apply
from tests.factories import small_framework
from tests.scoring.conftest import AS_OF
from tests.scoring.test_cohort import RATERS, assert_matches_engine, scoring_settings
from tests.scoring.test_scoring_properties import KEYS, PROPERTY_SETTINGS, frameworks, tracks

# -- 3. input order never matters, same-instant ties included -----------------------------------

# Few instants (whole days) and sequence 0 as stateless input has: ties are the rule here.
tied_ratings = st.lists(
    st.builds(
        lambda competency, proficiency, rater, days_ago, sequence: Rating(
            competency, proficiency, rater[1], rater[0], AS_OF - timedelta(days=days_ago), sequence
        ),
        st.sampled_from(KEYS),
        st.integers(0, 5).map(float),
        st.sampled_from(RATERS),
        st.sampled_from([1, 1, 2, 40]),
        st.sampled_from([0, 0, 0, 1]),
    ),
    max_size=20,
).map(
    # Every rating again at the same instant by the same rater with another proficiency, and a
    # second calibrated rater at the same instant: the ties of issue 14.
    lambda ratings: [
        *ratings,
        *(replace(r, proficiency=5.0 - r.proficiency) for r in ratings[::2]),
        *(replace(r, rater_ref="c2") for r in ratings if r.role == "calibrated"),
    ]
)


def _permuted(columns: CohortRatings, order: list[int]) -> CohortRatings:
    index = np.array(order, dtype=np.intp)
    return CohortRatings(
        subject_index=columns.subject_index[index],
        competency_index=columns.competency_index[index],
        proficiency=columns.proficiency[index],
        role=columns.role[index],
        rater=columns.rater[index],
        assessed_at=columns.assessed_at[index],
        sequence=columns.sequence[index],
        n_subjects=columns.n_subjects,
    )


@PROPERTY_SETTINGS
@given(frameworks(), scoring_settings, st.lists(tied_ratings, max_size=6), st.randoms())
def test_shuffling_ratings_with_same_instant_ties_changes_no_output(
    framework: Framework,
    scoring: ScoringSettings,
    subjects: list[list[Rating]],
    shuffle: random.Random,
) -> None:
    tracks_ = [None] * len(subjects)
    for ratings in subjects:
        shuffled = shuffle.sample(ratings, len(ratings))
        before = evaluate(framework, ratings, as_of=AS_OF, settings=scoring)
        after = evaluate(framework, shuffled, as_of=AS_OF, settings=scoring)
        assert after == before
        assert analyze_gaps(framework, after) == analyze_gaps(framework, before)
        assert recommend(framework, after) == recommend(framework, before)
    columns = cohort_ratings(framework, subjects)
    size = columns.proficiency.shape[0]
    first = score_cohort(framework, columns, as_of=AS_OF, tracks=tracks_, settings=scoring)
    second = score_cohort(
        framework,
        _permuted(columns, shuffle.sample(range(size), size)),
        as_of=AS_OF,
        tracks=tracks_,
        settings=scoring,
    )
    for name in ("values", "readiness", "coverage", "meets", "attained", "level_index"):
        assert np.array_equal(getattr(first, name), getattr(second, name), equal_nan=True), name
    assert_matches_engine(framework, subjects, tracks_, first, scoring)


def _inputs(ratings: list[Rating]) -> list[EvaluateRating]:
    return [
        EvaluateRating(
            competency=r.competency,
            proficiency=r.proficiency,
            rater_ref=r.rater_ref,
            rater_role=r.role,  # type: ignore[arg-type]
            assessed_at=r.assessed_at,
        )
        for r in ratings
        if r.role != "intern"
    ]


@PROPERTY_SETTINGS
@given(frameworks(), tied_ratings, st.randoms())
def test_a_stateless_request_answers_the_same_in_any_order(
    framework: Framework, ratings: list[Rating], shuffle: random.Random
) -> None:
    # /v1/evaluate's conversion: the order of the request's list is no tie-break.
    inputs = _inputs(ratings)
    shuffled = shuffle.sample(inputs, len(inputs))
    before = evaluate(framework, request_ratings(inputs, AS_OF), as_of=AS_OF)
    after = evaluate(framework, request_ratings(shuffled, AS_OF), as_of=AS_OF)
    assert after == before


def test_an_exact_tie_keeps_the_higher_proficiency(framework: Framework) -> None:
    at = AS_OF - timedelta(days=1)
    twice = [
        EvaluateRating(competency="discovery", proficiency=p, rater_role="manager", assessed_at=at)
        for p in (2.0, 4.0)
    ]
    calibrated = [
        EvaluateRating(
            competency="delivery", proficiency=p, rater_ref=ref, rater_role="calibrated",
            assessed_at=at,
        )
        for p, ref in ((4.0, "c1"), (2.0, "c2"))
    ]  # fmt: skip
    for order in (twice + calibrated, calibrated[::-1] + twice[::-1]):
        values = evaluate(framework, request_ratings(order, AS_OF), as_of=AS_OF).values
        assert (values["discovery"], values["delivery"]) == (4.0, 4.0)
    # Stored data has a creation order: the later assessment wins a same-instant tie.
    stored = [
        Rating("discovery", 4.0, "m1", "manager", at, sequence=1),
        Rating("discovery", 2.0, "m1", "manager", at, sequence=2),
    ]
    assert evaluate(framework, stored[::-1], as_of=AS_OF).values["discovery"] == 2.0


# -- 1. no level on nothing -----------------------------------------------------------------------

not_counted = st.lists(
    st.one_of(
        st.builds(
            lambda k, p: Rating(k, p, "m1", "manager", AS_OF + timedelta(days=1)),
            st.sampled_from(KEYS),
            st.integers(0, 5).map(float),
        ),  # in the future
        st.builds(
            lambda k, p: Rating(k, p, "m1", "manager", AS_OF - timedelta(days=4000)),
            st.sampled_from(KEYS),
            st.integers(0, 5).map(float),
        ),  # out of the window
        st.builds(
            lambda p: Rating("legacy", p, "m1", "manager", AS_OF - timedelta(days=1)),
            st.integers(0, 5).map(float),
        ),  # a competency the framework does not have
    ),
    max_size=5,
)


@PROPERTY_SETTINGS
@given(frameworks(), scoring_settings, not_counted, tracks)
def test_a_subject_without_ratings_attains_no_level(
    framework: Framework, scoring: ScoringSettings, ratings: list[Rating], track: str | None
) -> None:
    evaluation = evaluate(framework, ratings, as_of=AS_OF, track=track, settings=scoring)
    assert evaluation.attained_level is None
    assert evaluation.level_index == 0.0
    assert evaluation.confidence == 0.0
    assert not any(level.meets for level in evaluation.levels)
    result = score_cohort(
        framework,
        cohort_ratings(framework, [ratings]),
        as_of=AS_OF,
        tracks=[track],
        settings=scoring,
    )
    assert (int(result.attained[0]), float(result.level_index[0])) == (-1, 0.0)
    assert not result.meets.any()


# -- 6. the plan sees blockers ---------------------------------------------------------------------


def _meets_with_some_set(
    framework: Framework,
    values: dict[str, float],
    target: str,
    candidates: list[Activity],
    budget_hours: float | None,
    max_steps: int | None,
) -> bool:
    """Exhaustive search: does any set of candidates meet the target within the limits?"""
    known = {c.key for c in framework.competencies}
    largest = len(candidates) if max_steps is None else min(max_steps, len(candidates))
    for size in range(largest + 1):
        for members in combinations(candidates, size):
            if budget_hours is not None and sum(a.effort_hours for a in members) > budget_hours:
                continue
            after = dict(values)
            for activity in members:
                after, _ = _apply(framework, after, activity, known)
            if evaluate_values(framework, after).level(target).meets:
                return True
    return False


@PROPERTY_SETTINGS
@given(
    frameworks(),
    st.dictionaries(st.sampled_from(KEYS), st.integers(0, 5).map(float)),
    st.sampled_from(["L1", "L2", "L3ic", "L4ic", "L3m"]),
    st.one_of(st.none(), st.sampled_from([0.0, 10.0, 25.0, 45.0, 80.0])),
    st.one_of(st.none(), st.integers(0, 3)),
)
def test_the_plan_meets_the_target_whenever_some_set_of_activities_does(
    framework: Framework,
    values: dict[str, float],
    target: str,
    budget_hours: float | None,
    max_steps: int | None,
) -> None:
    evaluation = evaluate_values(framework, values)
    plan = recommend(
        framework, evaluation, target_level=target, budget_hours=budget_hours, max_steps=max_steps
    )
    rank = evaluation.level(target).rank
    candidates = [a for a in framework.activities if a.band_min_rank <= rank <= a.band_max_rank]
    reachable = _meets_with_some_set(
        framework, dict(evaluation.values), target, candidates, budget_hours, max_steps
    )
    assert plan.target_met is reachable


def _blocked_framework() -> Framework:
    # "ops" weighs 0 but is critical at L1: readiness can never show it.
    return Framework(
        key="blocked",
        version=1,
        scale_min=0,
        scale_max=5,
        levels=(Level("L1", "One", 1, None),),
        competencies=(
            Competency("craft", "Craft", "a", 1.0),
            Competency("ops", "Operations", "a", 0.0),
        ),
        expectations=(
            Expectation("craft", "L1", 2, False),
            Expectation("ops", "L1", 3, True),
        ),
        area_emphasis={},
        activities=(
            Activity("oncall", "Join the on-call rota", "practice", {"ops": 3}, 30.0, 1, 1),
            Activity("half", "Shadow on-call", "practice", {"ops": 2}, 10.0, 1, 1),
            Activity("other-half", "Run a game day", "practice", {"ops": 2}, 12.0, 1, 1),
        ),
    )


def test_a_critical_expectation_that_weighs_nothing_is_planned_for() -> None:
    framework = _blocked_framework()
    evaluation = evaluate_values(framework, {"craft": 2.0, "ops": 0.0})
    assert evaluation.level("L1").readiness == 1.0
    assert evaluation.level("L1").critical_unmet == ("ops",)
    plan = recommend(framework, evaluation, target_level="L1")
    # Shadowing removes 2 of the 3 missing points in 10 h; the game day then closes the gap
    # (ops 4 >= 3): 22 h, cheaper than the 30 h rota.
    assert [s.activity for s in plan.steps] == ["half", "other-half"]
    assert (plan.stop_reason, plan.target_met, plan.total_hours) == ("target_met", True, 22.0)
    assert [s.readiness_after for s in plan.steps] == [1.0, 1.0]
    within = recommend(framework, evaluation, target_level="L1", budget_hours=30, max_steps=1)
    assert [s.activity for s in within.steps] == ["oncall"]
    assert within.target_met is True


# -- 2. role weights mean one thing ----------------------------------------------------------------


def _compiled(**settings: Any) -> Framework:
    return compile_framework(parse_document(small_framework(settings=settings)), 1)


def test_partial_role_weights_merge_with_the_defaults() -> None:
    framework = _compiled(role_weights={"manager": 4})
    assert dict(framework.settings.role_weights) == {
        "manager": 4.0,
        "peer": 2.0,
        "direct_report": 2.0,
        "external": 2.0,
        "self": 1.0,
    }
    at = AS_OF - timedelta(days=1)
    ratings = [
        Rating("coding", 3.0, "boss", "manager", at),
        Rating("coding", 1.0, "me", "self", at),
    ]
    # (4·3 + 1·1) / 5: the self rating still counts, as it would in a request's settings.
    assert evaluate(framework, ratings, as_of=AS_OF).values["coding"] == pytest.approx(13 / 5)
    dropped = _compiled(role_weights={"manager": 4, "self": 0})
    assert evaluate(dropped, ratings, as_of=AS_OF).values["coding"] == 3.0
    assert dropped.settings.role_weights["peer"] == 2.0


# -- 5. tolerance on other scales ------------------------------------------------------------------


def _one_point_per_level(**settings: Any) -> dict[str, Any]:
    """Scale 1-7, one point per level, seven competencies required 4 at level 4."""
    return {
        "format": "competency-framework/v1",
        "key": "career",
        "name": "Career ladder",
        "settings": settings,
        "scale": [{"value": v, "label": f"L{v}"} for v in range(1, 8)],
        "levels": [{"key": f"l{r}", "name": f"Level {r}", "rank": r} for r in range(1, 8)],
        "areas": [{"key": "all", "name": "All"}],
        "competencies": [
            {
                "key": f"c{i}",
                "name": f"C{i}",
                "area": "all",
                "expectations": {f"l{r}": {"required": r} for r in range(1, 8)},
            }
            for i in range(7)
        ],
    }


def test_tolerance_relative_to_the_requirement_or_the_scale_step() -> None:
    # Four of seven a whole level below (3 for 4), three above (5): readiness (4·0.75 + 3)/7.
    values = {f"c{i}": 3.0 if i < 4 else 5.0 for i in range(7)}
    default = compile_framework(parse_document(_one_point_per_level()), 1)
    assert evaluate_values(default, values).level("l4").readiness == pytest.approx(6 / 7)
    assert evaluate_values(default, values).level("l4").meets is True  # within 1 point

    fraction = compile_framework(
        parse_document(_one_point_per_level(gap_tolerance=0.2, gap_tolerance_mode="fraction")), 1
    )
    level = evaluate_values(fraction, values).level("l4")
    assert (level.meets, level.below_tolerance) == (False, ("c0", "c1", "c2", "c3"))
    assert level.reasons[0] == (
        "c0 is more than 20% (0.8 point(s)) below its requirement: 3, requires 4"
    )
    # 3.2 is 0.8 below 4: within 20% of the requirement.
    assert evaluate_values(fraction, {**values, "c0": 3.2}).level("l4").below_tolerance == (
        "c1",
        "c2",
        "c3",
    )

    hundred = _one_point_per_level(gap_tolerance=1, gap_tolerance_mode="steps")
    hundred["scale"] = [{"value": v, "label": f"{v}"} for v in (0, 25, 50, 75, 100)]
    for competency in hundred["competencies"]:
        competency["expectations"] = {"l1": {"required": 50}}
    hundred["levels"] = hundred["levels"][:1]
    steps = compile_framework(parse_document(hundred), 1)
    assert steps.scale_step == 25.0
    within = evaluate_values(steps, {f"c{i}": 25.0 if i == 0 else 50.0 for i in range(7)})
    assert within.level("l1").below_tolerance == ()
    below = evaluate_values(steps, {f"c{i}": 24.0 if i == 0 else 50.0 for i in range(7)})
    assert below.level("l1").reasons == (
        "c0 is more than 1 scale step(s) (25 point(s)) below its requirement: 24, requires 50",
    )


def test_import_advises_when_the_default_tolerance_suits_the_scale_badly() -> None:
    advice = tolerance_advice(parse_document(_one_point_per_level()))
    assert len(advice) == 1
    assert "a whole level below on every competency" in advice[0]
    # A chosen tolerance is the author's decision: no advice.
    chosen = _one_point_per_level(gap_tolerance=0.2, gap_tolerance_mode="fraction")
    assert tolerance_advice(parse_document(chosen)) == []
    coarse = _one_point_per_level()
    coarse["scale"] = [{"value": v, "label": f"{v}"} for v in (0, 25, 50, 75, 100)]
    coarse["levels"] = coarse["levels"][:2]
    for competency in coarse["competencies"]:
        competency["expectations"] = {"l1": {"required": 25}, "l2": {"required": 75}}
    (step_advice,) = tolerance_advice(parse_document(coarse))
    assert "less than one step of this scale (25 points)" in step_advice
    assert tolerance_advice(parse_document(small_framework())) == []


# -- 7. cumulative indicators ------------------------------------------------------------------------


def test_cumulative_indicators_list_the_unmet_ones_of_lower_levels(framework: Framework) -> None:
    # Toward L2: delivery requires 2 at L1 and 3 at L2; at 1 both are unmet.
    values = {"discovery": 2, "delivery": 1, "data": 2, "influence": 2, "mentoring": 1}
    plain = analyze_gaps(framework, evaluate_values(framework, values), target_level="L2")
    item = next(i for i in plain.items if i.competency == "delivery")
    assert item.indicators_not_shown == ("delivery indicator at L2",)
    cumulative = replace(framework, cumulative_indicators=True)
    gaps = analyze_gaps(cumulative, evaluate_values(cumulative, values), target_level="L2")
    by_key = {i.competency: i for i in gaps.items}
    assert by_key["delivery"].indicators_not_shown == (
        "delivery indicator at L1",
        "delivery indicator at L2",
    )
    # Met at L1 (discovery 2 >= 1): only L2's indicator would show, and discovery meets L2.
    assert by_key["discovery"].indicators_not_shown == ()
    # Toward L3m the trunk's levels count, the ic track's do not.
    toward = analyze_gaps(
        cumulative, evaluate_values(cumulative, {**values, "delivery": 3}), target_level="L3m"
    )
    mentoring = next(i for i in toward.items if i.competency == "mentoring")
    assert mentoring.indicators_not_shown == ("mentoring indicator at L3m",)
    low = analyze_gaps(
        cumulative, evaluate_values(cumulative, {**values, "mentoring": 0}), target_level="L3m"
    )
    mentoring = next(i for i in low.items if i.competency == "mentoring")
    assert mentoring.indicators_not_shown == (
        "mentoring indicator at L2",
        "mentoring indicator at L3m",
    )
