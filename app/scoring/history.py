"""Trend of the level index over time."""

import math
from collections.abc import Sequence
from datetime import datetime

from app.scoring.engine import as_utc

DAYS_PER_QUARTER = 90
SECONDS_PER_DAY = 86_400


def velocity_per_90_days(points: Sequence[tuple[datetime, float]]) -> float | None:
    """Return the least-squares slope of the level index per 90 days (None below 2 dates)."""
    moments = [as_utc(moment) for moment, _ in points]
    if len(set(moments)) < 2:
        return None
    origin = min(moments)
    # Days from the earliest point keep the numbers small, so the sums lose no precision.
    days = [(moment - origin).total_seconds() / SECONDS_PER_DAY for moment in moments]
    indexes = [index for _, index in points]
    mean_day = math.fsum(days) / len(days)
    mean_index = math.fsum(indexes) / len(indexes)
    covariance = math.fsum(
        (day - mean_day) * (index - mean_index) for day, index in zip(days, indexes, strict=True)
    )
    variance = math.fsum((day - mean_day) ** 2 for day in days)
    return covariance / variance * DAYS_PER_QUARTER
