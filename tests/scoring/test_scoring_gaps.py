"""Gap analysis toward a target level, worked out by hand."""

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

import pytest

from app.scoring import (
    Framework,
    Rating,
    ScoringError,
    UnknownLevel,
    analyze_gaps,
    evaluate,
    evaluate_values,
)

RateFn = Callable[..., Rating]

# Meets L2; discovery and data are a point or more above L3m's requirements.
PERSON = {"discovery": 4.5, "delivery": 3.0, "data": 3.0, "influence": 2.0, "mentoring": 1.0}


def test_gaps_toward_the_next_level(framework: Framework) -> None:
    # L3m weights 0.2, 0.1, 0.1, 0.2, 0.4; required 3, 3, 2, 4*, 4*
    # influence 2/4:  d = 0.2 * (1 - 0.5)  = 0.1 (critical)
    # mentoring 1/4:  d = 0.4 * (1 - 0.25) = 0.3 (critical)
    # R = 1 - 0.4 = 0.6; the met items cost 0 and follow by key.
    evaluation = evaluate_values(framework, PERSON, track="mgmt")
    gaps = analyze_gaps(framework, evaluation)
    assert (gaps.target_level, gaps.target_name) == ("L3m", "Group Product Manager")
    assert gaps.readiness == pytest.approx(0.6)
    assert gaps.meets is False
    rows = [
        (item.competency, item.status, item.gap_points, item.readiness_points_lost)
        for item in gaps.items
    ]
    assert rows == [
        ("mentoring", "critical_gap", 3.0, pytest.approx(0.3)),
        ("influence", "critical_gap", 2.0, pytest.approx(0.1)),
        ("data", "exceeds", 0.0, 0.0),
        ("delivery", "met", 0.0, 0.0),
        ("discovery", "exceeds", 0.0, 0.0),
    ]
    assert (gaps.gap_count, gaps.critical_gap_count) == (2, 2)
    assert gaps.strengths == ("discovery", "data")  # margins 1.5, 1.0
    assert sum(item.readiness_points_lost for item in gaps.items) == pytest.approx(1 - 0.6)
    mentoring = gaps.items[0]
    assert mentoring.indicators_not_shown == ("mentoring indicator at L3m",)
    assert gaps.items[3].indicators_not_shown == ()
    assert gaps.reasons == evaluation.level("L3m").reasons


def test_target_on_another_track_uses_its_own_expectations(framework: Framework) -> None:
    # L3ic weights 0.35, 0.175, 0.175, 0.3; required 4*, 4, 3, 3
    # delivery 3/4:  d = 0.175 * 0.25 = 0.04375
    # influence 2/3: d = 0.3 * (1/3)  = 0.1
    # R = 1 - 0.14375 = 0.85625 >= 0.85, nothing critical, nothing > 1 point below -> met
    evaluation = evaluate_values(framework, PERSON, track="mgmt")
    gaps = analyze_gaps(framework, evaluation, target_level="L3ic")
    assert gaps.readiness == pytest.approx(0.85625)
    assert gaps.meets is True
    assert [(i.competency, i.status) for i in gaps.items] == [
        ("influence", "gap"),
        ("delivery", "gap"),
        ("data", "met"),
        ("discovery", "met"),
    ]
    assert [i.readiness_points_lost for i in gaps.items[:2]] == [
        pytest.approx(0.1),
        pytest.approx(0.04375),
    ]
    assert (gaps.gap_count, gaps.critical_gap_count, gaps.strengths) == (2, 0, ())


def test_uncertain_gap_and_perception_flags(
    framework: Framework, rate: RateFn, as_of: datetime
) -> None:
    # influence: manager 1 (w3), peer 4 (w2): mean 11/5 = 2.2,
    # spread sqrt((3*1.2² + 2*1.8²) / 5) = sqrt(2.16) ≈ 1.47 >= 1 with 2 raters -> uncertain.
    # discovery: self 5 vs manager 3 -> blind spot; delivery: self 1 vs manager 3 -> hidden.
    ratings = [
        rate("influence", 1),
        rate("influence", 4, "p1", "peer"),
        rate("discovery", 3),
        rate("discovery", 5, "me", "self"),
        rate("delivery", 3),
        rate("delivery", 1, "me", "self"),
    ]
    evaluation = evaluate(framework, ratings, as_of=as_of, track="mgmt")
    gaps = analyze_gaps(framework, evaluation, target_level="L3m")
    influence = next(item for item in gaps.items if item.competency == "influence")
    assert influence.actual == pytest.approx(2.2)
    assert influence.gap_points == pytest.approx(1.8)
    assert (influence.raters, influence.uncertain) == (2, True)
    assert influence.spread == pytest.approx(2.16**0.5)
    assert influence.indicators_not_shown == ("influence indicator at L3m",)
    mentoring = next(item for item in gaps.items if item.competency == "mentoring")
    assert (mentoring.actual, mentoring.raters, mentoring.uncertain) == (None, 0, False)
    assert gaps.blind_spots == ("discovery",)
    assert gaps.hidden_strengths == ("delivery",)


def test_gap_items_sum_to_the_missing_readiness(framework: Framework) -> None:
    evaluation = evaluate_values(framework, {"discovery": 1.3, "influence": 0.4}, track="ic")
    for level in ("L1", "L2", "L3ic", "L3m"):
        gaps = analyze_gaps(framework, evaluation, target_level=level)
        assert gaps.readiness is not None
        total = sum(item.readiness_points_lost for item in gaps.items)
        assert total == pytest.approx(1 - gaps.readiness, abs=1e-12)


def test_top_of_path_has_no_target(framework: Framework) -> None:
    evaluation = evaluate_values(framework, dict.fromkeys(PERSON, 5.0))
    gaps = analyze_gaps(framework, evaluation)
    assert (gaps.target_level, gaps.readiness, gaps.items, gaps.gap_count) == (None, None, (), 0)


def test_unknown_target_and_wrong_framework_are_refused(framework: Framework) -> None:
    evaluation = evaluate_values(framework, PERSON)
    with pytest.raises(UnknownLevel):
        analyze_gaps(framework, evaluation, target_level="L9")
    with pytest.raises(ScoringError):
        analyze_gaps(replace(framework, version=2), evaluation)


def test_critical_gaps_come_first_even_when_cheaper(framework: Framework) -> None:
    # L2 (weights 2, 1, 1, 1, 2 of 7): discovery 0 of 2 costs 2/7;
    # delivery 2 of 3 (critical) costs (1/3)/7 = 1/21 but is listed first.
    values = {"discovery": 0, "delivery": 2, "data": 2, "influence": 2, "mentoring": 1}
    gaps = analyze_gaps(framework, evaluate_values(framework, values), target_level="L2")
    assert [(i.competency, i.status) for i in gaps.items[:2]] == [
        ("delivery", "critical_gap"),
        ("discovery", "gap"),
    ]
    assert [i.readiness_points_lost for i in gaps.items[:2]] == [
        pytest.approx(1 / 21),
        pytest.approx(2 / 7),
    ]
    assert (gaps.gap_count, gaps.critical_gap_count) == (2, 1)
