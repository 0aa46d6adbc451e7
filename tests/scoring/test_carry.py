"""Ratings carried through a competency map (app/scoring/carry.py).

Renames are invisible to the score; merges take the weighted mean of what one assessment rated;
splits copy the rating to each part times its factor; retirements drop it; a newer rating under
the new key still wins; and the columnar path agrees with the per-subject one.
"""

from dataclasses import replace
from datetime import timedelta

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from app.scoring import Competency, Framework, Rating, evaluate
from app.scoring.carry import MapEntry, build_step, carry_cohort, carry_ratings
from app.scoring.cohort import cohort_ratings
from tests.scoring.conftest import AS_OF, build_framework
from tests.scoring.test_scoring_properties import (
    KEYS,
    PROPERTY_SETTINGS,
    frameworks,
    ratings_lists,
    tracks,
)

OLD_KEYS = tuple("legacy" if k == "discovery" else k for k in KEYS)
RENAME = build_step(OLD_KEYS, KEYS, [MapEntry(("legacy",), ("discovery",), {})])


def _one_per_assessment(ratings: list[Rating]) -> list[Rating]:
    """An assessment rates each competency once (as stored assessments do)."""
    seen: dict[tuple[object, ...], Rating] = {}
    for r in ratings:
        seen.setdefault((r.rater_ref, r.role, r.assessed_at, r.sequence, r.competency), r)
    return list(seen.values())


@PROPERTY_SETTINGS
@given(frameworks(), ratings_lists, tracks)
def test_a_rename_scores_as_if_rated_under_the_new_key(
    fw: Framework, ratings: list[Rating], track: str | None
) -> None:
    old = [r for r in _one_per_assessment(ratings) if r.competency in OLD_KEYS]
    renamed = [
        Rating(
            "discovery" if r.competency == "legacy" else r.competency,
            r.proficiency,
            r.rater_ref,
            r.role,
            r.assessed_at,
            r.sequence,
        )
        for r in old
    ]
    carried = carry_ratings(old, [RENAME])
    assert sorted(carried, key=repr) == sorted(renamed, key=repr)
    assert evaluate(fw, carried, as_of=AS_OF, track=track) == evaluate(
        fw, renamed, as_of=AS_OF, track=track
    )


def _rating(key: str, value: float, rater: str = "m1", days_ago: int = 10, seq: int = 1) -> Rating:
    return Rating(key, value, rater, "manager", AS_OF - timedelta(days=days_ago), seq)


def _values(ratings: list[Rating]) -> dict[str, float]:
    return {r.competency: r.proficiency for r in ratings}


def test_a_merge_takes_the_weighted_mean_of_what_one_assessment_rated() -> None:
    step = build_step(
        ["data", "metrics", "delivery"],
        ["data-and-metrics", "delivery"],
        [MapEntry(("data", "metrics"), ("data-and-metrics",), {"data": 3, "metrics": 1})],
    )
    both = carry_ratings(
        [_rating("data", 3), _rating("metrics", 5), _rating("delivery", 2)], [step]
    )
    assert _values(both) == {"data-and-metrics": (3 * 3 + 1 * 5) / 4, "delivery": 2}
    # Only one of them rated: the weights are renormalized over it.
    assert _values(carry_ratings([_rating("metrics", 5)], [step])) == {"data-and-metrics": 5}
    # Two raters are two assessments: each is merged on its own.
    apart = carry_ratings([_rating("data", 3, "m1"), _rating("metrics", 5, "m2")], [step])
    assert sorted((r.rater_ref, r.proficiency) for r in apart) == [("m1", 3), ("m2", 5)]


def test_a_split_copies_the_rating_times_each_factor_and_a_retirement_drops_it() -> None:
    step = build_step(
        ["execution", "old-skill"],
        ["delivery", "planning"],
        [
            MapEntry(("execution",), ("delivery", "planning"), {"planning": 0.5}),
            MapEntry(("old-skill",), (), {}),
        ],
    )
    carried = carry_ratings([_rating("execution", 4), _rating("old-skill", 5)], [step])
    assert _values(carried) == {"delivery": 4, "planning": 2}


def test_unmapped_keys_carry_when_kept_and_vanish_when_not() -> None:
    step = build_step(["a", "b", "gone"], ["a", "b", "new"], [])
    assert step.identity
    carried = carry_ratings([_rating("a", 1), _rating("gone", 3)], [step])
    assert _values(carried) == {"a": 1}


def test_a_chain_of_versions_applies_each_step_in_turn() -> None:
    first = build_step(["a", "b"], ["ab"], [MapEntry(("a", "b"), ("ab",), {"a": 1, "b": 1})])
    second = build_step(["ab"], ["x", "y"], [MapEntry(("ab",), ("x", "y"), {"y": 0.5})])
    carried = carry_ratings([_rating("a", 2), _rating("b", 4)], [first, second])
    assert _values(carried) == {"x": 3, "y": 1.5}


def test_a_newer_rating_under_the_new_key_supersedes_the_carried_one(framework: Framework) -> None:
    fw = framework
    step = build_step(
        [c.key if c.key != "discovery" else "legacy" for c in fw.competencies],
        [c.key for c in fw.competencies],
        [MapEntry(("legacy",), ("discovery",), {})],
    )
    carried = carry_ratings([_rating("legacy", 1, days_ago=100)], [step])
    newer = [*carried, _rating("discovery", 4, days_ago=5, seq=2)]
    assert evaluate(fw, newer, as_of=AS_OF, track=None).values["discovery"] == 4


@PROPERTY_SETTINGS
@given(st.lists(ratings_lists, min_size=1, max_size=4))
def test_the_columnar_carry_agrees_with_the_per_subject_one(
    per_subject: list[list[Rating]],
) -> None:
    merge = build_step(
        OLD_KEYS,
        ("craft", "influence", "mentoring", "x", "y"),
        [
            MapEntry(("legacy", "delivery", "data"), ("craft",), {"legacy": 2, "data": 0.5}),
            MapEntry(("influence",), ("x", "y"), {"y": 0.25}),
        ],
    )
    subjects = [[r for r in _one_per_assessment(rs) if r.role != "intern"] for rs in per_subject]
    old = replace(
        build_framework(),
        competencies=tuple(Competency(k, k, "craft", 1.0) for k in OLD_KEYS),
    )
    columns = carry_cohort(cohort_ratings(old, subjects), [merge])
    for index, ratings in enumerate(subjects):
        expected = sorted(
            (r.competency, r.rater_ref, r.role, r.assessed_at, round(r.proficiency, 9))
            for r in carry_ratings(ratings, [merge])
        )
        rows = np.flatnonzero(columns.subject_index == index)
        assert len(rows) == len(expected)
        got = sorted(
            (
                merge.targets[int(columns.competency_index[i])],
                round(float(columns.proficiency[i]), 9),
            )
            for i in rows
        )
        assert got == sorted((e[0], e[4]) for e in expected)
