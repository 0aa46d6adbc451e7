"""Greedy development plans on the hand-built ladder, worked out by hand."""

from dataclasses import replace

import pytest

from app.scoring import (
    Activity,
    Framework,
    ScoringError,
    UnknownLevel,
    evaluate_values,
    recommend,
)

# Meets L2; toward L3m (weights 0.2, 0.1, 0.1, 0.2, 0.4; required 3, 3, 2, 4*, 4*) R = 0.6.
PM = {"discovery": 3.0, "delivery": 3.0, "data": 2.0, "influence": 2.0, "mentoring": 1.0}


def test_plan_to_the_next_level(framework: Framework) -> None:
    # In band for rank 3: ship-feature, discovery-sprint, mentor-junior, exec-presentations,
    # coaching-program (analytics-course is 1-2). Gain per hour:
    #  step 1: mentor-junior  mentoring 1->3 (+0.4*0.5) influence 2->3 (+0.2*0.25) = 0.25/50
    #          exec-presentations influence 2->4 (+0.1) = 0.1/30; coaching 1->2 (+0.1) = 0.1/40
    #          ship-feature, discovery-sprint develop only met competencies: gain 0
    #  step 2: coaching mentoring 3->4 (+0.1)/40 = 0.0025 > exec influence 3->5 (+0.05)/30
    #  step 3: exec-presentations (+0.05) -> R 1.0, every critical expectation met
    evaluation = evaluate_values(framework, PM, track="mgmt")
    plan = recommend(framework, evaluation)
    assert (plan.target_level, plan.meets_now) == ("L3m", False)
    assert plan.readiness_now == pytest.approx(0.6)
    assert [s.activity for s in plan.steps] == [
        "mentor-junior",
        "coaching-program",
        "exec-presentations",
    ]
    assert [s.cumulative_hours for s in plan.steps] == [50.0, 90.0, 120.0]
    assert [s.readiness_before for s in plan.steps] == pytest.approx([0.6, 0.85, 0.95])
    assert [s.readiness_after for s in plan.steps] == pytest.approx([0.85, 0.95, 1.0])
    assert [s.meets_after for s in plan.steps] == [False, False, True]
    assert plan.steps[0].develops == {"influence": (2.0, 3.0), "mentoring": (1.0, 3.0)}
    assert plan.steps[2].develops == {"influence": (3.0, 5.0)}  # capped at the scale max
    assert plan.steps[2].url == "https://example.org/exec"
    assert plan.steps[2].kind == "practice"
    assert (plan.stop_reason, plan.target_met, plan.total_hours) == ("target_met", True, 120.0)
    assert plan.projected_readiness == pytest.approx(1.0)
    assert plan.projected_values == {**PM, "influence": 5.0, "mentoring": 4.0}
    assert plan.message == (
        "The plan reaches 1.00 readiness and meets Group Product Manager after 3 steps (120 h)."
    )


def test_budget_is_respected(framework: Framework) -> None:
    # After mentor-junior (50 h), coaching (40 h) would make 90 > 80: exec (30 h) fits exactly.
    evaluation = evaluate_values(framework, PM, track="mgmt")
    plan = recommend(framework, evaluation, budget_hours=80)
    assert [s.activity for s in plan.steps] == ["mentor-junior", "exec-presentations"]
    assert (plan.stop_reason, plan.total_hours, plan.target_met) == ("budget", 80.0, False)
    assert plan.projected_readiness == pytest.approx(0.9)
    assert plan.message == (
        "Within the budget of 80 h the plan reaches 0.90 readiness after 2 steps (80 h); "
        "Group Product Manager is not met (critical expectation not met: mentoring is 3, "
        "requires 4)."
    )


def test_max_steps(framework: Framework) -> None:
    evaluation = evaluate_values(framework, PM, track="mgmt")
    plan = recommend(framework, evaluation, max_steps=1)
    assert [s.activity for s in plan.steps] == ["mentor-junior"]
    assert plan.stop_reason == "max_steps"
    assert plan.message.startswith("After the maximum of 1 step (50 h) the plan reaches 0.85")
    assert recommend(framework, evaluation, max_steps=0).steps == ()


def test_completed_activities_are_skipped_until_nothing_helps(framework: Framework) -> None:
    # Without mentor-junior: exec (0.1/30) then coaching (0.1/40) -> R 0.8, then nothing helps.
    evaluation = evaluate_values(framework, PM, track="mgmt")
    plan = recommend(framework, evaluation, completed_activities={"mentor-junior"})
    assert [s.activity for s in plan.steps] == ["exec-presentations", "coaching-program"]
    assert plan.stop_reason == "no_helpful_activity"
    assert plan.projected_readiness == pytest.approx(0.8)
    assert plan.message.startswith(
        "Activities available reach 0.80 readiness; Group Product Manager is not met "
        "(readiness 0.80 is below the threshold 0.85; critical expectation not met: mentoring"
    )


def test_already_met_gives_an_empty_plan(framework: Framework) -> None:
    evaluation = evaluate_values(framework, PM, track="mgmt")
    plan = recommend(framework, evaluation, target_level="L2")
    assert (plan.steps, plan.stop_reason, plan.meets_now, plan.total_hours) == (
        (),
        "already_met",
        True,
        0.0,
    )
    assert plan.message == "Already meets Product Manager; no steps needed."


def test_unreachable_target(framework: Framework) -> None:
    bare = replace(framework, activities=())
    plan = recommend(bare, evaluate_values(bare, PM, track="mgmt"))
    assert (plan.steps, plan.stop_reason, plan.target_met) == ((), "no_helpful_activity", False)
    assert plan.projected_readiness == pytest.approx(0.6)
    assert plan.message.startswith(
        "This framework has no development activities; Group Product Manager is not met "
        "(readiness 0.60 is below the threshold 0.85"
    )
    # An unrated competency reads "not rated yet", not "unrated".
    unrated = {key: value for key, value in PM.items() if key != "mentoring"}
    reasons = evaluate_values(bare, unrated, track="mgmt").level("L3m").reasons
    assert "mentoring is more than 1 point(s) below its requirement: not rated yet, requires 4" in (
        reasons
    )
    assert "critical expectation not met: mentoring is not rated yet, requires 4" in reasons


def test_no_activity_in_reach_keeps_the_general_words(framework: Framework) -> None:
    plan = recommend(
        framework,
        evaluate_values(framework, PM, track="mgmt"),
        completed_activities=[a.key for a in framework.activities],
    )
    assert plan.message.startswith("Activities available reach 0.60 readiness;")


def test_band_and_natural_tie_prefers_shorter_effort(framework: Framework) -> None:
    # From nothing toward L2 (weights 2,1,1,1,2 of 7; required 2,3,2,2,1):
    #   analytics-course data 0->2: 1/7 over 20 h  = 1/140 per hour
    #   mentor-junior mentoring 0->2 (+2), influence 0->1 (+0.5): 2.5/7 over 50 h = 1/140
    # Equal gain per hour -> the shorter activity wins.
    evaluation = evaluate_values(framework, {}, track="ic")
    assert evaluation.next_level == "L1"
    first = recommend(framework, evaluation, target_level="L2", max_steps=1)
    assert [s.activity for s in first.steps] == ["analytics-course"]
    # analytics-course's band is ranks 1-2, so a rank-3 target never gets it.
    toward_senior = recommend(framework, evaluation, target_level="L3ic")
    assert "analytics-course" not in [s.activity for s in toward_senior.steps]


def test_ties_break_by_effort_then_key(framework: Framework) -> None:
    # Each mentoring point is worth 0.4/4 = 0.1 of L3m readiness:
    #   alpha, zeta: +1 in 10 h (0.01 per hour); double: +2 in 20 h (0.01 per hour)
    # step 1: all tie -> shortest (alpha, zeta) -> key -> alpha
    # step 2: zeta and double tie -> shorter -> zeta
    # step 3: double 3->5 capped: +0.1 in 20 h; then nothing helps (influence is 2 of 4*).
    activities = (
        Activity("zeta", "Zeta", "practice", {"mentoring": 1}, 10.0, 3, 3),
        Activity("double", "Double", "practice", {"mentoring": 2}, 20.0, 3, 3),
        Activity("alpha", "Alpha", "practice", {"mentoring": 1}, 10.0, 3, 3),
    )
    variant = replace(framework, activities=activities)
    plan = recommend(variant, evaluate_values(variant, PM, track="mgmt"))
    assert [s.activity for s in plan.steps] == ["alpha", "zeta", "double"]
    assert plan.stop_reason == "no_helpful_activity"


def test_top_of_path_and_bad_parameters(framework: Framework) -> None:
    top = evaluate_values(framework, dict.fromkeys(PM, 5.0))
    plan = recommend(framework, top)
    assert (plan.target_level, plan.steps, plan.stop_reason) == (None, (), "already_met")
    evaluation = evaluate_values(framework, PM)
    with pytest.raises(UnknownLevel):
        recommend(framework, evaluation, target_level="L9")
    with pytest.raises(ScoringError):
        recommend(framework, evaluation, target_level="L3m", budget_hours=-1)
    with pytest.raises(ScoringError):
        recommend(framework, evaluation, target_level="L3m", max_steps=-1)
