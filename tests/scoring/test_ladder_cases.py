"""Hand-worked cases on the built-in product-management ladder.

Every expected number is worked out by hand in the comments and checked twice: against the
engine (floats, abs 1e-9) and against ``tests/scoring/ladder.py``, which reads the YAML with no
help from ``app/scoring`` and computes in exact fractions.

Area weights (competency weights in the YAML):
    tactical     customer_discovery 1.25, execution 1.25, technical_depth 1      (sum 3.5)
    operational  prioritization 1.25, data_driven_decisions, stakeholder_management,
                 communication, cross_functional_leadership 1 each               (sum 5.25)
    strategic    strategic_thinking 1.5, market_analysis 1, business_acumen 1    (sum 3.5)
    leadership   mentoring_and_coaching, handling_scale, organization_building   (sum 3)
Every competency is expected (r > 0) at every level and every level's emphasis adds up to 1,
so w_L(c) = e_A(L) * weight_c / area sum and R_L = sum w_L(c) * min(1, a_c / r_cL).

Required proficiency (* critical):
    competency          apm pm  senior principal group_pm
    customer_discovery  2*  3*  4      5         4
    execution           2*  3*  4      5         4
    technical_depth     1   2   3      4         3
    prioritization      1   2*  3      4         4*
    data_driven         1   2   3      4         3
    stakeholder_mgmt    1   2   3*     4*        4
    communication       1   2   3*     4         4
    cross_functional    1   2   3      4         4
    strategic_thinking  1   2   3*     5*        4
    market_analysis     1   2   3      4         3
    business_acumen     1   2   3      4         3
    mentoring           1   2   3      3         4*
    handling_scale      1   2   3      4*        4
    organization_bldg   1   1   2      2         4*
"""

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path

import pytest

from app.frameworks.compile import compile_framework
from app.frameworks.document import parse_document
from app.frameworks.files import load_file
from app.scoring import (
    Evaluation,
    Framework,
    Rating,
    ScoringSettings,
    aggregate,
    analyze_gaps,
    evaluate,
    evaluate_values,
    recommend,
)
from tests.scoring.ladder import LADDER_PATH, Ladder, load_ladder

F = Fraction
AS_OF = datetime(2025, 6, 30, 12, 0, tzinfo=UTC)
ABS = 1e-9

COMPETENCIES = (
    "customer_discovery",
    "execution",
    "technical_depth",
    "prioritization",
    "data_driven_decisions",
    "stakeholder_management",
    "communication",
    "cross_functional_leadership",
    "strategic_thinking",
    "market_analysis",
    "business_acumen",
    "mentoring_and_coaching",
    "handling_scale",
    "organization_building",
)


@pytest.fixture(scope="module")
def pm_ladder() -> Framework:
    """The built-in ladder, loaded and compiled exactly the way the app does it."""
    path = Path(__file__).resolve().parents[2] / "app/frameworks/builtin/product-management.yaml"
    assert path == LADDER_PATH
    return compile_framework(parse_document(load_file(path.read_bytes(), path.name)), version=1)


@pytest.fixture(scope="module")
def ref() -> Ladder:
    """The independent exact-fraction reading of the same YAML."""
    return load_ladder()


def approx(value: Fraction | float) -> object:
    return pytest.approx(float(value), abs=ABS)


def at(days_ago: float) -> datetime:
    return AS_OF - timedelta(days=days_ago)


def ratings_from(table: Mapping[str, tuple[int, int, int]]) -> list[Rating]:
    """One manager, one peer and a self rating per competency: (manager, peer, self)."""
    ratings = []
    for competency, (manager, peer, own) in table.items():
        ratings += [
            Rating(competency, manager, "mgr-ana", "manager", at(10)),
            Rating(competency, peer, "peer-ben", "peer", at(12)),
            Rating(competency, own, "subject", "self", at(20)),
        ]
    return ratings


def as_floats(values: Mapping[str, Fraction | float]) -> dict[str, float]:
    return {key: float(value) for key, value in values.items()}


# --------------------------------------------------------------------------------------------
# w_L(c), worked out by hand
# --------------------------------------------------------------------------------------------


# Per level: the emphasis of tactical / operational / strategic / leadership, then w_L(c).
#   pm        0.45/0.30/0.15/0.10: discovery 0.45*1.25/3.5 = 9/56, technical 0.45/3.5 = 9/70,
#             prioritization 0.30*1.25/5.25 = 1/14, other operational 0.30/5.25 = 2/35,
#             strategic_thinking 0.15*1.5/3.5 = 9/140, market 0.15/3.5 = 3/70, leadership 0.1/3
#   senior_pm 0.30/0.35/0.20/0.15: discovery 0.30*1.25/3.5 = 3/28, technical 0.30/3.5 = 3/35,
#             prioritization 0.35*1.25/5.25 = 1/12, other operational 0.35/5.25 = 1/15,
#             strategic_thinking 0.20*1.5/3.5 = 3/35, market 0.2/3.5 = 2/35, leadership 0.05
#   principal 0.25/0.25/0.30/0.20: discovery 0.3125/3.5 = 5/56, technical 0.25/3.5 = 1/14,
#             prioritization 0.3125/5.25 = 5/84, other operational 0.25/5.25 = 1/21,
#             strategic_thinking 0.45/3.5 = 9/70, market 0.3/3.5 = 3/35, leadership 1/15
#   group_pm  0.15/0.30/0.25/0.30: discovery 0.1875/3.5 = 3/56, technical 0.15/3.5 = 3/70,
#             prioritization 1/14, other operational 2/35, strategic_thinking 0.375/3.5 = 3/28,
#             market 0.25/3.5 = 1/14, leadership 0.1
def _level_weights(
    tactical: tuple[Fraction, Fraction],
    operational: tuple[Fraction, Fraction],
    strategic: tuple[Fraction, Fraction],
    leadership: Fraction,
) -> dict[str, Fraction]:
    """(weight of the 1.25 / 1.5 competency, weight of a weight-1 competency) per area."""
    heavy_t, light_t = tactical
    heavy_o, light_o = operational
    heavy_s, light_s = strategic
    return {
        "customer_discovery": heavy_t,
        "execution": heavy_t,
        "technical_depth": light_t,
        "prioritization": heavy_o,
        "data_driven_decisions": light_o,
        "stakeholder_management": light_o,
        "communication": light_o,
        "cross_functional_leadership": light_o,
        "strategic_thinking": heavy_s,
        "market_analysis": light_s,
        "business_acumen": light_s,
        "mentoring_and_coaching": leadership,
        "handling_scale": leadership,
        "organization_building": leadership,
    }


HAND_WEIGHTS = {
    "pm": _level_weights(
        (F(9, 56), F(9, 70)), (F(1, 14), F(2, 35)), (F(9, 140), F(3, 70)), F(1, 30)
    ),
    "senior_pm": _level_weights(
        (F(3, 28), F(3, 35)), (F(1, 12), F(1, 15)), (F(3, 35), F(2, 35)), F(1, 20)
    ),
    "principal_pm": _level_weights(
        (F(5, 56), F(1, 14)), (F(5, 84), F(1, 21)), (F(9, 70), F(3, 35)), F(1, 15)
    ),
    "group_pm": _level_weights(
        (F(3, 56), F(3, 70)), (F(1, 14), F(2, 35)), (F(3, 28), F(1, 14)), F(1, 10)
    ),
}


@pytest.mark.parametrize("level", sorted(HAND_WEIGHTS))
def test_level_weights_are_the_hand_worked_shares(
    pm_ladder: Framework, ref: Ladder, level: str
) -> None:
    hand = HAND_WEIGHTS[level]
    assert sum(hand.values()) == 1  # each level's emphasis adds up to 1
    assert ref.weights(level) == hand
    engine = {w.competency: w.weight for w in evaluate_values(pm_ladder, {}).level(level).weights}
    assert list(engine) == list(COMPETENCIES)
    assert engine == {key: approx(weight) for key, weight in hand.items()}


# --------------------------------------------------------------------------------------------
# Case 1: a solid PM about 60% of the way to Senior PM
# --------------------------------------------------------------------------------------------

# (manager, peer, self); a_c = (3*manager + 2*peer + 1*self) / 6
SOLID_PM_RATINGS = {
    "customer_discovery": (3, 3, 3),  # 18/6 = 3
    "execution": (3, 3, 3),  # 3
    "technical_depth": (1, 2, 2),  # (3 + 4 + 2)/6 = 1.5
    "prioritization": (2, 2, 2),  # 2
    "data_driven_decisions": (2, 2, 2),  # 2
    "stakeholder_management": (2, 2, 2),  # 2
    "communication": (2, 2, 2),  # 2
    "cross_functional_leadership": (2, 1, 1),  # (6 + 2 + 1)/6 = 1.5
    "strategic_thinking": (1, 2, 2),  # 1.5
    "market_analysis": (2, 1, 1),  # 1.5
    "business_acumen": (1, 2, 2),  # 1.5
    "mentoring_and_coaching": (1, 2, 2),  # 1.5
    "handling_scale": (2, 1, 1),  # 1.5
    "organization_building": (1, 1, 1),  # 1
}
SOLID_PM_VALUES = {
    "customer_discovery": 3.0,
    "execution": 3.0,
    "technical_depth": 1.5,
    "prioritization": 2.0,
    "data_driven_decisions": 2.0,
    "stakeholder_management": 2.0,
    "communication": 2.0,
    "cross_functional_leadership": 1.5,
    "strategic_thinking": 1.5,
    "market_analysis": 1.5,
    "business_acumen": 1.5,
    "mentoring_and_coaching": 1.5,
    "handling_scale": 1.5,
    "organization_building": 1.0,
}
# Ratings that must not count: the manager's own older rating (superseded by the one 10 days
# ago) and a former manager's rating 400 days back, outside the 365-day window. Counted, the
# latter would pull execution to (3*3 + 3*1 + 2*3 + 3)/9 = 7/3 < 3 and break the PM verdict.
SOLID_PM_NOISE = [
    Rating("customer_discovery", 2, "mgr-ana", "manager", at(200)),
    Rating("execution", 1, "mgr-old", "manager", at(400)),
]
SOLID_PM = ratings_from(SOLID_PM_RATINGS) + SOLID_PM_NOISE

# R_pm: every value meets PM except technical_depth, cross_functional, the three strategic
# and mentoring/handling_scale, each at 1.5/2 = 0.75. Points lost = 0.25 * (9/70 + 2/35 +
# 0.15 + 2/30) = 0.25 * 169/420 = 169/1680, so R_pm = 1511/1680 ≈ 0.8994 >= 0.85.
R_PM_SOLID = F(1511, 1680)
# R_senior (weights 3/28, 3/35, 1/12, 1/15, 3/35, 2/35, 1/20):
#   discovery 3/28*3/4 + execution 3/28*3/4                = 9/56
#   technical 3/35*1.5/3 + strategic 3/35*1.5/3             = 3/35
#   market 2/35*1/2 + business 2/35*1/2                     = 2/35
#   prioritization 1/12*2/3 + 3 * (1/15*2/3) + xfn 1/15*1/2 = 1/18 + 2/15 + 1/30 = 2/9
#   mentoring, scale 1/20*1.5/3, organization 1/20*1/2      = 3/40
#   R = 9/56 + 5/35 + 2/9 + 3/40 = (765 + 360 + 560 + 189)/2520 = 757/1260 ≈ 0.6008
R_SENIOR_SOLID = F(757, 1260)


def test_solid_pm_is_sixty_percent_of_the_way_to_senior(pm_ladder: Framework, ref: Ladder) -> None:
    evaluation = evaluate(pm_ladder, SOLID_PM, as_of=AS_OF)
    assert dict(evaluation.values) == {key: approx(v) for key, v in SOLID_PM_VALUES.items()}
    assert ref.readiness("pm", SOLID_PM_VALUES) == R_PM_SOLID
    assert ref.readiness("senior_pm", SOLID_PM_VALUES) == R_SENIOR_SOLID
    assert float(R_SENIOR_SOLID) == pytest.approx(0.60, abs=0.001)

    readiness = {level.level: level.readiness for level in evaluation.levels}
    assert readiness["apm"] == approx(1)  # every value >= its APM requirement
    assert readiness["pm"] == approx(R_PM_SOLID)
    assert readiness["senior_pm"] == approx(R_SENIOR_SOLID)
    for level, value in readiness.items():
        assert value == approx(ref.readiness(level, SOLID_PM_VALUES)), level

    assert evaluation.level("pm").meets is True
    assert evaluation.level("senior_pm").meets is False
    assert (evaluation.attained_level, evaluation.next_level) == ("pm", "senior_pm")
    # level index = rank(pm) + R_senior = 2 + 757/1260 = 3277/1260 ≈ 2.6008
    assert evaluation.level_index == approx(2 + R_SENIOR_SOLID)
    # all 14 rated (coverage 1) by 3 counted raters: confidence = 1 * (1 - 0.5^3) = 0.875;
    # the stale former manager is not a fourth.
    assert evaluation.coverage == approx(1)
    assert evaluation.confidence == approx(0.875)


# --------------------------------------------------------------------------------------------
# Case 2: a strong strategist held back by execution, a critical PM expectation
# --------------------------------------------------------------------------------------------

STRATEGIST_RATINGS = {
    "customer_discovery": (3, 3, 3),
    "execution": (2, 2, 3),  # (6 + 4 + 3)/6 = 13/6 ≈ 2.17; self 3 vs others 2: blind spot
    "technical_depth": (2, 2, 2),
    "prioritization": (3, 3, 3),
    "data_driven_decisions": (3, 3, 3),
    "stakeholder_management": (4, 4, 4),
    "communication": (4, 4, 4),
    "cross_functional_leadership": (3, 3, 3),
    "strategic_thinking": (4, 4, 4),
    "market_analysis": (4, 4, 4),
    "business_acumen": (4, 4, 4),
    "mentoring_and_coaching": (2, 2, 2),
    "handling_scale": (2, 2, 2),
    "organization_building": (1, 1, 1),
}
STRATEGIST_VALUES = {key: F(manager) for key, (manager, _, _) in STRATEGIST_RATINGS.items()}
STRATEGIST_VALUES["execution"] = F(13, 6)
# R_pm: only execution falls short: 9/56 * (1 - (13/6)/3) = 9/56 * 5/18 = 5/112,
# so R_pm = 107/112 ≈ 0.955 >= 0.85 - yet execution (2.17 < 3) is critical at PM.
R_PM_STRATEGIST = F(107, 112)


def test_strategist_with_a_critical_execution_gap_stops_at_apm(
    pm_ladder: Framework, ref: Ladder
) -> None:
    evaluation = evaluate(pm_ladder, ratings_from(STRATEGIST_RATINGS), as_of=AS_OF)
    assert evaluation.values["execution"] == approx(F(13, 6))
    assert ref.readiness("pm", STRATEGIST_VALUES) == R_PM_STRATEGIST
    assert ref.critical_unmet("pm", STRATEGIST_VALUES) == ["execution"]

    pm = evaluation.level("pm")
    assert pm.readiness == approx(R_PM_STRATEGIST)
    assert pm.readiness >= 0.85
    assert pm.meets is False
    assert pm.critical_unmet == ("execution",)
    assert pm.below_tolerance == ()  # 13/6 is less than one point below 3
    assert pm.reasons == ("critical expectation not met: execution is 2.17, requires 3",)

    # APM asks execution 2* and gets 13/6: every APM requirement met, R_apm = 1.
    assert evaluation.level("apm").readiness == approx(1)
    assert evaluation.level("apm").meets is True
    assert (evaluation.attained_level, evaluation.next_level) == ("apm", "pm")
    assert evaluation.level_index == approx(1 + R_PM_STRATEGIST)  # 219/112 ≈ 1.955
    aggregation = evaluation.aggregation
    assert aggregation is not None
    assert aggregation.values["execution"].self_vs_others == approx(1)  # 3 - 2
    assert aggregation.values["execution"].blind_spot is True


def test_strategist_what_if_execution_three_reaches_senior(
    pm_ladder: Framework, ref: Ladder
) -> None:
    # With execution 3 the senior_pm points lost are discovery 3/28*1/4 + execution 3/28*1/4
    # + technical 3/35*1/3 + mentoring, scale 1/20*1/3 each + organization 1/20*1/2
    # = 3/56 + 1/35 + 1/30 + 1/40 = (45 + 24 + 28 + 21)/840 = 118/840, R = 361/420 ≈ 0.8595,
    # the criticals (stakeholder 4, communication 4, strategy 4 >= 3) hold and no gap exceeds 1:
    # the one critical gap was all that kept this person two levels down.
    what_if = dict(STRATEGIST_VALUES, execution=F(3))
    assert ref.readiness("senior_pm", what_if) == F(361, 420)
    assert ref.meets("senior_pm", what_if)
    evaluation = evaluate(
        pm_ladder, ratings_from(STRATEGIST_RATINGS), as_of=AS_OF, overrides={"execution": 3}
    )
    assert evaluation.level("senior_pm").readiness == approx(F(361, 420))
    assert (evaluation.attained_level, evaluation.next_level) == ("senior_pm", None)
    assert evaluation.level_index == approx(3)  # top of the trunk: rank only


def test_strategist_gaps_toward_pm(pm_ladder: Framework) -> None:
    evaluation = evaluate(pm_ladder, ratings_from(STRATEGIST_RATINGS), as_of=AS_OF)
    gaps = analyze_gaps(pm_ladder, evaluation)
    assert gaps.target_level == "pm"
    first = gaps.items[0]
    assert (first.competency, first.status, first.critical) == ("execution", "critical_gap", True)
    assert first.gap_points == approx(F(5, 6))  # 3 - 13/6
    assert first.readiness_points_lost == approx(F(5, 112))  # the whole 1 - R_pm
    assert all(item.readiness_points_lost == approx(0) for item in gaps.items[1:])
    assert (gaps.gap_count, gaps.critical_gap_count) == (1, 1)
    # At least one point above PM: +2 for the strategic three, stakeholder and communication
    # (4 vs 2), +1 for cross-functional, data and prioritization (3 vs 2); by margin, then key.
    assert gaps.strengths == (
        "business_acumen",
        "communication",
        "market_analysis",
        "stakeholder_management",
        "strategic_thinking",
        "cross_functional_leadership",
        "data_driven_decisions",
        "prioritization",
    )
    assert gaps.blind_spots == ("execution",)


# --------------------------------------------------------------------------------------------
# Case 3: a calibrated rating overrides a generous self rating
# --------------------------------------------------------------------------------------------


def _solid_pm_with_calibrated_strategy(calibrated: bool) -> list[Rating]:
    ratings = [r for r in ratings_from(SOLID_PM_RATINGS) if r.competency != "strategic_thinking"]
    ratings += [
        Rating("strategic_thinking", 5, "subject", "self", at(20)),
        Rating("strategic_thinking", 3, "mgr-ana", "manager", at(10)),
    ]
    if calibrated:
        ratings.append(Rating("strategic_thinking", 2, "calibration-q2", "calibrated", at(5)))
    return ratings


def test_calibrated_rating_overrides_generous_self_rating(
    pm_ladder: Framework, ref: Ladder
) -> None:
    with_calibration = aggregate(
        pm_ladder, _solid_pm_with_calibrated_strategy(True), as_of=AS_OF
    ).values["strategic_thinking"]
    without = aggregate(pm_ladder, _solid_pm_with_calibrated_strategy(False), as_of=AS_OF).values[
        "strategic_thinking"
    ]
    # Calibrated: a_c = 2 whatever the others say.
    assert (with_calibration.value, with_calibration.calibrated) == (approx(2), True)
    # Without it: (manager 3*3 + self 5*1) / (3 + 1) = 14/4 = 3.5.
    assert (without.value, without.calibrated) == (approx(3.5), False)
    # Spread and the self-vs-others flag still describe the two non-calibrated raters:
    # spread = sqrt((3*(3 - 3.5)^2 + 1*(5 - 3.5)^2) / 4) = sqrt(3/4); self 5 - manager 3 = 2.
    for value in (with_calibration, without):
        assert value.raters == 2
        assert value.spread == approx(math.sqrt(0.75))
        assert value.self_vs_others == approx(2)
        assert value.blind_spot is True

    # Senior PM asks strategic_thinking 3* (w = 3/35). Case 1 had 1.5 (attainment 1/2):
    #   calibrated 2:  R = 757/1260 + 3/35*(2/3 - 1/2) = 757/1260 + 18/1260 = 775/1260
    #   without, 3.5:  R = 757/1260 + 3/35*(1 - 1/2)   = 757/1260 + 54/1260 = 811/1260
    calibrated_values = dict(SOLID_PM_VALUES, strategic_thinking=2.0)
    generous_values = dict(SOLID_PM_VALUES, strategic_thinking=3.5)
    assert ref.readiness("senior_pm", calibrated_values) == F(775, 1260)
    assert ref.readiness("senior_pm", generous_values) == F(811, 1260)
    senior_calibrated = evaluate(
        pm_ladder, _solid_pm_with_calibrated_strategy(True), as_of=AS_OF
    ).level("senior_pm")
    senior_generous = evaluate(
        pm_ladder, _solid_pm_with_calibrated_strategy(False), as_of=AS_OF
    ).level("senior_pm")
    assert senior_calibrated.readiness == approx(F(775, 1260))
    assert senior_generous.readiness == approx(F(811, 1260))
    assert "strategic_thinking" in senior_calibrated.critical_unmet
    assert "strategic_thinking" not in senior_generous.critical_unmet


# --------------------------------------------------------------------------------------------
# Case 4: role weights (manager 3, peer 2, self 1) and perception flags
# --------------------------------------------------------------------------------------------

# competency: [(role, rater, proficiency)], mean, self - others, spread^2, blind, hidden
ROLE_WEIGHT_CASES = [
    # (3*2 + 2*3 + 2*2 + 1*4)/8 = 20/8 = 2.5; others (6 + 6 + 4)/7 = 16/7, self 4 - 16/7 = 12/7
    # spread^2 = (3*0.25 + 2*0.25 + 2*0.25 + 1*2.25)/8 = 4/8
    (
        "communication",
        [
            ("manager", "mgr-ana", 2),
            ("peer", "peer-ben", 3),
            ("peer", "peer-cy", 2),
            ("self", "subject", 4),
        ],
        F(5, 2),
        F(12, 7),
        F(1, 2),
        True,
        False,
    ),
    # (6 + 4 + 3)/6 = 13/6; self 3 - others 2 = exactly 1 -> still a blind spot
    # spread^2 = (5*(1/6)^2 + 1*(5/6)^2)/6 = (30/36)/6 = 5/36
    (
        "stakeholder_management",
        [("manager", "mgr-ana", 2), ("peer", "peer-ben", 2), ("self", "subject", 3)],
        F(13, 6),
        F(1),
        F(5, 36),
        True,
        False,
    ),
    # (6 + 6 + 3)/6 = 2.5; others (6 + 6)/5 = 2.4, self 3 - 2.4 = 0.6 -> no flag
    (
        "market_analysis",
        [("manager", "mgr-ana", 2), ("peer", "peer-ben", 3), ("self", "subject", 3)],
        F(5, 2),
        F(3, 5),
        F(1, 4),
        False,
        False,
    ),
    # (9 + 6 + 1)/6 = 8/3; self 1 - others 3 = -2 -> hidden strength
    # spread^2 = (5*(1/3)^2 + 1*(5/3)^2)/6 = (30/9)/6 = 5/9
    (
        "data_driven_decisions",
        [("manager", "mgr-ana", 3), ("peer", "peer-ben", 3), ("self", "subject", 1)],
        F(8, 3),
        F(-2),
        F(5, 9),
        False,
        True,
    ),
]
ROLE_WEIGHT_RATINGS = [
    Rating(competency, proficiency, rater, role, at(15))
    for competency, raters, *_ in ROLE_WEIGHT_CASES
    for role, rater, proficiency in raters
]


@pytest.mark.parametrize(
    ("competency", "raters", "mean", "self_vs_others", "spread_sq", "blind", "hidden"),
    ROLE_WEIGHT_CASES,
    ids=[case[0] for case in ROLE_WEIGHT_CASES],
)
def test_role_weighted_mean_and_perception_flags(
    pm_ladder: Framework,
    competency: str,
    raters: Sequence[tuple[str, str, int]],
    mean: Fraction,
    self_vs_others: Fraction,
    spread_sq: Fraction,
    blind: bool,
    hidden: bool,
) -> None:
    value = aggregate(pm_ladder, ROLE_WEIGHT_RATINGS, as_of=AS_OF).values[competency]
    assert value.value == approx(mean)
    assert value.self_vs_others == approx(self_vs_others)
    assert value.spread == approx(math.sqrt(spread_sq))
    assert value.raters == len(raters)
    assert (value.blind_spot, value.hidden_strength) == (blind, hidden)
    weight = {"manager": 3.0, "peer": 2.0, "self": 1.0}
    assert sorted((c.rater_ref, c.weight) for c in value.contributions) == sorted(
        (rater, weight[role]) for role, rater, _ in raters
    )


def test_role_weights_flow_into_flags_and_confidence(pm_ladder: Framework) -> None:
    evaluation = evaluate(pm_ladder, ROLE_WEIGHT_RATINGS, as_of=AS_OF)
    gaps = analyze_gaps(pm_ladder, evaluation)
    assert gaps.blind_spots == ("communication", "stakeholder_management")
    assert gaps.hidden_strengths == ("data_driven_decisions",)
    # 4 of the 15.25 competency-weight points are rated: coverage 4/15.25 = 16/61; four
    # distinct raters (mgr-ana, peer-ben, peer-cy, subject): confidence 16/61 * 15/16 = 15/61.
    assert evaluation.coverage == approx(F(16, 61))
    assert evaluation.confidence == approx(F(15, 61))
    # Equal role weights turn communication into the plain mean (2 + 3 + 2 + 4)/4 = 11/4.
    equal = ScoringSettings(role_weights={"manager": 1.0, "peer": 1.0, "self": 1.0})
    value = aggregate(pm_ladder, ROLE_WEIGHT_RATINGS, as_of=AS_OF, settings=equal)
    assert value.values["communication"].value == approx(F(11, 4))


# --------------------------------------------------------------------------------------------
# Case 5: gap analysis of the solid PM toward Senior PM
# --------------------------------------------------------------------------------------------

# d_c = w_senior(c) * (1 - min(1, a_c / r_c)) (sum of w = 1), in the documented order:
# critical gaps first, then d_c descending, then key.
SOLID_PM_GAPS = [
    # competency, status, required, actual, d_c
    ("strategic_thinking", "critical_gap", 3, 1.5, F(3, 35) * F(1, 2)),  # 3/70
    ("communication", "critical_gap", 3, 2.0, F(1, 15) * F(1, 3)),  # 1/45
    ("stakeholder_management", "critical_gap", 3, 2.0, F(1, 15) * F(1, 3)),  # 1/45
    ("technical_depth", "gap", 3, 1.5, F(3, 35) * F(1, 2)),  # 3/70 ≈ 0.0429
    ("cross_functional_leadership", "gap", 3, 1.5, F(1, 15) * F(1, 2)),  # 1/30
    ("business_acumen", "gap", 3, 1.5, F(2, 35) * F(1, 2)),  # 1/35 ≈ 0.0286
    ("market_analysis", "gap", 3, 1.5, F(2, 35) * F(1, 2)),  # 1/35
    ("prioritization", "gap", 3, 2.0, F(1, 12) * F(1, 3)),  # 1/36 ≈ 0.0278
    ("customer_discovery", "gap", 4, 3.0, F(3, 28) * F(1, 4)),  # 3/112 ≈ 0.0268
    ("execution", "gap", 4, 3.0, F(3, 28) * F(1, 4)),  # 3/112
    ("handling_scale", "gap", 3, 1.5, F(1, 20) * F(1, 2)),  # 1/40
    ("mentoring_and_coaching", "gap", 3, 1.5, F(1, 20) * F(1, 2)),  # 1/40
    ("organization_building", "gap", 2, 1.0, F(1, 20) * F(1, 2)),  # 1/40
    ("data_driven_decisions", "gap", 3, 2.0, F(1, 15) * F(1, 3)),  # 1/45 ≈ 0.0222
]


def test_gap_analysis_of_the_solid_pm_toward_senior(pm_ladder: Framework, ref: Ladder) -> None:
    hand = {key: d for key, *_, d in SOLID_PM_GAPS}
    # The d_c add up to 1 - R: 503/1260 = 1 - 757/1260.
    assert sum(hand.values()) == F(503, 1260) == 1 - R_SENIOR_SOLID
    assert ref.points_lost("senior_pm", SOLID_PM_VALUES) == hand

    gaps = analyze_gaps(pm_ladder, evaluate(pm_ladder, SOLID_PM, as_of=AS_OF))
    assert (gaps.target_level, gaps.meets) == ("senior_pm", False)
    assert gaps.readiness == approx(R_SENIOR_SOLID)
    assert [
        (i.competency, i.status, i.required, i.actual, i.readiness_points_lost) for i in gaps.items
    ] == [(key, status, r, approx(a), approx(d)) for key, status, r, a, d in SOLID_PM_GAPS]
    assert math.fsum(i.readiness_points_lost for i in gaps.items) == approx(1 - R_SENIOR_SOLID)
    assert [i.gap_points for i in gaps.items[:3]] == [approx(1.5), approx(1), approx(1)]
    assert (gaps.gap_count, gaps.critical_gap_count, gaps.strengths) == (14, 3, ())
    assert gaps.items[0].indicators_not_shown == ref.indicators[("strategic_thinking", "senior_pm")]
    assert len(gaps.items[0].indicators_not_shown) == 3
    assert not any(item.uncertain for item in gaps.items)  # largest spread is 0.5


# --------------------------------------------------------------------------------------------
# Case 6: development plans
# --------------------------------------------------------------------------------------------

# An APM exactly at the APM bar: discovery and execution 2, everything else 1.
APM_VALUES = dict.fromkeys(COMPETENCIES, 1.0) | {"customer_discovery": 2.0, "execution": 2.0}
# A Senior PM exactly at the Senior PM bar.
SENIOR_VALUES = {
    "customer_discovery": 4.0,
    "execution": 4.0,
    "technical_depth": 3.0,
    "prioritization": 3.0,
    "data_driven_decisions": 3.0,
    "stakeholder_management": 3.0,
    "communication": 3.0,
    "cross_functional_leadership": 3.0,
    "strategic_thinking": 3.0,
    "market_analysis": 3.0,
    "business_acumen": 3.0,
    "mentoring_and_coaching": 3.0,
    "handling_scale": 3.0,
    "organization_building": 2.0,
}


@dataclass(frozen=True)
class PlanCase:
    id: str
    values: Mapping[str, float]  # the subject's a_c (for a rated subject: what they aggregate to)
    ratings: Sequence[Rating] | None
    track: str | None
    target_level: str | None
    budget_hours: float | None
    target: str
    readiness_now: Fraction
    steps: Sequence[tuple[str, float, Fraction]]  # activity, effort hours, readiness after
    stop_reason: str
    target_met: bool

    def evaluation(self, framework: Framework) -> Evaluation:
        if self.ratings is not None:
            return evaluate(framework, self.ratings, as_of=AS_OF, track=self.track)
        return evaluate_values(framework, self.values, track=self.track)


# APM -> PM. R_pm now: discovery, execution 2/3 (w 9/56 each), organization 1/1 (w 1/30), all
# else 1/2: R = 3/14 + 1/30 + 1/2*(1 - 9/28 - 1/30) = (180 + 28 + 271)/840 = 479/840 ≈ 0.570.
# Step 1, gain per hour of the best candidates in the PM band (rank 2; the classic PM book is
# now an APM-band read only):
#   prioritization_workshop prioritization 1->2 (1/14*1/2) + stakeholder 1->2 (2/35*1/2)
#                          = 1/28 + 1/35 = 9/140 in 16 h = 9/2240 ≈ 0.0040/h
#   certified_product_owner execution 2->3 (9/56*1/3 = 3/56) + prioritization 1->2 (1/28)
#                          = 5/56 in 24 h = 5/1344 ≈ 0.0037/h
#   stakeholder_map        stakeholder 1->3 (capped at r = 2: 1/35) + communication 1->2 (1/35)
#                          = 2/35 in 16 h = 1/280 ≈ 0.0036/h
#   write_specs...review   execution 2->3 (3/56) + technical 1->2 (9/70*1/2 = 9/140)
#                          = 33/280 in 40 h = 33/11200 ≈ 0.0029/h
# -> the workshop: R = 479/840 + 54/840 = 533/840.
# Step 2: prioritization is met, so the CPO now adds only execution (3/56 in 24 h ≈ 0.0022/h);
#   write_specs' 33/280 in 40 h (≈ 0.0029/h) beats it and system_design_course (technical
#   9/140 + scale 1/60 = 17/210 in 30 h ≈ 0.0027/h): R = 533/840 + 99/840 = 79/105.
# Step 3: run_ab_experiment, data 1->3 (capped: 2/35*1/2 = 1/35) + discovery 2->3 (3/56)
#   = 23/280 in 40 h ≈ 0.0021/h, ahead of stakeholder_map (communication 1/35 in 16 h) and
#   competitive_teardown (market 3/140 + strategy 9/280 = 3/56 in 30 h), both 1/560 ≈ 0.0018/h:
#   R = 632/840 + 69/840 = 701/840 ≈ 0.835; discovery 3 meets the last critical gap.
# Step 4: stakeholder_map and competitive_teardown tie exactly at 1/560 per hour; the shorter
#   effort (16 h vs 30 h) wins: R = 701/840 + 24/840 = 725/840 = 145/168 ≈ 0.863 >= 0.85,
#   criticals 3/3/2 >= 3/3/2 and nothing more than 1 point short: met after 112 h.
APM_TO_PM = PlanCase(
    id="apm_to_pm",
    values=APM_VALUES,
    ratings=None,
    track=None,
    target_level=None,
    budget_hours=None,
    target="pm",
    readiness_now=F(479, 840),
    steps=[
        ("prioritization_framework_workshop", 16, F(533, 840)),
        ("write_specs_with_engineering_review", 40, F(79, 105)),
        ("run_ab_experiment", 40, F(701, 840)),
        ("stakeholder_map_and_alignment", 16, F(145, 168)),
    ],
    stop_reason="target_met",
    target_met=True,
)
# Same APM with 40 h: after the workshop (16 h) write_specs (40 h) no longer fits the 24 h
# left; the best that fits is certified_product_owner, execution 2->3 (3/56 = 45/840 in 24 h,
# 1/448 ≈ 0.0022/h, ahead of stakeholder_map's 1/560 and find_a_mentor's 1/35 in 20 h):
# R = 578/840 = 289/420 ≈ 0.688 at exactly 40 h, with discovery 2 still short of its 3*.
APM_TO_PM_40H = PlanCase(
    id="apm_to_pm_40h",
    values=APM_VALUES,
    ratings=None,
    track=None,
    target_level=None,
    budget_hours=40,
    target="pm",
    readiness_now=F(479, 840),
    steps=[
        ("prioritization_framework_workshop", 16, F(533, 840)),
        ("certified_product_owner", 24, F(289, 420)),
    ],
    stop_reason="budget",
    target_met=False,
)
# Solid PM (case 1) -> Senior PM, R = 757/1260 now. Step 1:
#   prioritization_workshop  prioritization 2->3 (1/12*1/3) + stakeholder 2->3 (1/15*1/3)
#                            = 1/36 + 1/45 = 1/20 in 16 h = 1/320 ≈ 0.0031/h
#   stakeholder_map          stakeholder 2->4 (capped: 1/45), communication 2->3 (1/45)
#                            = 2/45 in 16 h = 1/360 ≈ 0.0028/h
#   find_a_mentor            communication 2->3, stakeholder 2->3 = 2/45 in 20 h ≈ 0.0022/h
#   system_design_course     technical 1.5->3.5 (capped: 3/35*1/2) + scale 1.5->2.5 (1/20*1/3)
#                            = 3/70 + 1/60 = 5/84 in 30 h = 1/504 ≈ 0.0020/h
# R = 757/1260 + 63/1260 = 41/63. Step 2: stakeholder is met, so the map and the mentor fall
# to 1/45 (communication only); system_design (1/504 per hour) edges out competitive_teardown
# (market 1.5->3.5 capped 1/35 + strategy 1.5->2.5 1/35 = 2/35 in 30 h = 1/525 per hour).
SOLID_PM_TO_SENIOR = PlanCase(
    id="solid_pm_to_senior",
    values=SOLID_PM_VALUES,
    ratings=SOLID_PM,
    track=None,
    target_level=None,
    budget_hours=None,
    target="senior_pm",
    readiness_now=R_SENIOR_SOLID,
    steps=[
        ("prioritization_framework_workshop", 16, F(41, 63)),
        ("system_design_course", 30, F(179, 252)),  # + 5/84
        ("competitive_teardown", 30, F(967, 1260)),  # + 2/35
        ("stakeholder_map_and_alignment", 16, F(199, 252)),  # communication 2->3: + 1/45
        # okrs: business 1.5->3.5 (capped 1/35) + data 2->3 (1/45) = 16/315 in 40 h ≈ 0.00127/h
        # just ahead of run_ab_experiment (data 1/45 + discovery 3/112 = 247/5040 in 40 h)
        ("set_and_run_quarterly_okrs", 40, F(353, 420)),
        # guild: mentoring 1.5->2.5 (1/60) + organization 1->2 (1/40) = 1/24 in 60 h ≈ 0.00069/h
        # over run_ab (3/112 in 40 h ≈ 0.00067/h) and mentor_a_junior_pm (1/40 in 40 h)
        ("run_pm_guild", 60, F(247, 280)),
        ("run_ab_experiment", 40, F(509, 560)),  # discovery 3->4: + 3/112
        # strategy 2.5->3.5 (3/35*1/6 = 1/70 in 25 h ≈ 0.00057/h): the critical 3* is met
        ("read_strategy_classic", 25, F(517, 560)),
        # R ≈ 0.92 and no critical gap left, but cross-functional 1.5 is more than 1 below 3;
        # the initiative (1/15*1/3 = 1/45 in 40 h) beats the 160-h launch (101/1680)
        ("lead_cross_functional_initiative", 40, F(953, 1008)),
    ],
    stop_reason="target_met",
    target_met=True,
)
# Case 1 with 40 h: after the workshop (16 h) the best that fits the 24 h left is the
# stakeholder map (communication 2->3, 1/45 in 16 h, ahead of find_a_mentor's 1/45 in 20 h and
# present_to_executives' in 24 h): R = 41/63 + 1/45 = 212/315 ≈ 0.673 at 32 h. Nothing
# helpful fits the 8 h left, so the plan stops there with strategy 1.5 short of its 3*.
SOLID_PM_TO_SENIOR_40H = PlanCase(
    id="solid_pm_to_senior_40h",
    values=SOLID_PM_VALUES,
    ratings=SOLID_PM,
    track=None,
    target_level=None,
    budget_hours=40,
    target="senior_pm",
    readiness_now=R_SENIOR_SOLID,
    steps=[
        ("prioritization_framework_workshop", 16, F(41, 63)),
        ("stakeholder_map_and_alignment", 16, F(212, 315)),
    ],
    stop_reason="budget",
    target_met=False,
)
# Senior PM -> Principal (IC). R_principal now, points lost (weights 5/56, 1/14, 5/84, 1/21,
# 9/70, 3/35, 1/15): discovery, execution 5/56*1/5 each + technical 1/14*1/4 = 3/56;
# prioritization 5/84*1/4 = 5/336; data, stakeholder, communication, xfn 1/21*1/4 each = 1/21;
# strategy 9/70*2/5 = 9/175; market, business 3/35*1/4 each = 3/70; scale 1/15*1/4 = 1/60.
# Sum = (450 + 125 + 400 + 432 + 360 + 140)/8400 = 1907/8400, R = 6493/8400 ≈ 0.773.
# Step 1 (the strategy book is a Senior-band read only now):
#   competitive_teardown  market 3->5 (capped: 3/35*1/4 = 3/140) + strategy 3->4 (9/70*1/5 =
#                         9/350) = 33/700 = 396/8400 in 30 h ≈ 0.00157/h
#   stakeholder_map       stakeholder 3->5 (capped: 1/84) + communication 3->4 (1/84) = 1/42
#                         = 200/8400 in 16 h ≈ 0.00149/h
#   okrs                  business 3/140 + prioritization 5/336 + data 1/84 = 27/560 in 40 h
#   system_design_course  technical 1/56 + scale 1/60 = 29/840 in 30 h ≈ 0.00115/h
SENIOR_TO_PRINCIPAL = PlanCase(
    id="senior_to_principal_ic",
    values=SENIOR_VALUES,
    ratings=None,
    track="ic",
    target_level=None,
    budget_hours=None,
    target="principal_pm",
    readiness_now=F(6493, 8400),
    steps=[
        ("competitive_teardown", 30, F(6889, 8400)),
        ("stakeholder_map_and_alignment", 16, F(7089, 8400)),  # stakeholder 4*: + 1/42
        ("set_and_run_quarterly_okrs", 40, F(7494, 8400)),  # + 27/560 = 405/8400
        ("system_design_course", 30, F(7784, 8400)),  # + 29/840; scale 4* met
        # strategy 4->5 (9/350 in 80 h; communication is already 4) beats the advisory
        # board (discovery 4->5, 1/56 in 80 h): 5* met, R = 8000/8400 = 20/21
        ("write_product_strategy", 80, F(20, 21)),
    ],
    stop_reason="target_met",
    target_met=True,
)
# Senior PM -> Principal with 40 h: the teardown (30 h) leaves 10 h, and nothing helpful is
# that short: R = 6889/8400 ≈ 0.820, with stakeholder 3 < 4*, scale 3 < 4*, strategy 4 < 5*.
SENIOR_TO_PRINCIPAL_40H = PlanCase(
    id="senior_to_principal_ic_40h",
    values=SENIOR_VALUES,
    ratings=None,
    track="ic",
    target_level=None,
    budget_hours=40,
    target="principal_pm",
    readiness_now=F(6493, 8400),
    steps=SENIOR_TO_PRINCIPAL.steps[:1],
    stop_reason="budget",
    target_met=False,
)
# Senior PM -> Group PM (management). Points lost: prioritization 1/14*1/4 = 1/56,
# stakeholder, communication, xfn 2/35*1/4 each = 3/70, strategy 3/28*1/4 = 3/112,
# mentoring, scale 0.1*1/4 each, organization 0.1*1/2: total 3/16, R = 13/16 = 0.8125.
# Step 1: stakeholder_map (2 * 2/35*1/4 = 1/35 in 16 h = 1/560/h) over present_to_executives
# (the same 1/35 in 24 h), run_pm_guild (mentoring 1/40 + organization 1/40 + communication
# 1/70 = 9/140 in 60 h) and hire_and_onboard_a_pm (organization 2->4 1/20 + mentoring 1/40 =
# 3/40 in 80 h = 3/3200/h): R = 13/16 + 1/35 = 471/560.
# Step 2: communication is met now, so the guild drops to 1/20 in 60 h (1/1200/h) and the hire
# (3/3200 ≈ 0.00094/h) edges out competitive_teardown (strategy 3->4, 3/112 in 30 h =
# 1/1120 ≈ 0.00089/h): the critical mentoring 4* and organization 4* are met by hiring.
SENIOR_TO_GROUP_PM = PlanCase(
    id="senior_to_group_pm_management",
    values=SENIOR_VALUES,
    ratings=None,
    track="management",
    target_level=None,
    budget_hours=None,
    target="group_pm",
    readiness_now=F(13, 16),
    steps=[
        ("stakeholder_map_and_alignment", 16, F(471, 560)),
        ("hire_and_onboard_a_pm", 80, F(513, 560)),  # + 3/40 = 42/560
        ("competitive_teardown", 30, F(33, 35)),  # + 3/112 = 15/560
        # feedback_synthesis_sprint and system_design_course tie (scale 3->4, 1/40 in 30 h):
        # same effort, so the key decides
        ("feedback_synthesis_sprint", 30, F(271, 280)),
        ("set_and_run_quarterly_okrs", 40, F(69, 70)),  # prioritization 3->4*: + 1/56
    ],
    stop_reason="target_met",
    target_met=True,
)
# Senior PM -> Group PM with 40 h: after the stakeholder map (16 h) the hire (80 h) and every
# other helpful step are longer than the 24 h left; present_to_executives (24 h) fits but
# only raises communication and stakeholder, both already met. R = 471/560 ≈ 0.841.
SENIOR_TO_GROUP_PM_40H = PlanCase(
    id="senior_to_group_pm_management_40h",
    values=SENIOR_VALUES,
    ratings=None,
    track="management",
    target_level=None,
    budget_hours=40,
    target="group_pm",
    readiness_now=F(13, 16),
    steps=SENIOR_TO_GROUP_PM.steps[:1],
    stop_reason="budget",
    target_met=False,
)
# Naming the level instead of the track gives the same plan.
SENIOR_TO_PRINCIPAL_BY_KEY = replace(
    SENIOR_TO_PRINCIPAL,
    id="senior_target_principal_pm_by_key",
    track=None,
    target_level="principal_pm",
)

PLAN_CASES = [
    APM_TO_PM,
    APM_TO_PM_40H,
    SOLID_PM_TO_SENIOR,
    SOLID_PM_TO_SENIOR_40H,
    SENIOR_TO_PRINCIPAL,
    SENIOR_TO_PRINCIPAL_40H,
    SENIOR_TO_GROUP_PM,
    SENIOR_TO_GROUP_PM_40H,
    SENIOR_TO_PRINCIPAL_BY_KEY,
]


@pytest.mark.parametrize("case", PLAN_CASES, ids=[case.id for case in PLAN_CASES])
def test_plan_follows_the_hand_worked_table(
    pm_ladder: Framework, ref: Ladder, case: PlanCase
) -> None:
    keys = [key for key, _, _ in case.steps]
    # The table itself, recomputed from the YAML: each readiness is that of the values after
    # the activities so far, and each pick is the best gain per hour that still fits.
    assert ref.readiness(case.target, case.values) == case.readiness_now
    hours = 0.0
    for index, (key, effort, readiness_after) in enumerate(case.steps):
        before = ref.apply(case.values, keys[:index])
        assert ref.activities[key].effort == effort
        assert (
            ref.readiness(case.target, ref.apply(case.values, keys[: index + 1])) == readiness_after
        )
        left = None if case.budget_hours is None else case.budget_hours - hours
        best = ref.ranked_candidates(case.target, before, exclude=keys[:index], hours_left=left)
        assert best[0][2] == key, f"step {index + 1}"
        assert ref.meets(case.target, before) is False
        hours += effort
    final = ref.apply(case.values, keys)
    assert ref.meets(case.target, final) is case.target_met
    if case.stop_reason == "budget":
        assert case.budget_hours is not None
        left = case.budget_hours - hours
        assert ref.ranked_candidates(case.target, final, exclude=keys, hours_left=left) == []
        assert ref.ranked_candidates(case.target, final, exclude=keys) != []

    plan = recommend(
        pm_ladder,
        case.evaluation(pm_ladder),
        target_level=case.target_level,
        budget_hours=case.budget_hours,
    )
    assert plan.target_level == case.target
    assert plan.readiness_now == approx(case.readiness_now)
    assert plan.meets_now is False
    assert [step.activity for step in plan.steps] == keys
    assert [step.effort_hours for step in plan.steps] == [effort for _, effort, _ in case.steps]
    assert plan.steps[-1].cumulative_hours == plan.total_hours == hours
    assert [step.readiness_after for step in plan.steps] == [approx(r) for _, _, r in case.steps]
    # Readiness rises at every step, each step starting where the previous one ended.
    previous = plan.readiness_now
    for step in plan.steps:
        assert step.readiness_before == previous
        assert step.readiness_after > step.readiness_before
        previous = step.readiness_after
    assert [step.meets_after for step in plan.steps] == [False] * (len(keys) - 1) + [
        case.target_met
    ]
    assert (plan.stop_reason, plan.target_met) == (case.stop_reason, case.target_met)
    assert plan.projected_readiness == approx(case.steps[-1][2])
    assert dict(plan.projected_values) == {k: approx(v) for k, v in final.items()}
    if case.budget_hours is not None:
        assert plan.total_hours <= case.budget_hours


def test_apm_plan_first_steps_develop_what_the_table_says(
    pm_ladder: Framework, ref: Ladder
) -> None:
    # The classic PM book is for reaching APM only; it is no candidate toward PM.
    assert "read_classic_pm_book" in ref.in_band("apm")
    assert "read_classic_pm_book" not in ref.in_band("pm")
    # The three best step-1 candidates, per hour, as worked out above APM_TO_PM.
    ranked = ref.ranked_candidates("pm", APM_VALUES)
    assert [(key, gph) for gph, _, key in ranked[:3]] == [
        ("prioritization_framework_workshop", F(9, 140) / 16),
        ("certified_product_owner", F(5, 56) / 24),
        ("stakeholder_map_and_alignment", F(2, 35) / 16),
    ]
    # Step 4 is an exact tie at 1/560 per hour; the shorter effort goes first.
    done = [key for key, _, _ in APM_TO_PM.steps[:3]]
    ranked = ref.ranked_candidates("pm", ref.apply(APM_VALUES, done), exclude=done)
    assert ranked[:2] == [
        (F(1, 560), F(16), "stakeholder_map_and_alignment"),
        (F(1, 560), F(30), "competitive_teardown"),
    ]
    plan = recommend(pm_ladder, evaluate_values(pm_ladder, APM_VALUES))
    assert [dict(step.develops) for step in plan.steps] == [
        {"prioritization": (1.0, 2.0), "stakeholder_management": (1.0, 2.0)},
        {"execution": (2.0, 3.0), "technical_depth": (1.0, 2.0)},
        {"customer_discovery": (2.0, 3.0), "data_driven_decisions": (1.0, 3.0)},
        {"communication": (1.0, 2.0), "stakeholder_management": (2.0, 4.0)},
    ]
    assert [step.cumulative_hours for step in plan.steps] == [16, 56, 96, 112]
    # 145/168 = 0.8630...
    assert plan.message == (
        "The plan reaches 0.86 readiness and meets Product Manager after 4 steps (112 h)."
    )


def test_ic_and_management_plans_differ_where_the_tracks_differ(pm_ladder: Framework) -> None:
    evaluation_ic = evaluate_values(pm_ladder, SENIOR_VALUES, track="ic")
    evaluation_mgmt = evaluate_values(pm_ladder, SENIOR_VALUES, track="management")
    assert (evaluation_ic.attained_level, evaluation_ic.next_level) == ("senior_pm", "principal_pm")
    assert (evaluation_mgmt.attained_level, evaluation_mgmt.next_level) == ("senior_pm", "group_pm")
    # level index = 3 + R_next: 3 + 6493/8400 (IC) vs 3 + 13/16 (management)
    assert evaluation_ic.level_index == approx(3 + F(6493, 8400))
    assert evaluation_mgmt.level_index == approx(3 + F(13, 16))

    ic_plan = recommend(pm_ladder, evaluation_ic)
    mgmt_plan = recommend(pm_ladder, evaluation_mgmt)
    ic = {step.activity for step in ic_plan.steps}
    mgmt = {step.activity for step in mgmt_plan.steps}
    shared = {
        "competitive_teardown",
        "stakeholder_map_and_alignment",
        "set_and_run_quarterly_okrs",
    }
    assert ic & mgmt == shared
    # The management plan builds people leadership by hiring (organization_building 4* and
    # mentoring 4* are critical for Group PM); the IC plan builds technical and scale depth
    # (handling_scale 4*) and strategy to expert (strategic_thinking 5*) by writing one.
    assert mgmt - shared == {"hire_and_onboard_a_pm", "feedback_synthesis_sprint"}
    assert ic - shared == {"system_design_course", "write_product_strategy"}
    people = {"people_management_course", "certified_product_leader", "hire_and_onboard_a_pm"}
    assert not ic & people
    # Organization building 2 -> 4 comes from the hire itself, not from a course or credential.
    assert [
        (step.activity, step.kind, step.develops["organization_building"])
        for step in mgmt_plan.steps
        if "organization_building" in step.develops
    ] == [("hire_and_onboard_a_pm", "stretch_assignment", (2.0, 4.0))]


def test_solid_pm_budget_plan_stops_at_32_hours(pm_ladder: Framework) -> None:
    plan = recommend(pm_ladder, evaluate(pm_ladder, SOLID_PM, as_of=AS_OF), budget_hours=40)
    assert (plan.stop_reason, plan.total_hours) == ("budget", 32)
    # 212/315 = 0.6730...
    assert plan.message.startswith(
        "Within the budget of 40 h the plan reaches 0.67 readiness after 2 steps (32 h); "
        "Senior Product Manager is not met (readiness 0.67 is below the threshold 0.85; "
    )
    # The stakeholder map lifted communication to its 3*; strategy 1.5 is still below its 3*.
    assert "critical expectation not met: strategic_thinking is 1.5, requires 3" in plan.message
    assert "critical expectation not met: communication" not in plan.message


def test_apm_budget_plan_message(pm_ladder: Framework) -> None:
    plan = recommend(pm_ladder, evaluate_values(pm_ladder, APM_VALUES), budget_hours=40)
    # 289/420 = 0.6880...: floored to hundredths in both places (rounding would have printed
    # "reaches 0.69" beside "readiness 0.68"). Discovery 2 is still below its critical 3 and
    # no gap exceeds 1 point.
    assert plan.message == (
        "Within the budget of 40 h the plan reaches 0.68 readiness after 2 steps (40 h); "
        "Product Manager is not met (readiness 0.68 is below the threshold 0.85; "
        "critical expectation not met: customer_discovery is 2, requires 3)."
    )


def _floored(value: Fraction) -> str:
    """Readiness as the messages print it: floored (never rounded up) to hundredths."""
    return f"{math.floor(value * 100) / 100:.2f}"


def test_floored_and_rounded_readiness_differ_in_these_plans() -> None:
    # Keeps the message test below able to fail: in these plans rounding goes up a hundredth.
    finals = [case.steps[-1][2] for case in (APM_TO_PM_40H, SOLID_PM_TO_SENIOR, SENIOR_TO_GROUP_PM)]
    assert finals == [F(289, 420), F(953, 1008), F(69, 70)]
    assert [(_floored(r), f"{float(r):.2f}") for r in finals] == [
        ("0.68", "0.69"),
        ("0.94", "0.95"),
        ("0.98", "0.99"),
    ]


@pytest.mark.parametrize("case", PLAN_CASES, ids=[case.id for case in PLAN_CASES])
def test_plan_message_floors_readiness_like_the_level_reasons(
    pm_ladder: Framework, ref: Ladder, case: PlanCase
) -> None:
    plan = recommend(
        pm_ladder,
        case.evaluation(pm_ladder),
        target_level=case.target_level,
        budget_hours=case.budget_hours,
    )
    final = case.steps[-1][2]
    assert f" reaches {_floored(final)} readiness " in plan.message
    if final < ref.threshold:
        # The reason names the same number: "... is not met (readiness 0.68 is below ...".
        assert f"is not met (readiness {_floored(final)} is below the threshold 0.85" in (
            plan.message
        )
    else:
        assert "is below the threshold" not in plan.message


KINDS = {
    "practice",
    "stretch_assignment",
    "mentoring",
    "course",
    "certification",
    "reading",
    "community",
}


def test_ladder_activities_keep_their_shape(ref: Ladder) -> None:
    activities = list(ref.activities.values())
    assert len(activities) == 37
    assert {activity.kind for activity in activities} == KINDS
    assert all(re.fullmatch(r"[a-z][a-z0-9]*(_[a-z0-9]+)*", a.key) for a in activities)
    for competency in COMPETENCIES:
        developers = [a.key for a in activities if a.gains.get(competency, 0) > 0]
        assert len(developers) >= 2, competency
    for rank in range(1, 7):
        in_band = [a.key for a in activities if a.band[0] <= rank <= a.band[1]]
        assert len(in_band) >= 4, rank
    # Reading a book moves one competency by one point, never more.
    assert {a.key: dict(a.gains) for a in activities if a.kind == "reading"} == {
        "read_classic_pm_book": {"customer_discovery": 1},
        "read_strategy_classic": {"strategic_thinking": 1},
    }
    # Being mentored builds communication and stakeholder skills, not the ability to coach.
    assert dict(ref.activities["find_a_mentor"].gains) == {
        "communication": 1,
        "stakeholder_management": 1,
    }


@pytest.mark.parametrize(
    ("values", "track", "target_level", "target_name"),
    [
        (SENIOR_VALUES, "ic", "senior_pm", "Senior Product Manager"),
        (SENIOR_VALUES, "management", "pm", "Product Manager"),
        (SOLID_PM_VALUES, None, "pm", "Product Manager"),
        (SOLID_PM_VALUES, None, "apm", "Associate Product Manager"),
    ],
)
def test_a_target_already_met_gives_an_empty_plan(
    pm_ladder: Framework,
    ref: Ladder,
    values: Mapping[str, float],
    track: str | None,
    target_level: str,
    target_name: str,
) -> None:
    assert ref.meets(target_level, values)
    evaluation = evaluate_values(pm_ladder, values, track=track)
    plan = recommend(pm_ladder, evaluation, target_level=target_level, budget_hours=40)
    assert plan.steps == ()
    assert (plan.stop_reason, plan.meets_now, plan.target_met) == ("already_met", True, True)
    assert plan.total_hours == 0
    assert (
        plan.readiness_now
        == plan.projected_readiness
        == approx(ref.readiness(target_level, values))
    )
    assert plan.message == f"Already meets {target_name}; no steps needed."
    assert dict(plan.projected_values) == values


def test_senior_on_the_trunk_has_nothing_left_to_plan(pm_ladder: Framework) -> None:
    # Without a track the path ends at senior_pm (rank 3): index 3, no next level, no plan.
    evaluation = evaluate_values(pm_ladder, SENIOR_VALUES)
    assert (evaluation.attained_level, evaluation.next_level) == ("senior_pm", None)
    assert evaluation.level_index == approx(3)
    plan = recommend(pm_ladder, evaluation)
    assert (plan.target_level, plan.steps, plan.stop_reason) == (None, (), "already_met")
    assert plan.message == "Already at the top of the path; there is no next level to plan for."


# --------------------------------------------------------------------------------------------
# Case 7: the projected values, rescored, give the projected readiness
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", PLAN_CASES, ids=[case.id for case in PLAN_CASES])
def test_projected_values_reproduce_projected_readiness(
    pm_ladder: Framework, case: PlanCase
) -> None:
    plan = recommend(
        pm_ladder,
        case.evaluation(pm_ladder),
        target_level=case.target_level,
        budget_hours=case.budget_hours,
    )
    rescored = evaluate_values(pm_ladder, plan.projected_values, track=case.track)
    level = rescored.level(case.target)
    assert level.readiness == approx(plan.projected_readiness or 0.0)
    assert level.readiness == approx(case.steps[-1][2])  # the hand-worked final readiness
    assert level.meets is plan.target_met is case.target_met
