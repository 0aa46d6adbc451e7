"""Readiness, meets, attained level and level index on the hand-built ladder."""

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

import pytest

from app.scoring import (
    Framework,
    Rating,
    ScoringSettings,
    UnknownCompetency,
    UnknownLevel,
    UnknownTrack,
    evaluate,
    evaluate_values,
)
from app.scoring.engine import NOTHING_EXPECTED

RateFn = Callable[..., Rating]

# Meets L1 and L2, and is 60% of the way to L3m (see test_level_index).
PM = {"discovery": 3.0, "delivery": 3.0, "data": 2.0, "influence": 2.0, "mentoring": 1.0}


def test_readiness_with_area_emphasis(framework: Framework) -> None:
    # L1 weights 0.375, 0.1875, 0.1875, 0.25 (sum 1); data unrated.
    # attainment: discovery 1/1, delivery 1/2, data 0, influence min(1, 2/1) = 1
    # R = 0.375 + 0.09375 + 0 + 0.25 = 0.71875; coverage = 1 - 0.1875 = 0.8125
    evaluation = evaluate_values(framework, {"discovery": 1, "delivery": 1, "influence": 2})
    level = evaluation.level("L1")
    assert level.readiness == pytest.approx(0.71875)
    assert level.coverage == pytest.approx(0.8125)
    assert [(w.competency, w.weight) for w in level.weights] == [
        ("discovery", 0.375),
        ("delivery", 0.1875),
        ("data", 0.1875),
        ("influence", 0.25),
    ]
    assert level.meets is False
    assert level.reasons == ("readiness 0.71 is below the threshold 0.85",)


def test_readiness_without_emphasis_uses_competency_weights(framework: Framework) -> None:
    # L2 weights 2, 1, 1, 1, 2 (sum 7); attainment 1/2, 1/3, 0, 2/2, 0 (mentoring unrated)
    # R = (2*0.5 + 1/3 + 0 + 1 + 0) / 7 = (7/3) / 7 = 1/3; coverage = (2 + 1 + 1) / 7 = 4/7
    evaluation = evaluate_values(framework, {"discovery": 1, "delivery": 1, "influence": 2})
    level = evaluation.level("L2")
    assert level.readiness == pytest.approx(1 / 3)
    assert level.coverage == pytest.approx(4 / 7)
    assert [w.weight for w in level.weights] == [2.0, 1.0, 1.0, 1.0, 2.0]


def test_emphasis_splits_equally_when_area_weights_are_zero(framework: Framework) -> None:
    # craft competencies all weigh 0 -> craft's 0.75 at L1 splits 0.25 / 0.25 / 0.25.
    weightless = replace(
        framework,
        competencies=tuple(
            replace(c, weight=0.0) if c.area == "craft" else c for c in framework.competencies
        ),
    )
    level = evaluate_values(weightless, {}).level("L1")
    assert [w.weight for w in level.weights] == [0.25, 0.25, 0.25, 0.25]


def test_level_that_expects_nothing_is_never_met(framework: Framework) -> None:
    # Nothing is required at L1: no rating can show it, so it is not met (it was readiness 1,
    # coverage 1 and met, so a subject without ratings attained it).
    empty = replace(
        framework, expectations=tuple(e for e in framework.expectations if e.level != "L1")
    )
    evaluation = evaluate_values(empty, {})
    level = evaluation.level("L1")
    assert (level.readiness, level.coverage, level.meets, level.weights) == (0.0, 0.0, False, ())
    assert level.reasons == (NOTHING_EXPECTED,)
    assert (evaluation.attained_level, evaluation.level_index) == (None, 0.0)


def test_level_whose_expectations_all_weigh_nothing_weighs_them_equally(
    framework: Framework,
) -> None:
    # L2 has no emphasis, so w_L2 is the competency weight; all 0 -> each expected one weighs 1.
    weightless = replace(
        framework,
        competencies=tuple(replace(c, weight=0.0) for c in framework.competencies),
    )
    nothing = evaluate_values(weightless, {})
    level = nothing.level("L2")
    assert [w.weight for w in level.weights] == [1.0] * 5
    assert (level.readiness, level.coverage, level.meets) == (0.0, 0.0, False)
    assert nothing.attained_level is None
    # required 2, 3, 2, 2, 1: attainment 1, 2/3, 1, 1, 1 -> R = (14/3) / 5
    values = {"discovery": 2, "delivery": 2, "data": 2, "influence": 2, "mentoring": 1}
    assert evaluate_values(weightless, values).level("L2").readiness == pytest.approx(14 / 15)


def test_area_emphasis_on_weightless_areas_still_weighs_the_expectations(
    framework: Framework,
) -> None:
    # L1's emphasis names only an area none of L1's expected competencies belong to.
    skewed = replace(framework, area_emphasis={"other": {"L1": 1.0}})
    level = evaluate_values(skewed, {}).level("L1")
    assert [w.weight for w in level.weights] == [1.0] * 4
    assert (level.readiness, level.meets) == (0.0, False)


def test_critical_gap_blocks_meets_despite_high_readiness(framework: Framework) -> None:
    # L2: delivery 2 < 3 (critical). attainment 1, 2/3, 1, 1, 1
    # R = (2 + 2/3 + 1 + 1 + 2) / 7 = (20/3) / 7 ≈ 0.952 >= 0.85, but not met.
    values = {"discovery": 2, "delivery": 2, "data": 2, "influence": 2, "mentoring": 1}
    level = evaluate_values(framework, values).level("L2")
    assert level.readiness == pytest.approx(20 / 21)
    assert level.meets is False
    assert level.critical_unmet == ("delivery",)
    assert level.below_tolerance == ()
    assert level.reasons == ("critical expectation not met: delivery is 2, requires 3",)


@pytest.mark.parametrize(
    ("data", "readiness", "meets", "below_tolerance"),
    [
        # data required 2 at L2, tolerance 1: 0.9 is more than a point below.
        # R = (2 + 1 + 0.9/2 + 1 + 2) / 7 = 6.45 / 7
        (0.9, 6.45 / 7, False, ("data",)),
        # exactly one point below is allowed: R = (2 + 1 + 0.5 + 1 + 2) / 7 = 6.5 / 7
        (1.0, 6.5 / 7, True, ()),
    ],
)
def test_tolerance_rule(
    framework: Framework,
    data: float,
    readiness: float,
    meets: bool,
    below_tolerance: tuple[str, ...],
) -> None:
    values = {"discovery": 5, "delivery": 3, "data": data, "influence": 2, "mentoring": 1}
    level = evaluate_values(framework, values).level("L2")
    assert level.readiness == pytest.approx(readiness)
    assert level.meets is meets
    assert level.below_tolerance == below_tolerance


def test_tolerance_and_threshold_come_from_settings(framework: Framework) -> None:
    values = {"discovery": 5, "delivery": 3, "data": 0.9, "influence": 2, "mentoring": 1}
    lenient = ScoringSettings(gap_tolerance=1.5, readiness_threshold=0.95)
    level = evaluate_values(framework, values, settings=lenient).level("L2")
    assert level.below_tolerance == ()
    assert level.reasons == ("readiness 0.92 is below the threshold 0.95",)


def test_attained_stops_at_the_first_unmet_level(framework: Framework) -> None:
    # L1 met (R 1); L2 unmet: mentoring unrated, R = (2+1+1+1+0)/7 = 5/7; L3ic met (R 1).
    # Attained = L1 although L3ic is met; index = 1 + 5/7.
    values = {"discovery": 4, "delivery": 4, "data": 3, "influence": 3}
    evaluation = evaluate_values(framework, values, track="ic")
    assert evaluation.path == ("L1", "L2", "L3ic")
    assert [lv.meets for lv in evaluation.levels] == [True, False, True, False]
    assert evaluation.attained_level == "L1"
    assert evaluation.next_level == "L2"
    assert evaluation.level_index == pytest.approx(1 + 5 / 7)


@pytest.mark.parametrize(
    ("track", "path", "attained", "next_level", "index"),
    [
        # L3m: discovery 3/3*0.2 + delivery 0.1 + data 0.1 + influence 2/4*0.2
        #      + mentoring 1/4*0.4 = 0.2 + 0.1 + 0.1 + 0.1 + 0.1 = 0.6 -> 2.6
        ("mgmt", ("L1", "L2", "L3m"), "L2", "L3m", 2.6),
        # L3ic: 0.35*3/4 + 0.175*3/4 + 0.175*2/3 + 0.3*2/3 = 0.2625 + 0.13125 + 0.11667 + 0.2
        ("ic", ("L1", "L2", "L3ic"), "L2", "L3ic", 2 + 0.2625 + 0.13125 + 0.175 * 2 / 3 + 0.2),
        # trunk only: L2 is the top of the path -> index = rank 2
        (None, ("L1", "L2"), "L2", None, 2.0),
    ],
)
def test_level_index(
    framework: Framework,
    track: str | None,
    path: tuple[str, ...],
    attained: str,
    next_level: str | None,
    index: float,
) -> None:
    evaluation = evaluate_values(framework, PM, track=track)
    assert evaluation.path == path
    assert evaluation.attained_level == attained
    assert evaluation.next_level == next_level
    assert evaluation.level_index == pytest.approx(index)


def test_level_index_fraction_is_capped_below_one(framework: Framework) -> None:
    # L3m: everything met except mentoring 3.95 of 4 (critical): R = 1 - 0.4 * 0.05/4 = 0.995
    # -> not met, fraction capped at 0.99.
    values = {"discovery": 5, "delivery": 5, "data": 5, "influence": 5, "mentoring": 3.95}
    evaluation = evaluate_values(framework, values, track="mgmt")
    assert evaluation.level("L3m").readiness == pytest.approx(0.995)
    assert evaluation.attained_level == "L2"
    assert evaluation.level_index == pytest.approx(2.99)


def test_nothing_attained_and_top_of_track(framework: Framework) -> None:
    nothing = evaluate_values(framework, {}, track="ic")
    assert (nothing.attained_level, nothing.next_level, nothing.level_index) == (None, "L1", 0.0)
    top = evaluate_values(framework, dict.fromkeys(PM, 5.0), track="ic")
    assert (top.attained_level, top.next_level, top.level_index) == ("L3ic", None, 3.0)


def test_levels_cover_every_track_in_rank_order(framework: Framework) -> None:
    evaluation = evaluate_values(framework, PM)
    assert [lv.level for lv in evaluation.levels] == ["L1", "L2", "L3ic", "L3m"]
    assert evaluation.level("L3m").track == "mgmt"
    with pytest.raises(UnknownLevel):
        evaluation.level("L9")


def test_unknown_track_is_refused(framework: Framework) -> None:
    with pytest.raises(UnknownTrack):
        evaluate_values(framework, PM, track="sales")
    assert issubclass(UnknownTrack, ValueError)


def test_what_if_overrides_replace_aggregated_values(
    framework: Framework, rate: RateFn, as_of: datetime
) -> None:
    ratings = [rate(key, value) for key, value in PM.items()]
    base = evaluate(framework, ratings, as_of=as_of, track="mgmt")
    assert base.level_index == pytest.approx(2.6)
    # mentoring 1 -> 9 (clamped to 5): L3m R = 0.6 + 0.4 * 3/4 = 0.9, influence 2 < 4 critical
    what_if = evaluate(framework, ratings, as_of=as_of, track="mgmt", overrides={"mentoring": 9})
    assert what_if.overrides == {"mentoring": 5.0}
    assert what_if.values["mentoring"] == 5.0
    assert what_if.aggregation is not None
    assert what_if.aggregation.values["mentoring"].value == 1.0
    assert what_if.level("L3m").readiness == pytest.approx(0.9)
    assert what_if.level("L3m").critical_unmet == ("influence",)
    assert what_if.level_index == pytest.approx(2.9)
    with pytest.raises(UnknownCompetency):
        evaluate(framework, ratings, as_of=as_of, overrides={"typo": 3})


def test_evaluate_values_ignores_unknown_keys_and_has_no_rater_confidence(
    framework: Framework,
) -> None:
    evaluation = evaluate_values(framework, {**PM, "retired-skill": 5})
    assert evaluation.values == PM
    assert evaluation.aggregation is None
    assert evaluation.coverage == 1.0
    assert evaluation.confidence == 0.0


def test_the_documented_worked_example(framework: Framework, rate: RateFn, as_of: datetime) -> None:
    # README "Scoring, precisely": discovery = (3*4 + 2*3 + 1*5) / 6 = 23/6, self vs others 5 - 18/5 = 1.4;
    # Group PM readiness 0.6, level index 2.6.
    ratings = [
        rate("discovery", 4),
        rate("discovery", 3, "p1", "peer"),
        rate("discovery", 5, "me", "self"),
        *(rate(key, value) for key, value in PM.items() if key != "discovery"),
    ]
    evaluation = evaluate(framework, ratings, as_of=as_of, track="mgmt")
    assert evaluation.aggregation is not None
    discovery = evaluation.aggregation.values["discovery"]
    assert discovery.value == pytest.approx(23 / 6)
    assert discovery.self_vs_others == pytest.approx(1.4)
    assert discovery.blind_spot is True
    assert evaluation.level("L3m").readiness == pytest.approx(0.6)
    assert evaluation.level_index == pytest.approx(2.6)
