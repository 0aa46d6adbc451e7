"""Cohort scoring gives every subject exactly what the per-subject engine gives it."""

import math
import random
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.frameworks.compile import compile_framework
from app.frameworks.document import parse_document
from app.frameworks.files import load_file
from app.scoring import (
    DEFAULT_ROLE_WEIGHTS,
    RATER_ROLES,
    Framework,
    Rating,
    ScoringError,
    ScoringSettings,
    UnknownLevel,
    UnknownTrack,
    analyze_gaps,
    evaluate,
)
from app.scoring.cohort import (
    CohortRatings,
    CohortResult,
    _sorted_runs,
    cohort_ratings,
    epoch_micros,
    gap_matrix,
    readiness_lost,
    score_cohort,
)
from tests.scoring.conftest import AS_OF, RateFn
from tests.scoring.test_scoring_properties import KEYS, PROPERTY_SETTINGS, frameworks

FLOAT_TOLERANCE = 1e-9
LADDER_PATH = (
    Path(__file__).parents[2] / "app" / "frameworks" / "builtin" / "product-management.yaml"
)
# The same person under several roles is several raters, as in the engine.
RATERS = (
    ("manager", "m1"),
    ("manager", "m2"),
    ("peer", "p1"),
    ("peer", "me"),
    ("self", "me"),
    ("self", "m1"),
    ("direct_report", "d1"),
    ("external", "x1"),
    ("calibrated", "c1"),
    ("calibrated", "c2"),
    ("intern", "i1"),  # a role outside RATER_ROLES: ignored by the engine, dropped by callers
)


def _close(actual: float, expected: float) -> bool:
    return abs(actual - expected) <= FLOAT_TOLERANCE


def _columnar(
    framework: Framework, subjects: Sequence[Sequence[Rating]], rater_ids: str
) -> CohortRatings:
    """Build columns by hand with one of three rater-id schemes (all must score the same)."""
    if rater_ids == "pairs":
        return cohort_ratings(framework, subjects)
    competency_index = {c.key: index for index, c in enumerate(framework.competencies)}
    refs = sorted({rating.rater_ref for ratings in subjects for rating in ratings})
    rows = [
        (subject, rating)
        for subject, ratings in enumerate(subjects)
        for rating in ratings
        if rating.competency in competency_index and rating.role in RATER_ROLES
    ]

    def rater_id(ref: str) -> int:
        index = refs.index(ref)
        # "refs": one id per rater_ref shared by its roles; "sparse": huge, negative, gappy ids.
        return index if rater_ids == "refs" else (index - 3) * 10**15 + 7

    return CohortRatings(
        subject_index=np.array([s for s, _ in rows], dtype=np.int32),
        competency_index=np.array([competency_index[r.competency] for _, r in rows], np.int32),
        proficiency=np.array([r.proficiency for _, r in rows], dtype=np.float64),
        role=np.array([RATER_ROLES.index(r.role) for _, r in rows], dtype=np.int8),
        rater=np.array([rater_id(r.rater_ref) for _, r in rows], dtype=np.int64),
        assessed_at=np.array([epoch_micros(r.assessed_at) for _, r in rows], dtype=np.int64),
        sequence=np.array([r.sequence for _, r in rows], dtype=np.int64),
        n_subjects=len(subjects),
    )


def assert_matches_engine(
    framework: Framework,
    subjects: Sequence[Sequence[Rating]],
    tracks: Sequence[str | None],
    result: CohortResult,
    settings: ScoringSettings | None = None,
) -> None:
    """Check every cohort number against evaluate / analyze_gaps for each subject."""
    n_subjects = len(subjects)
    level_keys = [level.key for level in framework.levels]
    competency_keys = [competency.key for competency in framework.competencies]
    shape = (n_subjects, len(level_keys))
    assert result.values.shape == (n_subjects, len(competency_keys))
    assert result.readiness.shape == result.coverage.shape == result.meets.shape == shape
    lost = {key: readiness_lost(framework, result.values, key) for key in level_keys}
    gaps_next = gap_matrix(framework, result.values, result.next_level)
    for subject, (ratings, track) in enumerate(zip(subjects, tracks, strict=True)):
        evaluation = evaluate(framework, ratings, as_of=AS_OF, track=track, settings=settings)
        for column, key in enumerate(competency_keys):
            expected = evaluation.values.get(key)
            actual = result.values[subject, column]
            assert math.isnan(actual) if expected is None else _close(actual, expected), key
        for column, key in enumerate(level_keys):
            level = evaluation.level(key)
            assert _close(result.readiness[subject, column], level.readiness), key
            assert _close(result.coverage[subject, column], level.coverage), key
            assert bool(result.meets[subject, column]) is level.meets, key
        attained = result.attained[subject]
        next_level = result.next_level[subject]
        assert (level_keys[attained] if attained >= 0 else None) == evaluation.attained_level
        assert (level_keys[next_level] if next_level >= 0 else None) == evaluation.next_level
        assert _close(result.level_index[subject], evaluation.level_index)
        assert _close(result.overall_coverage[subject], evaluation.coverage)
        assert _close(result.confidence[subject], evaluation.confidence)
        assert evaluation.aggregation is not None
        assert result.distinct_raters[subject] == evaluation.aggregation.distinct_raters

        for column, key in enumerate(level_keys):
            row = lost[key][subject]
            items = analyze_gaps(framework, evaluation, target_level=key).items
            by_competency = {item.competency: item.readiness_points_lost for item in items}
            for position, competency in enumerate(competency_keys):
                assert _close(row[position], by_competency.get(competency, 0.0)), competency
            if items:  # a level that expects nothing has readiness 0 and nothing to lose
                assert _close(row.sum(), 1.0 - result.readiness[subject, column])

        gap_items = (
            analyze_gaps(framework, evaluation).items if evaluation.next_level is not None else ()
        )
        required = {item.competency: item for item in gap_items}
        for position, competency in enumerate(competency_keys):
            gap = gaps_next[subject, position]
            if competency not in required:
                assert math.isnan(gap), competency
            else:
                item = required[competency]
                assert _close(gap, (item.actual or 0.0) - item.required), competency


# -- property: random frameworks, settings and cohorts -------------------------------------------

role_weight_maps = st.one_of(
    st.just(DEFAULT_ROLE_WEIGHTS),
    st.fixed_dictionaries(
        {role: st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.0]) for role in RATER_ROLES[:-1]}
    ).map(MappingProxyType),
)
scoring_settings = st.builds(
    ScoringSettings,
    readiness_threshold=st.sampled_from([0.5, 0.85, 1.0]),
    gap_tolerance=st.sampled_from([0.0, 0.25, 0.5, 1.0, 2.0]),
    window_days=st.sampled_from([30, 365]),
    role_weights=role_weight_maps,
    gap_tolerance_mode=st.sampled_from(["points", "steps", "fraction"]),
)
ratings = st.builds(
    lambda competency, proficiency, rater, days_ago, microseconds, sequence: Rating(
        competency,
        proficiency,
        rater[1],
        rater[0],
        AS_OF - timedelta(days=days_ago, microseconds=microseconds),
        sequence,
    ),
    st.sampled_from([*KEYS, "legacy"]),
    # Out of the 0-5 scale on both sides, so clamping is exercised.
    st.one_of(st.integers(-1, 6).map(float), st.floats(-1, 6, allow_nan=False)),
    st.sampled_from(RATERS),
    # Window edges (30 and 365 days, ± 1 µs) and the future, often on the same day (ties).
    st.one_of(st.sampled_from([0, 30, 365]), st.integers(-3, 400)),
    st.sampled_from([0, 0, 1, -1]),
    st.integers(0, 2),
)
# A manager's baseline on most competencies (so levels are actually reached) under random extra
# ratings that may tie with it, replace it or fall outside the window.
baselines = st.fixed_dictionaries(
    {key: st.sampled_from([None, 1.0, 2.0, 3.0, 4.0, 5.0, 5.0]) for key in KEYS}
).map(
    lambda values: [
        Rating(key, value, "m1", "manager", AS_OF - timedelta(days=10), 1)
        for key, value in values.items()
        if value is not None
    ]
)
subject_ratings = st.builds(
    lambda base, extra: base + extra, baselines, st.lists(ratings, max_size=12)
)
cohorts = st.integers(0, 30).flatmap(
    lambda size: st.lists(subject_ratings, min_size=size, max_size=size)
)


@PROPERTY_SETTINGS
@given(
    frameworks(),
    scoring_settings,
    cohorts,
    st.data(),
    st.sampled_from(["pairs", "refs", "sparse"]),
)
def test_every_subject_scores_as_with_the_engine(
    framework: Framework,
    scoring: ScoringSettings,
    subjects: list[list[Rating]],
    data: st.DataObject,
    rater_ids: str,
) -> None:
    tracks = data.draw(
        st.lists(
            st.sampled_from([None, "ic", "mgmt"]), min_size=len(subjects), max_size=len(subjects)
        )
    )
    result = score_cohort(
        framework,
        _columnar(framework, subjects, rater_ids),
        as_of=AS_OF,
        tracks=tracks,
        settings=scoring,
    )
    assert_matches_engine(framework, subjects, tracks, result, scoring)


# Bit for bit: groups are summed in key order whatever the row order. Fewer examples, since
# the engine comparison above already covers the values.
@settings(PROPERTY_SETTINGS, max_examples=50)
@given(frameworks(), cohorts, st.randoms(use_true_random=False))
def test_row_order_does_not_matter(
    framework: Framework, subjects: list[list[Rating]], shuffle: random.Random
) -> None:
    columns = cohort_ratings(framework, subjects)
    size = columns.proficiency.shape[0]
    order = np.array(shuffle.sample(range(size), size), dtype=np.intp)
    shuffled = CohortRatings(
        subject_index=columns.subject_index[order],
        competency_index=columns.competency_index[order],
        proficiency=columns.proficiency[order],
        role=columns.role[order],
        rater=columns.rater[order],
        assessed_at=columns.assessed_at[order],
        sequence=columns.sequence[order],
        n_subjects=columns.n_subjects,
    )
    tracks = ["ic"] * len(subjects)
    first = score_cohort(framework, columns, as_of=AS_OF, tracks=tracks)
    second = score_cohort(framework, shuffled, as_of=AS_OF, tracks=tracks)
    for field in CohortResult.__dataclass_fields__:
        np.testing.assert_array_equal(getattr(first, field), getattr(second, field))


# -- the built-in ladder ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ladder() -> Framework:
    """The built-in product-management ladder, loaded the way the app loads it."""
    return compile_framework(
        parse_document(load_file(LADDER_PATH.read_bytes(), LADDER_PATH.name)), 1
    )


def _random_subject(rng: random.Random, keys: Sequence[str]) -> list[Rating]:
    raters = rng.sample(RATERS, rng.randint(0, 5))
    subject: list[Rating] = []
    for role, ref in raters:
        for key in rng.sample([*keys, "retired_competency"], rng.randint(1, len(keys))):
            for _ in range(rng.choice([1, 1, 1, 2, 3])):  # some raters re-rate: latest wins
                proficiency = rng.choice([float(rng.randint(0, 5)), rng.uniform(-0.5, 5.5)])
                days_ago = rng.choice([rng.randint(-5, 420), rng.randint(0, 3)])
                at = AS_OF - timedelta(days=days_ago)
                subject.append(Rating(key, proficiency, ref, role, at, rng.randint(0, 1)))
    return subject


def test_the_builtin_ladder_scores_as_with_the_engine(ladder: Framework) -> None:
    rng = random.Random(20250630)
    keys = [competency.key for competency in ladder.competencies]
    subjects = [_random_subject(rng, keys) for _ in range(300)]
    # A few strong subjects, so the upper levels and the top of each path are reached too.
    for _ in range(30):
        strong = [Rating(key, rng.uniform(4, 5), "m1", "manager", AS_OF, 0) for key in keys]
        calibrated = [Rating(key, 5.0, "c1", "calibrated", AS_OF, 0) for key in keys[:3]]
        subjects.append(strong + calibrated)
    tracks = [rng.choice([None, "ic", "management"]) for _ in subjects]
    result = score_cohort(ladder, cohort_ratings(ladder, subjects), as_of=AS_OF, tracks=tracks)
    assert_matches_engine(ladder, subjects, tracks, result)
    assert len(set(result.attained.tolist())) >= 4  # the sample is not degenerate


# -- a small table worked out by hand (conftest's ladder) ---------------------------------------


def _manager_ratings(rate: RateFn, **overrides: float) -> list[Rating]:
    values = {"discovery": 2.0, "delivery": 3.0, "data": 2.0, "influence": 2.0, "mentoring": 1.0}
    values.update(overrides)
    return [rate(key, value) for key, value in values.items()]


def test_a_small_cohort_by_hand(framework: Framework, rate: RateFn) -> None:
    subjects = [
        # Exactly L2's requirements: L1 and L2 met, the top of the trunk.
        _manager_ratings(rate),
        # A self rating of 5 lifts discovery to (3·2 + 1·5) / 4 = 2.75; next is Senior (ic).
        [*_manager_ratings(rate), rate("discovery", 5, "me", "self")],
        # Nothing rated.
        [],
        # Delivery rated twice at one moment: sequence 1 (2 points) is the later one, so L2's
        # critical delivery (3) is unmet. A calibrated 4 overrides mentoring; an older
        # calibrated rating outside the window does not count.
        [
            *_manager_ratings(rate),
            rate("delivery", 2, sequence=1),
            rate("mentoring", 4, "c1", "calibrated", days_ago=5),
            rate("mentoring", 0, "c2", "calibrated", days_ago=400),
        ],
    ]
    tracks = [None, "ic", None, "mgmt"]
    result = score_cohort(
        framework, cohort_ratings(framework, subjects), as_of=AS_OF, tracks=tracks
    )
    levels = [level.key for level in framework.levels]
    nan = math.nan
    # L3ic readiness of subject 1: .35·2.75/4 + .175·3/4 + .175·2/3 + .3·2/3.
    senior = 0.35 * 2.75 / 4 + 0.175 * 0.75 + 0.175 * 2 / 3 + 0.3 * 2 / 3
    table: list[tuple[list[float], str | None, str | None, float, float, int]] = [
        # values                 attained next   level index    confidence  raters
        ([2, 3, 2, 2, 1],        "L2",    None,   2.0,           0.5,        1),
        ([2.75, 3, 2, 2, 1],     "L2",    "L3ic", 2 + senior,    0.75,       2),
        ([nan] * 5,              None,    "L1",   0.0,           0.0,        0),
        ([2, 2, 2, 2, 4],        "L1",    "L2",   1 + (2 + 2 / 3 + 1 + 1 + 2) / 7, 0.75, 2),
    ]  # fmt: skip
    for subject, (values, attained, next_level, index, confidence, raters) in enumerate(table):
        np.testing.assert_allclose(result.values[subject], values, rtol=0, atol=1e-12)
        assert result.attained[subject] == (levels.index(attained) if attained else -1)
        assert result.next_level[subject] == (levels.index(next_level) if next_level else -1)
        assert result.level_index[subject] == pytest.approx(index, abs=1e-12)
        assert result.confidence[subject] == pytest.approx(confidence, abs=1e-12)
        assert result.distinct_raters[subject] == raters
    # Exactly 1.0 where everything is met, as the engine gives.
    assert result.readiness[0].tolist() == [
        1.0,
        1.0,
        pytest.approx(0.35 * 2 / 4 + 0.175 * 3 / 4 + 0.175 * 2 / 3 + 0.3 * 2 / 3),
        pytest.approx(0.2 * 2 / 3 + 0.1 + 0.1 + 0.2 * 2 / 4 + 0.4 * 1 / 4),
    ]
    assert result.coverage[2].tolist() == [0.0] * 4
    assert result.meets[3].tolist() == [True, False, False, False]

    # Subject 3 toward L2 loses only on delivery: 1 · (1 − 2/3) / 7.
    lost = readiness_lost(framework, result.values, "L2")[3]
    np.testing.assert_allclose(lost, [0, (1 - 2 / 3) / 7, 0, 0, 0], atol=1e-12)
    gaps = gap_matrix(framework, result.values, result.next_level)
    np.testing.assert_array_equal(np.isnan(gaps[0]), [True] * 5)  # top of the trunk
    np.testing.assert_allclose(gaps[3], [0, -1, 0, 0, 3], atol=1e-12)  # vs L2: 2,3,2,2,1
    np.testing.assert_allclose(gaps[2], [-1, -2, -1, -1, nan], atol=1e-12)  # unrated vs L1


def test_raters_who_agree_give_exactly_their_value(framework: Framework, rate: RateFn) -> None:
    # (3·0.1 + 2·0.1 + 1·0.1) / 6 is not 0.1 in floating point; the engine keeps the mean
    # inside the raters' range, and so must the cohort path.
    subject = [rate("data", 0.1), rate("data", 0.1, "p1", "peer"), rate("data", 0.1, "me", "self")]
    result = score_cohort(
        framework, cohort_ratings(framework, [subject]), as_of=AS_OF, tracks=[None]
    )
    assert result.values[0, 2] == 0.1 == evaluate(framework, subject, as_of=AS_OF).values["data"]


# -- refusals and edges -------------------------------------------------------------------------


def _one_rating(framework: Framework, **changes: object) -> CohortRatings:
    columns = cohort_ratings(framework, [[Rating("data", 3.0, "m1", "manager", AS_OF, 0)]])
    return replace(columns, **changes)  # type: ignore[arg-type]


def test_an_unknown_track_is_refused(framework: Framework) -> None:
    with pytest.raises(UnknownTrack):
        score_cohort(framework, _one_rating(framework), as_of=AS_OF, tracks=["design"])


@pytest.mark.parametrize(
    "changes",
    [
        {"subject_index": np.array([1], dtype=np.int32)},
        {"competency_index": np.array([5], dtype=np.int32)},
        {"competency_index": np.array([-1], dtype=np.int32)},
        {"role": np.array([6], dtype=np.int8)},
        {"role": np.array([1.0])},
        {"sequence": np.array([0, 1])},
        {"proficiency": np.array([math.nan])},
        {"proficiency": np.array([math.inf])},
    ],
)
def test_malformed_columns_are_refused(framework: Framework, changes: dict[str, object]) -> None:
    with pytest.raises(ScoringError):
        score_cohort(framework, _one_rating(framework, **changes), as_of=AS_OF, tracks=[None])


def test_a_track_per_subject_is_required(framework: Framework) -> None:
    with pytest.raises(ScoringError):
        score_cohort(framework, _one_rating(framework), as_of=AS_OF, tracks=[None, None])


def test_a_non_finite_rating_outside_the_window_is_skipped_like_the_engine(
    framework: Framework,
) -> None:
    old = epoch_micros(AS_OF - timedelta(days=400))
    columns = _one_rating(
        framework,
        proficiency=np.array([math.nan]),
        assessed_at=np.array([old], dtype=np.int64),
    )
    result = score_cohort(framework, columns, as_of=AS_OF, tracks=[None])
    assert np.isnan(result.values).all()
    assert result.distinct_raters.tolist() == [0]


def test_an_empty_cohort(framework: Framework) -> None:
    result = score_cohort(framework, cohort_ratings(framework, []), as_of=AS_OF, tracks=[])
    assert result.values.shape == (0, 5)
    assert result.readiness.shape == (0, 4)
    assert result.attained.shape == result.confidence.shape == (0,)


def test_naive_as_of_is_utc(framework: Framework) -> None:
    columns = _one_rating(framework)
    naive = datetime(2025, 6, 30, 12, 0)
    aware = score_cohort(framework, columns, as_of=AS_OF, tracks=[None])
    naive_result = score_cohort(framework, columns, as_of=naive, tracks=[None])
    np.testing.assert_array_equal(naive_result.values, aware.values)
    assert epoch_micros(naive) == epoch_micros(AS_OF)


def test_gap_helpers_refuse_bad_shapes_and_levels(framework: Framework) -> None:
    values = np.zeros((2, 5))
    with pytest.raises(UnknownLevel):
        readiness_lost(framework, values, "L9")
    with pytest.raises(ScoringError):
        readiness_lost(framework, np.zeros((2, 4)), "L1")
    with pytest.raises(ScoringError):
        gap_matrix(framework, values, np.array([0, 4]))
    with pytest.raises(ScoringError):
        gap_matrix(framework, values, np.array([0]))


def test_sorting_without_a_single_key_agrees_with_the_fast_path() -> None:
    rng = np.random.default_rng(7)
    first = rng.integers(0, 5, 500)
    second = rng.integers(0, 3, 500)
    fast_order, fast_starts = _sorted_runs([(first, 5), (second, 3)], (1, 2))
    # Spans whose product passes int64 force the lexsort path; the runs must not change.
    slow_order, slow_starts = _sorted_runs([(first, 2**40), (second, 2**40)], (1, 2))
    for column in (first, second):
        np.testing.assert_array_equal(column[fast_order], column[slow_order])
    for fast, slow in zip(fast_starts, slow_starts, strict=True):
        np.testing.assert_array_equal(fast, slow)
    assert fast_starts[0].sum() == len(set(first.tolist()))
    assert fast_starts[1].sum() == len(set(zip(first.tolist(), second.tolist(), strict=True)))


def test_importing_the_scoring_package_does_not_load_numpy() -> None:
    probe = "import sys, app.scoring\nprint('numpy' in sys.modules)\n"
    # A fresh interpreter: this process has loaded numpy for the tests above.
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
