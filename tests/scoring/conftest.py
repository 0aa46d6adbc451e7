"""A small hand-built ladder whose numbers the scoring tests work out by hand.

Scale 0-5. Trunk: L1 (rank 1), L2 (rank 2). Tracks: ic -> L3ic (rank 3), mgmt -> L3m (rank 3).
Areas: craft (discovery w2, delivery w1, data w1) and people (influence w1, mentoring w2).

Required proficiency (* = critical):

    level   discovery  delivery  data  influence  mentoring   emphasis craft/people
    L1          1          2       1       1          -         0.75 / 0.25
    L2          2          3*      2       2          1         none (competency weights)
    L3ic        4*         4       3       3          -         0.70 / 0.30
    L3m         3          3       2       4*         4*        0.40 / 0.60

Weights w_L(c) that follow:
    L1:   discovery 0.75*2/4=0.375, delivery 0.1875, data 0.1875, influence 0.25
    L2:   discovery 2, delivery 1, data 1, influence 1, mentoring 2   (sum 7)
    L3ic: discovery 0.35, delivery 0.175, data 0.175, influence 0.3
    L3m:  discovery 0.2, delivery 0.1, data 0.1, influence 0.2, mentoring 0.4

Activities (gains, effort hours, band of target ranks):
    ship-feature        delivery+1 data+1      40 h  1-3
    discovery-sprint    discovery+2            60 h  2-3
    mentor-junior       mentoring+2 influence+1 50 h  2-4
    analytics-course    data+2                 20 h  1-2
    exec-presentations  influence+2            30 h  3-4
    coaching-program    mentoring+1            40 h  3-4
"""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from app.scoring import Activity, Competency, Expectation, Framework, Level, Rating

AS_OF = datetime(2025, 6, 30, 12, 0, tzinfo=UTC)

RateFn = Callable[..., Rating]

_REQUIRED: dict[str, dict[str, int]] = {
    "L1": {"discovery": 1, "delivery": 2, "data": 1, "influence": 1},
    "L2": {"discovery": 2, "delivery": 3, "data": 2, "influence": 2, "mentoring": 1},
    "L3ic": {"discovery": 4, "delivery": 4, "data": 3, "influence": 3},
    "L3m": {"discovery": 3, "delivery": 3, "data": 2, "influence": 4, "mentoring": 4},
}
_CRITICAL = {("L2", "delivery"), ("L3ic", "discovery"), ("L3m", "influence"), ("L3m", "mentoring")}


def build_framework() -> Framework:
    """Build the ladder described in the module docstring."""
    return Framework(
        key="pm-ladder",
        version=1,
        scale_min=0,
        scale_max=5,
        levels=(
            Level("L1", "Associate Product Manager", 1, None),
            Level("L2", "Product Manager", 2, None),
            Level("L3ic", "Senior Product Manager", 3, "ic"),
            Level("L3m", "Group Product Manager", 3, "mgmt"),
        ),
        competencies=(
            Competency("discovery", "Customer discovery", "craft", 2.0),
            Competency("delivery", "Execution and delivery", "craft", 1.0),
            Competency("data", "Data-driven decisions", "craft", 1.0),
            Competency("influence", "Stakeholder influence", "people", 1.0),
            Competency("mentoring", "Mentoring", "people", 2.0),
        ),
        expectations=tuple(
            Expectation(
                competency,
                level,
                required,
                (level, competency) in _CRITICAL,
                (f"{competency} indicator at {level}",),
            )
            for level, by_competency in _REQUIRED.items()
            for competency, required in by_competency.items()
        ),
        area_emphasis={
            "craft": {"L1": 0.75, "L3ic": 0.7, "L3m": 0.4},
            "people": {"L1": 0.25, "L3ic": 0.3, "L3m": 0.6},
        },
        activities=(
            Activity("ship-feature", "Own a feature end to end", "practice",
                     {"delivery": 1, "data": 1}, 40.0, 1, 3),
            Activity("discovery-sprint", "Run a discovery sprint", "stretch_assignment",
                     {"discovery": 2}, 60.0, 2, 3),
            Activity("mentor-junior", "Mentor a junior PM", "mentoring",
                     {"mentoring": 2, "influence": 1}, 50.0, 2, 4),
            Activity("analytics-course", "Product analytics course", "course",
                     {"data": 2}, 20.0, 1, 2),
            Activity("exec-presentations", "Present to executives", "practice",
                     {"influence": 2}, 30.0, 3, 4, url="https://example.org/exec"),
            Activity("coaching-program", "Join a coaching program", "mentoring",
                     {"mentoring": 1}, 40.0, 3, 4),
        ),
    )  # fmt: skip


@pytest.fixture(scope="session")
def framework() -> Framework:
    """The hand-built ladder."""
    return build_framework()


@pytest.fixture(scope="session")
def as_of() -> datetime:
    """The moment every test scores at."""
    return AS_OF


@pytest.fixture(scope="session")
def rate() -> RateFn:
    """A builder for one rating, dated a number of days before AS_OF."""

    def build(
        competency: str,
        proficiency: float,
        rater_ref: str = "m1",
        role: str = "manager",
        days_ago: float = 10,
        sequence: int = 0,
    ) -> Rating:
        return Rating(
            competency=competency,
            proficiency=proficiency,
            rater_ref=rater_ref,
            role=role,
            assessed_at=AS_OF - timedelta(days=days_ago),
            sequence=sequence,
        )

    return build
