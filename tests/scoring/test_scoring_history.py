"""Velocity of the level index per 90 days."""

from datetime import UTC, datetime, timedelta

import pytest

from app.scoring import velocity_per_90_days

START = datetime(2025, 1, 1, tzinfo=UTC)


def test_two_points_give_the_slope_per_quarter() -> None:
    # +1 level index over 180 days -> 0.5 per 90 days
    assert velocity_per_90_days([(START, 1.2), (START + timedelta(days=180), 2.2)]) == (
        pytest.approx(0.5)
    )


def test_least_squares_over_noisy_points() -> None:
    # x (days) = 0, 90, 180; y = 1.0, 1.6, 1.8
    # x̄ = 90, ȳ = 4.4/3; Sxy = (-90)(1 - 4.4/3) + 0 + 90(1.8 - 4.4/3) = 90 * 0.8 = 72
    # Sxx = 2 * 8100 = 16200 -> slope 72/16200 per day -> 0.4 per 90 days
    points = [
        (START + timedelta(days=180), 1.8),
        (START, 1.0),
        (START + timedelta(days=90), 1.6),
    ]
    assert velocity_per_90_days(points) == pytest.approx(0.4)


def test_declining_index_is_negative_and_naive_dates_are_utc() -> None:
    naive = datetime(2025, 1, 1)
    assert velocity_per_90_days([(naive, 2.5), (START + timedelta(days=45), 2.0)]) == (
        pytest.approx(-1.0)
    )


@pytest.mark.parametrize(
    "points",
    [
        [],
        [(START, 1.0)],
        [(START, 1.0), (START, 2.0)],
        [(START, 1.0), (START.replace(tzinfo=None), 3.0)],
    ],
)
def test_fewer_than_two_dates_give_no_velocity(points: list[tuple[datetime, float]]) -> None:
    assert velocity_per_90_days(points) is None
