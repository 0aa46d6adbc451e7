"""Aggregation of ratings into one value per competency, worked out by hand."""

import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from app.scoring import Framework, Rating, ScoringError, ScoringSettings, aggregate, evaluate

RateFn = Callable[..., Rating]


def test_weighted_mean_spread_and_rater_count(framework: Framework, rate: RateFn) -> None:
    # weights manager 3, peer 2, peer 2, self 1 (sum 8)
    # mean   = (3*4 + 2*3 + 2*2 + 1*5) / 8 = 27 / 8 = 3.375
    # spread = sqrt((3*0.625² + 2*0.375² + 2*1.375² + 1*1.625²) / 8) = sqrt(7.875 / 8)
    # self vs others = 5 - (12 + 6 + 4) / 7 = 13/7 ≈ 1.857 -> blind spot
    ratings = [
        rate("discovery", 4, "m1", "manager"),
        rate("discovery", 3, "p1", "peer"),
        rate("discovery", 2, "p2", "peer"),
        rate("discovery", 5, "me", "self"),
    ]
    value = aggregate(framework, ratings, as_of=datetime(2025, 6, 30, 12, tzinfo=UTC)).values[
        "discovery"
    ]
    assert value.value == pytest.approx(3.375)
    assert value.spread == pytest.approx(math.sqrt(7.875 / 8))
    assert value.raters == 4
    assert value.calibrated is False
    assert value.self_vs_others == pytest.approx(13 / 7)
    assert (value.blind_spot, value.hidden_strength) == (True, False)
    assert [(c.role, c.rater_ref, c.weight) for c in value.contributions] == [
        ("manager", "m1", 3.0),
        ("peer", "p1", 2.0),
        ("peer", "p2", 2.0),
        ("self", "me", 1.0),
    ]


def test_request_role_weights_replace_framework_defaults(
    framework: Framework, rate: RateFn, as_of: datetime
) -> None:
    # manager 1, peer 3: (1*4 + 3*2) / 4 = 2.5 (defaults would give (12 + 4) / 5 = 3.2)
    ratings = [rate("data", 4, "m1", "manager"), rate("data", 2, "p1", "peer")]
    settings = ScoringSettings(role_weights={"manager": 1.0, "peer": 3.0})
    assert aggregate(framework, ratings, as_of=as_of).values["data"].value == pytest.approx(3.2)
    tuned = aggregate(framework, ratings, as_of=as_of, settings=settings)
    assert tuned.values["data"].value == pytest.approx(2.5)


def test_calibrated_rating_overrides_a_generous_self_rating(
    framework: Framework, rate: RateFn, as_of: datetime
) -> None:
    # The latest calibrated rating (3, two days ago) is the value; cal-old (1) is superseded.
    # Spread over manager 2 (w3) and self 5 (w1): mean 11/4 = 2.75,
    # variance (3*0.75² + 1*2.25²) / 4 = 6.75 / 4 -> spread sqrt(1.6875).
    ratings = [
        rate("delivery", 5, "me", "self", days_ago=1),
        rate("delivery", 2, "m1", "manager", days_ago=5),
        rate("delivery", 3, "cal-new", "calibrated", days_ago=2),
        rate("delivery", 1, "cal-old", "calibrated", days_ago=30),
    ]
    aggregation = aggregate(framework, ratings, as_of=as_of)
    value = aggregation.values["delivery"]
    assert value.value == 3.0
    assert value.calibrated is True
    assert value.raters == 2
    assert value.spread == pytest.approx(math.sqrt(1.6875))
    assert value.self_vs_others == pytest.approx(3.0)
    assert value.blind_spot is True
    weights = {c.rater_ref: c.weight for c in value.contributions}
    assert weights == {"cal-new": 1.0, "cal-old": 0.0, "m1": 3.0, "me": 1.0}
    assert aggregation.distinct_raters == 4


@pytest.mark.parametrize(
    ("assessed_at", "counted"),
    [
        # window: as_of - 365 days < assessed_at <= as_of
        (timedelta(days=-400), False),
        (timedelta(days=-365), False),
        (timedelta(days=-365, seconds=1), True),
        (timedelta(0), True),
        (timedelta(seconds=1), False),
    ],
)
def test_window_bounds(
    framework: Framework, as_of: datetime, assessed_at: timedelta, counted: bool
) -> None:
    rating = Rating("data", 4, "m1", "manager", as_of + assessed_at)
    value = aggregate(framework, [rating], as_of=as_of).values["data"]
    assert value.value == (4.0 if counted else None)


def test_window_excludes_old_ratings_from_the_mean(
    framework: Framework, rate: RateFn, as_of: datetime
) -> None:
    # p-old (1, 400 days ago) is outside the window: mean of manager 4 (w3) and peer 2 (w2)
    # = (12 + 4) / 5 = 3.2; with a 500-day window: (12 + 4 + 2) / 7 = 18 / 7.
    ratings = [
        rate("data", 4, "m1", "manager"),
        rate("data", 2, "p1", "peer"),
        rate("data", 1, "p-old", "peer", days_ago=400),
    ]
    assert aggregate(framework, ratings, as_of=as_of).values["data"].value == pytest.approx(3.2)
    wide = aggregate(framework, ratings, as_of=as_of, settings=ScoringSettings(window_days=500))
    assert wide.values["data"].value == pytest.approx(18 / 7)
    assert wide.values["data"].raters == 3


def test_latest_rating_per_rater_wins(framework: Framework, rate: RateFn, as_of: datetime) -> None:
    # m1: 2 (100 days ago) then 4 (10 days ago) -> 4.
    # p1: same timestamp, sequence 1 (value 1) beats sequence 0 (value 5) whatever the order.
    ratings = [
        rate("influence", 4, "m1", "manager", days_ago=10),
        rate("influence", 2, "m1", "manager", days_ago=100),
        rate("influence", 1, "p1", "peer", days_ago=3, sequence=1),
        rate("influence", 5, "p1", "peer", days_ago=3, sequence=0),
    ]
    value = aggregate(framework, ratings, as_of=as_of).values["influence"]
    # (3*4 + 2*1) / 5 = 14 / 5
    assert value.value == pytest.approx(2.8)
    assert value.raters == 2
    assert {c.rater_ref: c.proficiency for c in value.contributions} == {"m1": 4.0, "p1": 1.0}


def test_same_ref_in_two_roles_is_two_raters(framework: Framework, rate: RateFn) -> None:
    # A rater is (role, rater_ref): "ana" as self (5, w1) and as peer (3, w2) -> 11/3.
    ratings = [rate("data", 5, "ana", "self"), rate("data", 3, "ana", "peer")]
    aggregation = aggregate(framework, ratings, as_of=datetime(2025, 6, 30, 12, tzinfo=UTC))
    assert aggregation.values["data"].value == pytest.approx(11 / 3)
    assert aggregation.distinct_raters == 2


@pytest.mark.parametrize(
    ("self_rating", "manager_rating", "blind_spot", "hidden_strength"),
    [
        (1, 3, False, True),  # 1 - 3 = -2
        (4, 3, True, False),  # exactly +1 counts
        (2, 3, False, True),  # exactly -1 counts
        (3.5, 3, False, False),  # +0.5
    ],
)
def test_blind_spot_and_hidden_strength(
    framework: Framework,
    rate: RateFn,
    as_of: datetime,
    self_rating: float,
    manager_rating: float,
    blind_spot: bool,
    hidden_strength: bool,
) -> None:
    ratings = [rate("influence", self_rating, "me", "self"), rate("influence", manager_rating)]
    value = aggregate(framework, ratings, as_of=as_of).values["influence"]
    assert value.self_vs_others == pytest.approx(self_rating - manager_rating)
    assert (value.blind_spot, value.hidden_strength) == (blind_spot, hidden_strength)


def test_self_vs_others_needs_both_sides(
    framework: Framework, rate: RateFn, as_of: datetime
) -> None:
    value = aggregate(framework, [rate("data", 5, "me", "self")], as_of=as_of).values["data"]
    assert value.value == 5.0
    assert value.self_vs_others is None
    assert value.blind_spot is False


def test_unknown_competencies_and_roles_are_ignored(
    framework: Framework, rate: RateFn, as_of: datetime
) -> None:
    ratings = [
        rate("data", 4),
        rate("legacy-skill", 5),
        rate("another-old-key", 2, "p1", "peer"),
        rate("data", 0, "x1", "intern"),  # role without a weight: ignored entirely
        rate("zzz-outside-window", 3, days_ago=900),
    ]
    aggregation = aggregate(framework, ratings, as_of=as_of)
    assert aggregation.ignored_competencies == ("another-old-key", "legacy-skill")
    assert aggregation.values["data"].value == 4.0
    assert aggregation.values["data"].raters == 1
    assert aggregation.distinct_raters == 1  # only m1 rated a known competency
    assert aggregation.values["mentoring"].value is None
    assert list(aggregation.values) == ["discovery", "delivery", "data", "influence", "mentoring"]


def test_naive_datetimes_are_utc(framework: Framework) -> None:
    naive_as_of = datetime(2025, 6, 30, 12)
    ratings = [
        Rating("data", 2, "m1", "manager", datetime(2025, 6, 30, 12)),
        Rating("data", 4, "m1", "manager", datetime(2025, 6, 30, 11, tzinfo=UTC), sequence=5),
    ]
    value = aggregate(framework, ratings, as_of=naive_as_of).values["data"]
    assert value.value == 2.0  # 12:00 naive-as-UTC is later than 11:00 UTC
    assert value.contributions[0].assessed_at == datetime(2025, 6, 30, 12, tzinfo=UTC)


def test_proficiency_is_clamped_to_the_scale(framework: Framework, rate: RateFn) -> None:
    value = aggregate(
        framework, [rate("data", 9)], as_of=datetime(2025, 6, 30, 12, tzinfo=UTC)
    ).values["data"]
    assert value.value == 5.0


def test_confidence_grows_with_coverage_and_raters(
    framework: Framework, rate: RateFn, as_of: datetime
) -> None:
    # Rated weight: discovery 2 + delivery 1 of 7 -> coverage 3/7.
    # One rater: 3/7 * (1 - 0.5) = 3/14; two raters: 3/7 * 0.75 = 9/28.
    one = evaluate(framework, [rate("discovery", 3), rate("delivery", 3)], as_of=as_of)
    assert one.coverage == pytest.approx(3 / 7)
    assert one.confidence == pytest.approx(3 / 14)
    two = evaluate(
        framework, [rate("discovery", 3), rate("delivery", 3, "p1", "peer")], as_of=as_of
    )
    assert two.confidence == pytest.approx(9 / 28)
    assert evaluate(framework, [], as_of=as_of).confidence == 0.0


def test_non_finite_proficiency_is_refused(framework: Framework, rate: RateFn) -> None:
    with pytest.raises(ScoringError, match="finite"):
        aggregate(framework, [rate("data", math.nan)], as_of=datetime(2025, 6, 30, tzinfo=UTC))
