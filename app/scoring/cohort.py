"""Cohort scoring: many subjects at once in columnar numpy form, by the engine's exact rules.

The level rules come from the engine's own helpers, so the two paths cannot drift. This is the
only module of the package that uses numpy; ``app.scoring`` does not import it.
"""

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt

from app.scoring.engine import (
    EPSILON,
    INDEX_CAP,
    allowed_shortfall,
    as_utc,
    confidence,
    find_level,
    level_path,
    level_requirements,
    window_start,
)
from app.scoring.errors import ScoringError
from app.scoring.model import RATER_ROLES, Framework, Level, Rating, ScoringSettings

__all__ = [
    "CohortRatings",
    "CohortResult",
    "cohort_ratings",
    "epoch_micros",
    "gap_matrix",
    "readiness_lost",
    "score_cohort",
]

Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]
Int8s = npt.NDArray[np.int8]
Int32s = npt.NDArray[np.int32]
Int64s = npt.NDArray[np.int64]
Ints = npt.NDArray[np.integer]

_CALIBRATED = RATER_ROLES.index("calibrated")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_INT64_MIN = np.iinfo(np.int64).min
_INT64_MAX = np.iinfo(np.int64).max


@dataclass(frozen=True, slots=True, eq=False)
class CohortRatings:
    """Ratings of many subjects in columnar form (one row per rating)."""

    # Callers drop ratings of competencies the framework does not have (the engine only lists
    # them in ignored_competencies) and of roles outside RATER_ROLES (which the engine ignores
    # unless a request gives such a role a weight). A rater is the pair (role, rater), like the
    # engine's (role, rater_ref): an id may be shared by several roles and by several subjects.
    subject_index: Int32s  # 0..n_subjects-1
    competency_index: Int32s  # index into framework.competencies
    proficiency: Floats
    role: Int8s  # index into RATER_ROLES
    rater: Int64s  # rater id, e.g. a factorized rater_ref
    assessed_at: Int64s  # epoch microseconds, UTC (see epoch_micros)
    sequence: Int64s  # tie-break between one rater's ratings with the same timestamp
    n_subjects: int


# eq=False: numpy arrays have no single truth value, so a generated __eq__ would only raise.
@dataclass(frozen=True, slots=True, eq=False)
class CohortResult:
    """Per-subject scores; level columns follow ``framework.levels``, -1 means none."""

    values: Floats  # (n_subjects, n_competencies) a_c, NaN = unrated
    readiness: Floats  # (n_subjects, n_levels)
    coverage: Floats  # (n_subjects, n_levels)
    meets: Bools  # (n_subjects, n_levels)
    attained: Int32s  # (n_subjects,) index into framework.levels, -1 = none
    next_level: Int32s  # (n_subjects,) -1 = none (top of the path)
    level_index: Floats  # (n_subjects,)
    confidence: Floats  # (n_subjects,)
    overall_coverage: Floats  # (n_subjects,)
    distinct_raters: Int32s  # (n_subjects,)


@dataclass(frozen=True, slots=True, eq=False)
class _LevelVectors:
    """One level's requirements (required > 0) as columns, weights w_L(c) and their total."""

    columns: npt.NDArray[np.intp]
    weights: tuple[float, ...]
    required: Floats
    critical: Bools
    total: float


def epoch_micros(moment: datetime) -> int:
    """Return the moment as integer microseconds since the Unix epoch, naive read as UTC."""
    return (as_utc(moment) - _EPOCH) // _MICROSECOND


def cohort_ratings(
    framework: Framework, ratings_per_subject: Sequence[Iterable[Rating]]
) -> CohortRatings:
    """Build columnar ratings from per-subject ``Rating`` lists (a plain loop; for small cohorts)."""
    competency_index = {c.key: index for index, c in enumerate(framework.competencies)}
    role_index = {role: index for index, role in enumerate(RATER_ROLES)}
    rater_ids: dict[tuple[str, str], int] = {}
    subjects: list[int] = []
    competencies: list[int] = []
    proficiencies: list[float] = []
    roles: list[int] = []
    raters: list[int] = []
    moments: list[int] = []
    sequences: list[int] = []
    for subject, ratings in enumerate(ratings_per_subject):
        for rating in ratings:
            competency = competency_index.get(rating.competency)
            role = role_index.get(rating.role)
            if competency is None or role is None:
                continue  # not representable; see CohortRatings
            subjects.append(subject)
            competencies.append(competency)
            proficiencies.append(rating.proficiency)
            roles.append(role)
            raters.append(rater_ids.setdefault((rating.role, rating.rater_ref), len(rater_ids)))
            moments.append(epoch_micros(rating.assessed_at))
            sequences.append(rating.sequence)
    return CohortRatings(
        subject_index=np.array(subjects, dtype=np.int32),
        competency_index=np.array(competencies, dtype=np.int32),
        proficiency=np.array(proficiencies, dtype=np.float64),
        role=np.array(roles, dtype=np.int8),
        rater=np.array(raters, dtype=np.int64),
        assessed_at=np.array(moments, dtype=np.int64),
        sequence=np.array(sequences, dtype=np.int64),
        n_subjects=len(ratings_per_subject),
    )


def _index_column(name: str, array: npt.ArrayLike, size: int, bound: int) -> Ints:
    column = np.asarray(array)
    if column.ndim != 1 or column.shape[0] != size:
        raise ScoringError(f"{name} must be one-dimensional with one entry per rating")
    if column.dtype.kind not in "iu":
        raise ScoringError(f"{name} must hold integers, not {column.dtype}")
    if size and (int(column.min()) < 0 or int(column.max()) >= bound):
        raise ScoringError(f"{name} must lie in [0, {bound})")
    # uint64 does not mix with int64 in place; the range check above makes the cast exact.
    return column.astype(np.int64) if column.dtype == np.uint64 else column


def _int64_column(name: str, array: npt.ArrayLike, size: int) -> Int64s:
    column = np.asarray(array)
    if column.ndim != 1 or column.shape[0] != size:
        raise ScoringError(f"{name} must be one-dimensional with one entry per rating")
    if column.dtype.kind not in "iu":
        raise ScoringError(f"{name} must hold integers, not {column.dtype}")
    return column.astype(np.int64, copy=False)


def _dense(ids: Int64s) -> tuple[Int64s, int]:
    """Map ids onto 0..span-1 keeping equality; offsetting suffices when they are compact."""
    if ids.size == 0:
        return ids, 1
    low, high = int(ids.min()), int(ids.max())
    if high - low <= 2 * ids.size:
        return ids - low, high - low + 1
    unique, inverse = np.unique(ids, return_inverse=True)
    return inverse.astype(np.int64, copy=False), len(unique)


def _run_starts(ordered: npt.NDArray[np.generic]) -> Bools:
    """Mark the positions of a sorted array where a new value begins."""
    starts = np.empty(ordered.shape[0], dtype=np.bool_)
    starts[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=starts[1:])
    return starts


def _sorted_runs(
    columns: Sequence[tuple[Ints, int]], prefixes: Sequence[int]
) -> tuple[npt.NDArray[np.intp], list[Bools]]:
    """Sort rows by a tuple of (column, span) pairs; mark where the runs of each prefix start."""
    # When the spans fit one int64 the tuple becomes a single key and an unstable sort is enough,
    # since equal tuples only need to end up adjacent: several times faster than np.lexsort.
    spans = [max(span, 1) for _, span in columns]
    if math.prod(spans) <= _INT64_MAX:
        key = columns[0][0].astype(np.int64)
        for column, span in columns[1:]:
            key *= span
            key += column
        order = np.argsort(key)
        ordered = key[order]
        del key
        # A prefix of the tuple is the key divided by the spans of the columns after it.
        return order, [
            _run_starts(ordered if length == len(spans) else ordered // math.prod(spans[length:]))
            for length in prefixes
        ]
    order = np.lexsort([column for column, _ in reversed(columns)])
    changed = np.zeros(max(order.shape[0] - 1, 0), dtype=np.bool_)
    by_length: dict[int, Bools] = {}
    for length, (column, _) in enumerate(columns, start=1):
        column_ordered = column[order]
        changed |= column_ordered[1:] != column_ordered[:-1]
        by_length[length] = np.concatenate((np.ones(min(order.shape[0], 1), np.bool_), changed))
    return order, [by_length[length] for length in prefixes]


def _latest(
    groups: Int64s, n_groups: int, assessed_at: Int64s, sequence: Int64s, proficiency: Floats
) -> Floats:
    """Per group, the proficiency of the largest (assessed_at, sequence, proficiency)."""
    # Lexicographic max in three passes: later moment, then later sequence, then (the engine's
    # tie rule) higher proficiency among what is left.
    best_at = np.full(n_groups, _INT64_MIN, dtype=np.int64)
    np.maximum.at(best_at, groups, assessed_at)
    left = assessed_at == best_at[groups]
    best_sequence = np.full(n_groups, _INT64_MIN, dtype=np.int64)
    np.maximum.at(best_sequence, groups[left], sequence[left])
    left &= sequence == best_sequence[groups]
    best = np.full(n_groups, -np.inf)
    np.maximum.at(best, groups[left], proficiency[left])
    return best


def _aggregate(
    framework: Framework,
    ratings: CohortRatings,
    *,
    as_of: datetime,
    settings: ScoringSettings,
) -> tuple[Floats, Int32s]:
    """Return a_c per (subject, competency), NaN = unrated, and each subject's distinct raters."""
    n_subjects = ratings.n_subjects
    n_competencies = len(framework.competencies)
    proficiency = np.asarray(ratings.proficiency, dtype=np.float64)
    if proficiency.ndim != 1:
        raise ScoringError("proficiency must be one-dimensional with one entry per rating")
    size = proficiency.shape[0]
    subject = _index_column("subject_index", ratings.subject_index, size, n_subjects)
    competency = _index_column("competency_index", ratings.competency_index, size, n_competencies)
    role = _index_column("role", ratings.role, size, len(RATER_ROLES))
    rater = _int64_column("rater", ratings.rater, size)
    assessed_at = _int64_column("assessed_at", ratings.assessed_at, size)
    sequence = _int64_column("sequence", ratings.sequence, size)

    # Same window arithmetic as the engine (datetime first, so the same moments are refused).
    as_of = as_utc(as_of)
    begins = window_start(as_of, settings.window_days)
    role_weights = np.array([settings.role_weights.get(r, 0.0) for r in RATER_ROLES])
    # The engine skips a rating when its role weight is <= 0, unless it is calibrated.
    counted_role = ~(role_weights <= 0)
    counted_role[_CALIBRATED] = True
    keep = counted_role[role]
    keep &= assessed_at > epoch_micros(begins)
    keep &= assessed_at <= epoch_micros(as_of)
    if not keep.all():
        subject, competency, role = subject[keep], competency[keep], role[keep]
        rater, assessed_at, sequence = rater[keep], assessed_at[keep], sequence[keep]
        proficiency = proficiency[keep]
    del keep
    finite = np.isfinite(proficiency)
    if not finite.all():
        bad = float(proficiency[~finite][0])
        raise ScoringError(f"proficiency must be a finite number, got {bad!r}")
    # Clamped before the latest-rating choice, as the engine's tie rule compares clamped values;
    # copied only when something is off the scale, since the caller's column must not change.
    bottom, top = float(framework.scale_min), float(framework.scale_max)
    if proficiency.size and (proficiency.min() < bottom or proficiency.max() > top):
        proficiency = np.clip(proficiency, bottom, top)
    rater_id, n_rater_ids = _dense(rater)
    del rater

    # One sort serves both questions. Runs of (subject, role, rater) are the distinct raters,
    # calibrated ones included; runs of (subject, role, rater, competency) are one rater's
    # ratings of one competency, of which the latest counts. Calibrated raters are grouped
    # too: it costs nothing and saves copying the columns.
    order, (rater_starts, group_starts) = _sorted_runs(
        [
            (subject, n_subjects),
            (role, len(RATER_ROLES)),
            (rater_id, n_rater_ids),
            (competency, n_competencies),
        ],
        (3, 4),
    )
    distinct = np.bincount(subject[order[rater_starts]], minlength=n_subjects).astype(np.int32)
    first = order[group_starts]
    if first.shape[0] == order.shape[0]:
        # No rater rated a competency twice in the window: every row is its rater's latest.
        latest = proficiency[first]
    else:
        groups = np.empty(order.shape[0], dtype=np.int64)
        groups[order] = np.cumsum(group_starts) - 1
        latest = _latest(groups, first.shape[0], assessed_at, sequence, proficiency)
        del groups
    del order, rater_starts, group_starts
    others = role[first] != _CALIBRATED
    rows = first[others]
    latest = latest[others]
    del first, others
    cells = n_subjects * n_competencies
    group_cell = subject[rows].astype(np.int64) * n_competencies + competency[rows]
    weight = role_weights[role[rows]]
    del rows
    values = np.full(cells, np.nan)
    # astype without a copy: bincount with weights already gives float64 (for the type checker).
    total = np.bincount(group_cell, weights=weight, minlength=cells).astype(np.float64, copy=False)
    mean = np.bincount(group_cell, weights=weight * latest, minlength=cells).astype(
        np.float64, copy=False
    )
    rated = total > 0
    mean[rated] /= total[rated]
    low = np.full(cells, np.inf)
    high = np.full(cells, -np.inf)
    np.minimum.at(low, group_cell, latest)
    np.maximum.at(high, group_cell, latest)
    # The engine keeps the mean inside the raters' range against rounding; so does this.
    values[rated] = np.minimum(high[rated], np.maximum(low[rated], mean[rated]))
    del total, mean, low, high, group_cell, weight, latest

    # A calibrated rating overrides: the largest (assessed_at, sequence, proficiency) of any
    # calibrated rater, which is the engine's max over each calibrated rater's latest rating.
    calibrated = role == _CALIBRATED
    if calibrated.any():
        calibrated_cell = subject[calibrated].astype(np.int64) * n_competencies
        calibrated_cell += competency[calibrated]
        override = _latest(
            calibrated_cell,
            cells,
            assessed_at[calibrated],
            sequence[calibrated],
            proficiency[calibrated],
        )
        values[calibrated_cell] = override[calibrated_cell]
    return values.reshape(n_subjects, n_competencies), distinct


def _level_vectors(framework: Framework, level: Level) -> _LevelVectors:
    """Turn the engine's requirements of one level into column vectors."""
    position = {competency.key: index for index, competency in enumerate(framework.competencies)}
    requirements = level_requirements(framework, level)
    weights = tuple(requirement.weight for requirement in requirements)
    # Summed in the same order as the per-subject rows below, so a subject who meets every
    # requirement gets a readiness of exactly 1.0, as with the engine.
    total = 0.0
    for weight in weights:
        total += weight
    return _LevelVectors(
        columns=np.array([position[r.competency.key] for r in requirements], dtype=np.intp),
        weights=weights,
        required=np.array([r.expectation.required for r in requirements], dtype=np.float64),
        critical=np.array([r.expectation.critical for r in requirements], dtype=np.bool_),
        total=total,
    )


def _values_matrix(framework: Framework, values: npt.ArrayLike) -> Floats:
    matrix = np.asarray(values, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[1] != len(framework.competencies):
        raise ScoringError("values must have shape (n_subjects, n_competencies)")
    return matrix


def _attainments(actual: Floats, vectors: _LevelVectors) -> Floats:
    """min(1, a/r) per requirement, never below 0; ``actual`` has unrated as 0."""
    return np.clip(actual[:, vectors.columns] / vectors.required, 0.0, 1.0)


def _weighted_rows(matrix: Floats, weights: tuple[float, ...]) -> Floats:
    """Σ_j weights[j]·matrix[:, j], summed left to right like ``_LevelVectors.total``."""
    result = np.zeros(matrix.shape[0])
    for column, weight in enumerate(weights):
        result += matrix[:, column] * weight
    return result


def _score_level(
    values: Floats,
    actual: Floats,
    vectors: _LevelVectors,
    settings: ScoringSettings,
    scale_step: float,
) -> tuple[Floats, Floats, Bools]:
    """Readiness, coverage and meets of one level for every subject (the engine's score_level)."""
    n_subjects = values.shape[0]
    if vectors.total > 0:
        attainments = _attainments(actual, vectors)
        readiness = _weighted_rows(attainments, vectors.weights) / vectors.total
        rated = (~np.isnan(values[:, vectors.columns])).astype(np.float64)
        coverage = _weighted_rows(rated, vectors.weights) / vectors.total
    else:
        # Nothing is expected here (the engine's NOTHING_EXPECTED): never met on no evidence.
        zeros = np.zeros(n_subjects)
        return zeros, zeros.copy(), np.zeros(n_subjects, dtype=np.bool_)
    expected = actual[:, vectors.columns]
    unmet = readiness < settings.readiness_threshold - EPSILON
    critical = vectors.critical
    unmet |= (expected[:, critical] < vectors.required[critical] - EPSILON).any(axis=1)
    # The engine's allowed_shortfall, element by element (same float operations).
    if settings.gap_tolerance_mode == "fraction":
        shortfall: Floats | float = settings.gap_tolerance * vectors.required
    else:
        shortfall = allowed_shortfall(settings, 0.0, scale_step)
    floor = vectors.required - shortfall - EPSILON
    unmet |= (expected < floor).any(axis=1)
    return readiness, coverage, ~unmet


def _track_codes(
    framework: Framework, tracks: Sequence[str | None], n_subjects: int
) -> tuple[Int64s, list[npt.NDArray[np.intp]]]:
    """Code each subject's track and return each code's path as indices into framework.levels."""
    if len(tracks) != n_subjects:
        raise ScoringError(f"tracks has {len(tracks)} entries for {n_subjects} subjects")
    codes: dict[str | None, int] = {}
    track_code = np.fromiter(
        (codes.setdefault(track, len(codes)) for track in tracks), dtype=np.int64, count=n_subjects
    )
    position = {level.key: index for index, level in enumerate(framework.levels)}
    paths = [
        np.array([position[key] for key in level_path(framework, track)], dtype=np.intp)
        for track in codes
    ]
    return track_code, paths


def score_cohort(
    framework: Framework,
    ratings: CohortRatings,
    *,
    as_of: datetime,
    tracks: Sequence[str | None],
    settings: ScoringSettings | None = None,
) -> CohortResult:
    """Score every subject of a cohort exactly as ``evaluate`` scores each one alone."""
    effective = framework.settings if settings is None else settings
    n_subjects = ratings.n_subjects
    if n_subjects < 0:
        raise ScoringError("n_subjects must not be negative")
    # Tracks first: like evaluate, an unknown track is refused before any rating is read.
    track_code, paths = _track_codes(framework, tracks, n_subjects)
    values, distinct_raters = _aggregate(framework, ratings, as_of=as_of, settings=effective)
    actual = np.nan_to_num(values, nan=0.0)  # unrated counts as 0

    n_levels = len(framework.levels)
    readiness = np.empty((n_subjects, n_levels))
    coverage = np.empty((n_subjects, n_levels))
    meets = np.empty((n_subjects, n_levels), dtype=np.bool_)
    for index, level in enumerate(framework.levels):
        vectors = _level_vectors(framework, level)
        readiness[:, index], coverage[:, index], meets[:, index] = _score_level(
            values, actual, vectors, effective, framework.scale_step
        )

    attained = np.full(n_subjects, -1, dtype=np.int32)
    next_level = np.full(n_subjects, -1, dtype=np.int32)
    for code, path in enumerate(paths):
        members = np.flatnonzero(track_code == code)
        # Levels met in a row from the start of the path; a met level above a gap is no use.
        streak = np.logical_and.accumulate(meets[np.ix_(members, path)], axis=1).sum(axis=1)
        attained[members] = np.concatenate(([-1], path))[streak]
        next_level[members] = np.concatenate((path, [-1]))[streak]

    ranks = np.array([float(level.rank) for level in framework.levels])
    subjects = np.arange(n_subjects)
    # A trailing 0.0 is the rank of "no level" (-1).
    level_index = np.concatenate((ranks, [0.0]))[attained]
    has_next = next_level >= 0
    level_index[has_next] += np.minimum(
        readiness[subjects[has_next], next_level[has_next]], INDEX_CAP
    )

    weights = tuple(competency.weight for competency in framework.competencies)
    total_weight = 0.0
    for weight in weights:
        total_weight += weight
    if total_weight > 0:
        rated = (~np.isnan(values)).astype(np.float64)
        overall_coverage = _weighted_rows(rated, weights) / total_weight
    else:
        overall_coverage = np.ones(n_subjects)
    # The engine's confidence() is linear in coverage, so its factor per rater count is exact.
    counts, position = np.unique(distinct_raters, return_inverse=True)
    factors = np.array([confidence(1.0, int(count)) for count in counts])
    return CohortResult(
        values=values,
        readiness=readiness,
        coverage=coverage,
        meets=meets,
        attained=attained,
        next_level=next_level,
        level_index=level_index,
        confidence=overall_coverage * factors[position.reshape(-1)],
        overall_coverage=overall_coverage,
        distinct_raters=distinct_raters,
    )


def readiness_lost(framework: Framework, values: npt.ArrayLike, level: str) -> Floats:
    """Per subject and competency the readiness d_c lost toward ``level`` (0 where not required)."""
    matrix = _values_matrix(framework, values)
    vectors = _level_vectors(framework, find_level(framework, level))
    lost = np.zeros(matrix.shape)
    if vectors.total > 0:
        attainments = _attainments(np.nan_to_num(matrix, nan=0.0), vectors)
        for column, (competency, weight) in enumerate(
            zip(vectors.columns, vectors.weights, strict=True)
        ):
            # The gap analysis' formula term for term, so the d_c add up to 1 - readiness.
            lost[:, competency] += weight * (1.0 - attainments[:, column]) / vectors.total
    return lost


def gap_matrix(
    framework: Framework, values: npt.ArrayLike, level_per_subject: npt.ArrayLike
) -> Floats:
    """Actual (unrated 0) minus required at each subject's level; NaN where nothing is required."""
    matrix = _values_matrix(framework, values)
    levels = np.asarray(level_per_subject)
    n_levels = len(framework.levels)
    if levels.shape != (matrix.shape[0],) or levels.dtype.kind not in "iu":
        raise ScoringError("level_per_subject must hold one integer level index per subject")
    if levels.size and (int(levels.min()) < -1 or int(levels.max()) >= n_levels):
        raise ScoringError(f"level indices must lie in [-1, {n_levels})")
    # One extra all-NaN row stands for "no level" (-1).
    required = np.full((n_levels + 1, matrix.shape[1]), np.nan)
    for index, level in enumerate(framework.levels):
        vectors = _level_vectors(framework, level)
        required[index, vectors.columns] = vectors.required
    rows = np.where(levels < 0, n_levels, levels)
    result: Floats = np.nan_to_num(matrix, nan=0.0) - required[rows]
    return result
