"""Rater effects: an additive facets model fitted by least squares, with the flags and the
agreement figures a calibration meeting looks at. Pure numpy, no I/O.

The model (the README's "Calibration" section writes it out with a worked example): every
non-self, non-calibrated rater r's latest rating of person p on competency c is

    x_pcr = θ_pc + β_r + ε_pcr,   ε independent with variance σ²,

θ_pc the person's level on the competency and β_r the rater's effect (positive: lenient,
negative: severe), in scale points. Least squares over the ratings of cells (p, c) that two or
more raters rated; in each connected group of raters (raters linked by such shared cells) the
effects sum to zero, so an effect reads "points above the group's average rater". Self ratings
are a facet of their own: they are compared with the others' fair consensus, never used to fit.
"""

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from app.scoring.cohort import CohortRatings
from app.scoring.model import RATER_ROLES, Rating

__all__ = [
    "AdjustedRating",
    "Agreement",
    "CalibrationThresholds",
    "RaterEffects",
    "RaterFlag",
    "RecordedEffect",
    "SelfRating",
    "SubjectAdjustment",
    "adjust_cohort_ratings",
    "adjust_subject_ratings",
    "adjusted_ratings",
    "krippendorff_alpha_interval",
    "rater_effects",
]

Floats = npt.NDArray[np.float64]
Int64s = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]

_SELF = RATER_ROLES.index("self")
_CALIBRATED = RATER_ROLES.index("calibrated")
_EXACT = 1e-9  # a residual deviation below this is an exact fit
_INT64_SPAN = 1 << 64  # rater ids are any int64: never a presence mask

OK = "ok"
INSUFFICIENT = "insufficient_data"
NOT_COMPARABLE = "not_comparable"


@dataclass(frozen=True, slots=True)
class CalibrationThresholds:
    """When a rater has enough evidence, and when a flag is raised (defaults documented)."""

    min_ratings: int = 10  # ratings in shared cells
    min_subjects: int = 3  # distinct people among them
    effect_points: float = 0.5  # lenient/severe: the whole interval beyond ± this
    z: float = 1.96  # the interval is effect ± z·se
    central_ratio: float = 0.6  # between-person spread ratio below this: central tendency
    halo_ratio: float = 0.5  # within-person spread ratio below this: halo
    misfit_low: float = 0.5  # residual mean square outside [low, high]: misfit
    misfit_high: float = 1.5
    misfit_min_ratings: int = 30  # a mean square of fewer shared ratings varies too much
    self_inflation_points: float = 1.0  # self minus others' fair consensus, mean per person
    self_min_competencies: int = 3
    max_iterations: int = 1000
    tolerance: float = 1e-12


@dataclass(frozen=True, slots=True)
class RaterFlag:
    kind: str  # lenient | severe | central_tendency | halo | misfit
    evidence: dict[str, float]


@dataclass(frozen=True, slots=True)
class Agreement:
    """Krippendorff's alpha (interval) of one competency's ratings, raw and with effects
    removed; None when undefined (fewer than two rated values per person or no variation)."""

    alpha: float | None
    alpha_adjusted: float | None
    subjects: int  # people with two or more raters on it
    ratings: int  # the pairable ratings


@dataclass(frozen=True, slots=True)
class SelfRating:
    """One person's self ratings beside the others' fair consensus on the same competencies."""

    subject: int
    mean_difference: float
    competencies: int
    inflated: bool


@dataclass(frozen=True, slots=True, eq=False)
class RaterEffects:
    """Per rater (dense index): identity, group, effect with its standard error, evidence."""

    role: npt.NDArray[np.int8]  # index into RATER_ROLES
    rater: Int64s  # the caller's rater id
    group: Int64s  # connected group (0.., by size), -1 = shares no cell with anyone
    status: list[str]  # ok | insufficient_data | not_comparable
    effect: Floats  # NaN unless status is ok
    standard_error: Floats  # NaN unless status is ok
    ratings: Int64s  # latest ratings in the window
    shared_ratings: Int64s  # of them, in cells another rater also rated
    subjects: Int64s  # distinct people behind the shared ratings
    mean_square: Floats  # residual mean square (misfit), NaN without shared ratings
    between_ratio: Floats  # spread of person means vs the others' on the same people
    within_ratio: Floats  # spread across one person's competencies vs the others'
    flags: list[list[RaterFlag]]
    group_sizes: list[int]  # raters per group
    sigma: float  # residual standard deviation σ̂ (NaN without degrees of freedom)
    degrees_of_freedom: int
    iterations: int
    agreement: list[Agreement]  # per competency
    scale: list[float]  # histogram bins: the scale's values
    distribution: Int64s  # (raters, len(scale)) counts of latest ratings per scale value
    cohort_distribution: Int64s  # (len(scale),) the same over every rater
    self_ratings: list[SelfRating]
    self_effect: float | None  # mean self minus consensus over every pair
    self_effect_se: float | None
    row_adjustment: Floats = field(repr=False)  # per input row: − reported effect (0 if none)


def _dense(keys: Int64s, bound: int) -> tuple[Int64s, int]:
    """Number the distinct keys (all in [0, bound)) 0..k-1 in key order: a presence mask when
    the keys' range is small next to their number (rater ids usually are, whatever the bound
    says), a sort otherwise."""
    if keys.size == 0:
        return np.zeros(0, dtype=np.int64), 0
    low, high = int(keys.min()), int(keys.max())
    if high - low + 1 <= 4 * keys.size + 1024:
        offset = keys - low if low else keys  # no overflow: the range is small
        present = np.zeros(high - low + 1, dtype=np.bool_)
        present[offset] = True
        number = np.cumsum(present, dtype=np.int64) - 1
        return number[offset], int(number[-1]) + 1
    unique, inverse = np.unique(keys, return_inverse=True)
    return inverse.reshape(-1).astype(np.int64), int(unique.size)


def _latest(r: CohortRatings, rows: Int64s, rater: Int64s, cell: Int64s, n_raters: int) -> Bools:
    """Which of ``rows`` hold each rater's latest rating of a person's competency (``cell``),
    latest by (assessed_at, sequence, proficiency), the engine's order."""
    keep = np.ones(rows.size, dtype=np.bool_)
    if rows.size < 2:
        return keep
    key = cell * n_raters + rater
    ordered = np.sort(key)
    if not (ordered[1:] == ordered[:-1]).any():
        return keep  # one rating per rater and cell: nothing superseded
    order = np.lexsort((r.proficiency[rows], r.sequence[rows], r.assessed_at[rows], key))
    last = np.ones(rows.size, dtype=np.bool_)
    last[:-1] = key[order][1:] != key[order][:-1]
    keep[:] = False
    keep[order[last]] = True
    return keep


def _components(rater: Int64s, cell: Int64s, n_raters: int, n_cells: int) -> Int64s:
    """Connected components of raters linked by shared cells (minimum-label propagation with
    pointer jumping); the label of a rater is the smallest rater index of its component."""
    label = np.arange(n_raters, dtype=np.int64)
    big = np.iinfo(np.int64).max
    while True:
        cell_min = np.full(n_cells, big, dtype=np.int64)
        np.minimum.at(cell_min, cell, label[rater])
        new = label.copy()
        np.minimum.at(new, rater, cell_min[cell])
        while True:
            jumped = new[new]
            if np.array_equal(jumped, new):
                break
            new = jumped
        if np.array_equal(new, label):
            return label
        label = new


def _dot(a: Floats, b: Floats) -> float:
    """An inner product without BLAS, whose threads only contend on a busy machine."""
    return float(np.multiply(a, b).sum())


def _solve(
    rater: Int64s,
    cell: Int64s,
    y: Floats,
    n_raters: int,
    n_cells: int,
    limits: CalibrationThresholds,
) -> tuple[Floats, int]:
    """Least-squares rater effects with the cells' levels eliminated: solve A·β = b by
    preconditioned conjugate gradients, A = diag(n_r) − Nᵀ·diag(1/n_c)·N (singular on each
    component's constants, which the caller removes by centring)."""
    n_c = np.bincount(cell, minlength=n_cells).astype(np.float64)
    cell_mean = np.bincount(cell, weights=y, minlength=n_cells) / np.maximum(n_c, 1)
    b: Floats = np.bincount(rater, weights=y - cell_mean[cell], minlength=n_raters).astype(
        np.float64
    )
    diag = np.bincount(rater, weights=1.0 - 1.0 / n_c[cell], minlength=n_raters)
    inverse_diag = np.where(diag > 0, 1.0 / np.where(diag > 0, diag, 1.0), 0.0)
    n_r = np.bincount(rater, minlength=n_raters).astype(np.float64)
    pairs = _rater_pairs(rater, cell, n_c, n_raters)
    if pairs is not None:
        # A·v through the raters' pair weights M[r, r'] = Σ 1/n_c over the cells both rated:
        # far fewer entries than ratings when people are rated by few raters each.
        diagonal, left, right, weight = pairs
        own = n_r - diagonal

        def apply(v: Floats) -> Floats:
            return own * v - np.bincount(left, weights=weight * v[right], minlength=n_raters)

    else:

        def apply(v: Floats) -> Floats:
            means = np.bincount(cell, weights=v[rater], minlength=n_cells) / np.maximum(n_c, 1)
            return n_r * v - np.bincount(rater, weights=means[cell], minlength=n_raters)

    beta = np.zeros(n_raters)
    residual = b.copy()
    scale = math.sqrt(_dot(b, b))
    if scale == 0.0:
        return beta, 0
    z = inverse_diag * residual
    direction = z.copy()
    rz = _dot(residual, z)
    for iteration in range(1, limits.max_iterations + 1):
        a_direction = apply(direction)
        curvature = _dot(direction, a_direction)
        if curvature <= 0.0:
            return beta, iteration
        step = rz / curvature
        beta += step * direction
        residual -= step * a_direction
        if math.sqrt(_dot(residual, residual)) <= limits.tolerance * scale:
            return beta, iteration
        z = inverse_diag * residual
        rz_next = _dot(residual, z)
        direction = z + (rz_next / rz) * direction
        rz = rz_next
    return beta, limits.max_iterations


def _rater_pairs(
    rater: Int64s, cell: Int64s, n_c: Floats, n_raters: int
) -> tuple[Floats, Int64s, Int64s, Floats] | None:
    """M = Nᵀ·diag(1/n_c)·N as its diagonal and its other nonzero entries (row, column,
    weight), or None when the cells have so many raters that M would outgrow the ratings."""
    size = n_c[cell]
    if rater.size == 0 or float((size * size).sum()) > 4.0 * rater.size + 1024:
        return None
    diagonal: Floats = np.bincount(rater, weights=1.0 / size, minlength=n_raters).astype(np.float64)
    order = np.argsort(cell, kind="stable")
    ordered_cell = cell[order]
    start = np.concatenate(([0], np.cumsum(n_c.astype(np.int64))[:-1]))[ordered_cell]
    position = np.arange(order.size) - start  # each row's place inside its cell
    keys, weights = [], []
    for k in range(int(n_c.max())):
        # Each row paired with the k-th row of its cell, itself left out (the diagonal).
        has = (n_c[ordered_cell] > k) & (position != k)
        partner = order[start[has] + k]
        keys.append(rater[order[has]] * n_raters + rater[partner])
        weights.append(1.0 / n_c[ordered_cell[has]])
    del order, ordered_cell, start, position
    key = np.concatenate(keys)
    weight = np.concatenate(weights)
    del keys, weights
    sort = np.argsort(key)
    key = key[sort]
    weight = weight[sort]
    del sort
    first = np.ones(key.size, dtype=np.bool_)
    first[1:] = key[1:] != key[:-1]
    starts = np.flatnonzero(first)
    summed: Floats = np.add.reduceat(weight, starts) if key.size else np.zeros(0)
    entries = key[starts]
    return diagonal, entries // n_raters, entries % n_raters, summed


def krippendorff_alpha_interval(unit: Int64s, value: Floats) -> float | None:
    """Krippendorff's alpha at the interval level, 1 − D_o/D_e, over units with ≥ 2 values."""
    if unit.size == 0:
        return None
    dense, _ = _dense(
        unit.astype(np.int64) - int(unit.min()), int(unit.max()) - int(unit.min()) + 1
    )
    m = np.bincount(dense).astype(np.float64)
    pairable = m[dense] >= 2
    if int(pairable.sum()) < 2:
        return None
    dense, value, m = dense[pairable], value[pairable], m[dense[pairable]]
    n = float(value.size)
    sums = np.bincount(dense, weights=value)
    squares = np.bincount(dense, weights=value * value)
    sizes = np.bincount(dense).astype(np.float64)
    used = sizes >= 2
    # Σ over ordered pairs i≠j inside a unit of (x_i − x_j)² is 2·(m·Σx² − (Σx)²).
    within = 2.0 * (sizes[used] * squares[used] - sums[used] ** 2) / (sizes[used] - 1.0)
    observed = float(within.sum()) / n
    total = float(value.sum())
    expected = 2.0 * (n * float((value * value).sum()) - total * total) / (n * (n - 1.0))
    if expected <= 1e-12:
        return None
    return 1.0 - observed / expected


def _spread_ratios(
    rater: Int64s,
    pair: Int64s,
    pair_rater: Int64s,
    x: Floats,
    others: Floats,
    n_raters: int,
) -> tuple[Floats, Floats]:
    """Per rater: the spread of their person means over the others' (between), and the
    root-mean-square deviation across one person's competencies over the others' (within);
    ``pair`` numbers the (rater, person) pairs of the rows, ``pair_rater`` is each pair's rater."""
    between = np.full(n_raters, np.nan)
    within = np.full(n_raters, np.nan)
    if rater.size == 0:
        return between, within
    count = np.bincount(pair).astype(np.float64)
    mean_x = np.bincount(pair, weights=x) / count
    mean_o = np.bincount(pair, weights=others) / count
    # Between: population variance of the person means, the rater's over the others'.
    k = np.bincount(pair_rater, minlength=n_raters).astype(np.float64)
    var_x = _variance(pair_rater, mean_x, k, n_raters)
    var_o = _variance(pair_rater, mean_o, k, n_raters)
    ok = (k >= 2) & (var_o > 1e-12)
    between[ok] = np.sqrt(var_x[ok] / var_o[ok])
    # Within: mean square deviation from the person's mean, over people rated twice or more.
    multi = count[pair] >= 2
    k = np.bincount(rater[multi], minlength=n_raters).astype(np.float64)
    dev_x = np.bincount(rater[multi], weights=(x - mean_x[pair])[multi] ** 2, minlength=n_raters)
    dev_o = np.bincount(
        rater[multi], weights=(others - mean_o[pair])[multi] ** 2, minlength=n_raters
    )
    ok = (k >= 2) & (dev_o > 1e-12)
    within[ok] = np.sqrt(dev_x[ok] / dev_o[ok])
    return between, within


def _variance(group: Int64s, value: Floats, k: Floats, n: int) -> Floats:
    """Population variance of ``value`` per group (k members each; NaN for empty groups)."""
    total = np.bincount(group, weights=value, minlength=n)
    squares = np.bincount(group, weights=value * value, minlength=n)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.maximum(squares / k - (total / k) ** 2, 0.0)


def rater_effects(
    ratings: CohortRatings,
    n_competencies: int,
    scale: Sequence[float],
    limits: CalibrationThresholds | None = None,
) -> RaterEffects:
    """Fit the additive facets model to the latest ratings and report effects, flags,
    agreement, distributions and self ratings (see the module docstring)."""
    limits = limits or CalibrationThresholds()
    r = ratings
    role_all = r.role
    rated = (role_all != _SELF) & (role_all != _CALIBRATED)
    n_cell_keys = max(r.n_subjects, 1) * max(n_competencies, 1)
    cell_key_all = r.subject_index.astype(np.int64) * n_competencies + r.competency_index

    # Dense raters: the pair (role, rater id), numbered over every rated row.
    rated_rows = np.flatnonzero(rated)
    id_dense, n_ids = _dense(r.rater[rated_rows], _INT64_SPAN)
    rater_of_rated, n_raters = _dense(
        id_dense * len(RATER_ROLES) + role_all[rated_rows].astype(np.int64),
        n_ids * len(RATER_ROLES),
    )
    first = np.zeros(n_raters, dtype=np.int64)
    first[rater_of_rated[::-1]] = rated_rows[::-1]
    rater_role = r.role[first].astype(np.int8)
    rater_id = r.rater[first].astype(np.int64)

    cell_of_rated, n_cells = _dense(cell_key_all[rated_rows], n_cell_keys)
    latest = _latest(r, rated_rows, rater_of_rated, cell_of_rated, n_raters)
    # Memory: every array here holds a value per rating (millions), so none is copied when
    # nothing was superseded, and the person and competency columns are taken when needed.
    everything = bool(latest.all())
    rows = rated_rows if everything else rated_rows[latest]
    rater = rater_of_rated if everything else rater_of_rated[latest]
    cell = cell_of_rated if everything else cell_of_rated[latest]
    x = r.proficiency[rows].astype(np.float64)
    per_cell = np.bincount(cell, minlength=n_cells)
    shared = per_cell[cell] >= 2
    del id_dense, cell_of_rated, latest

    self_rows = np.flatnonzero(role_all == _SELF)
    self_rater, n_selves = _dense(r.rater[self_rows], _INT64_SPAN)
    self_cell, _ = _dense(cell_key_all[self_rows], n_cell_keys)
    self_rows = self_rows[_latest(r, self_rows, self_rater, self_cell, n_selves)]
    del self_rater, self_cell, cell_key_all

    # Shared rows only: a cell one rater rated says nothing about that rater's effect. When
    # every cell is shared the cells are already numbered densely: the same arrays serve.
    if bool(shared.all()):
        s_rater, s_cell, s_x, n_s_cells = rater, cell, x, n_cells
    else:
        s_rater, s_cell_raw, s_x = rater[shared], cell[shared], x[shared]
        s_cell, n_s_cells = _dense(s_cell_raw, n_cells)
        del s_cell_raw
    label = _components(s_rater, s_cell, n_raters, n_s_cells)
    in_shared = np.bincount(s_rater, minlength=n_raters) > 0
    beta, iterations = _solve(s_rater, s_cell, s_x, n_raters, n_s_cells, limits)

    # Groups: components with a shared cell, numbered by size (then smallest member). A rater
    # with a shared cell always has a partner in it, so every group has two raters or more.
    group = np.full(n_raters, -1, dtype=np.int64)
    roots, root_of, sizes = np.unique(label[in_shared], return_inverse=True, return_counts=True)
    by_size = np.lexsort((roots, -sizes))
    rank = np.empty(roots.size, dtype=np.int64)
    rank[by_size] = np.arange(roots.size)
    group[in_shared] = rank[root_of]
    group_sizes = [int(size) for size in sizes[by_size]]
    beta[~in_shared] = 0.0

    # Residuals, σ̂ and standard errors.
    n_c = np.bincount(s_cell, minlength=n_s_cells).astype(np.float64)
    adjusted = s_x - beta[s_rater]
    level = np.bincount(s_cell, weights=adjusted, minlength=n_s_cells) / np.maximum(n_c, 1)
    residual = adjusted - level[s_cell]
    dof = int(s_x.size - n_s_cells - (int(in_shared.sum()) - len(group_sizes)))
    sigma = math.sqrt(_dot(residual, residual) / dof) if dof > 0 else float("nan")
    if sigma < _EXACT:
        sigma = 0.0  # an exact fit (float noise aside): no misfit can be measured

    information = np.bincount(s_rater, weights=1.0 - 1.0 / n_c[s_cell], minlength=n_raters)
    with np.errstate(divide="ignore", invalid="ignore"):
        standard_error = sigma / np.sqrt(information)
        scaled = residual**2 / (sigma**2 * (1.0 - 1.0 / n_c[s_cell]))
        counts_shared = np.bincount(s_rater, minlength=n_raters)
        mean_square = np.bincount(s_rater, weights=scaled, minlength=n_raters) / counts_shared
    if sigma == 0.0:
        mean_square[:] = np.nan
    del scaled, residual, level

    # Leave-one-out consensus of the other raters of each shared cell, effects removed.
    cell_sum = np.bincount(s_cell, weights=adjusted, minlength=n_s_cells)
    others = (cell_sum[s_cell] - adjusted) / (n_c[s_cell] - 1.0)
    s_subject = r.subject_index[rows if s_rater is rater else rows[shared]].astype(np.int64)
    pair, n_pairs = _dense(s_rater * max(r.n_subjects, 1) + s_subject, n_raters * r.n_subjects)
    pair_rater = np.zeros(n_pairs, dtype=np.int64)
    pair_rater[pair] = s_rater
    between, within = _spread_ratios(s_rater, pair, pair_rater, s_x, others, n_raters)
    del pair, others, adjusted, s_subject

    n_ratings = np.bincount(rater, minlength=n_raters).astype(np.int64)
    n_shared = counts_shared.astype(np.int64)
    subjects_of = np.bincount(pair_rater, minlength=n_raters).astype(np.int64)

    ok = in_shared & (n_shared >= limits.min_ratings) & (subjects_of >= limits.min_subjects)
    status = np.where(ok, OK, np.where(in_shared, INSUFFICIENT, NOT_COMPARABLE)).tolist()
    # Centre each group on its raters with a reported effect (all its raters if none has one).
    n_groups = len(group_sizes)
    members = np.bincount(group[ok], minlength=n_groups)
    shift = np.bincount(group[ok], weights=beta[ok], minlength=n_groups)
    fallback = np.bincount(group[in_shared], weights=beta[in_shared], minlength=n_groups)
    with np.errstate(divide="ignore", invalid="ignore"):
        shift = np.where(members > 0, shift / members, fallback / np.asarray(sizes)[by_size])
    beta[in_shared] -= shift[group[in_shared]]
    effect = np.where(ok, beta, np.nan)
    se = np.where(ok, standard_error, np.nan)
    flags: list[list[RaterFlag]] = [
        _flags(
            float(beta[i]), float(se[i]), i, between, within, mean_square, int(n_shared[i]), limits
        )
        if ok[i]
        else []
        for i in range(n_raters)
    ]

    # Agreement per competency, raw and with the reported effects removed.
    row_effect = np.nan_to_num(effect)[rater]
    agreement = []
    subject, competency = r.subject_index[rows], r.competency_index[rows]
    for c in range(n_competencies):
        mask = competency == c
        units = per_cell[cell[mask]] >= 2
        # Within one competency a person is one cell: the person numbers the units densely.
        unit = subject[mask].astype(np.int64)
        agreement.append(
            Agreement(
                alpha=krippendorff_alpha_interval(unit, x[mask]),
                alpha_adjusted=krippendorff_alpha_interval(unit, x[mask] - row_effect[mask]),
                subjects=int((np.bincount(cell[mask][units], minlength=n_cells) > 0).sum()),
                ratings=int(units.sum()),
            )
        )

    # Distributions over the scale's values (a rating between two values counts to the nearer).
    bins = np.asarray(sorted(scale), dtype=np.float64)
    if bins.size:
        # The nearer of two neighbouring values (the lower on a tie), without a rows x bins array.
        nearest = np.searchsorted((bins[1:] + bins[:-1]) / 2, x, side="left")
        distribution = np.zeros((n_raters, bins.size), dtype=np.int64)
        np.add.at(distribution, (rater, nearest), 1)
    else:
        distribution = np.zeros((n_raters, 0), dtype=np.int64)
    cohort_distribution = distribution.sum(axis=0)

    cell_key = subject.astype(np.int64) * n_competencies + competency
    del subject, competency
    self_ratings, self_effect, self_se = _self_facet(
        r, self_rows, cell_key, x - row_effect, n_competencies, limits
    )
    del cell_key

    # Every input row of a rater with a reported effect, not only the latest ones.
    row_adjustment = np.zeros(r.proficiency.shape[0])
    row_adjustment[rated_rows] = -np.nan_to_num(effect)[rater_of_rated]

    return RaterEffects(
        role=rater_role,
        rater=rater_id,
        group=group,
        status=status,
        effect=effect,
        standard_error=se,
        ratings=n_ratings,
        shared_ratings=n_shared,
        subjects=subjects_of,
        mean_square=mean_square,
        between_ratio=between,
        within_ratio=within,
        flags=flags,
        group_sizes=group_sizes,
        sigma=sigma,
        degrees_of_freedom=max(dof, 0),
        iterations=iterations,
        agreement=agreement,
        scale=bins.tolist(),
        distribution=distribution,
        cohort_distribution=cohort_distribution,
        self_ratings=self_ratings,
        self_effect=self_effect,
        self_effect_se=self_se,
        row_adjustment=row_adjustment,
    )


def _flags(
    beta: float,
    se: float,
    i: int,
    between: Floats,
    within: Floats,
    mean_square: Floats,
    shared_ratings: int,
    limits: CalibrationThresholds,
) -> list[RaterFlag]:
    out: list[RaterFlag] = []
    evidence: dict[str, Any] = {"effect": beta, "standard_error": se, "z": limits.z}
    if beta - limits.z * se > limits.effect_points:
        out.append(RaterFlag("lenient", {**evidence, "threshold": limits.effect_points}))
    elif beta + limits.z * se < -limits.effect_points:
        out.append(RaterFlag("severe", {**evidence, "threshold": -limits.effect_points}))
    if np.isfinite(between[i]) and between[i] < limits.central_ratio:
        out.append(
            RaterFlag(
                "central_tendency",
                {"spread_ratio": float(between[i]), "threshold": limits.central_ratio},
            )
        )
    if np.isfinite(within[i]) and within[i] < limits.halo_ratio:
        out.append(
            RaterFlag("halo", {"spread_ratio": float(within[i]), "threshold": limits.halo_ratio})
        )
    msq = float(mean_square[i])
    enough = shared_ratings >= limits.misfit_min_ratings
    if enough and np.isfinite(msq) and not limits.misfit_low <= msq <= limits.misfit_high:
        out.append(
            RaterFlag(
                "misfit",
                {"mean_square": msq, "low": limits.misfit_low, "high": limits.misfit_high},
            )
        )
    return out


def _self_facet(
    r: CohortRatings,
    self_rows: npt.NDArray[np.intp],
    cell_key: Int64s,
    fair: Floats,
    n_competencies: int,
    limits: CalibrationThresholds,
) -> tuple[list[SelfRating], float | None, float | None]:
    """Self minus the others' fair consensus (their mean with reported effects removed), per
    person and over everyone."""
    if self_rows.size == 0 or cell_key.size == 0:
        return [], None, None
    # Cell keys are subject·n_competencies + competency: dense enough to index directly.
    n_keys = max(r.n_subjects, 1) * max(n_competencies, 1)
    count = np.bincount(cell_key, minlength=n_keys)
    total = np.bincount(cell_key, weights=fair, minlength=n_keys)
    self_key = (
        r.subject_index[self_rows].astype(np.int64) * n_competencies + r.competency_index[self_rows]
    )
    found = count[self_key] > 0
    if not found.any():
        return [], None, None
    where = self_key[found]
    difference = r.proficiency[self_rows][found] - total[where] / count[where]
    del count, total
    person = r.subject_index[self_rows][found].astype(np.int64)
    count = np.bincount(person)
    total = np.bincount(person, weights=difference)
    # Columns out of numpy once: a numpy scalar per person took a second for 100,000 people.
    people = np.flatnonzero(count)
    n = count[people]
    mean = total[people] / n
    inflated = (n >= limits.self_min_competencies) & (mean >= limits.self_inflation_points)
    out = [
        SelfRating(*row)
        for row in zip(people.tolist(), mean.tolist(), n.tolist(), inflated.tolist(), strict=True)
    ]
    mean_all = float(difference.mean())
    se_all = (
        float(difference.std(ddof=1) / np.sqrt(difference.size)) if difference.size > 1 else None
    )
    return out, mean_all, se_all


def adjusted_ratings(ratings: CohortRatings, effects: RaterEffects) -> CohortRatings:
    """The same ratings with each reported rater effect subtracted (self, calibrated and raters
    without a reported effect unchanged): scoring them gives the fair averages."""
    return CohortRatings(
        subject_index=ratings.subject_index,
        competency_index=ratings.competency_index,
        proficiency=ratings.proficiency + effects.row_adjustment,
        role=ratings.role,
        rater=ratings.rater,
        assessed_at=ratings.assessed_at,
        sequence=ratings.sequence,
        n_subjects=ratings.n_subjects,
    )


@dataclass(frozen=True, slots=True)
class RecordedEffect:
    """One rater of a recorded estimate: status, effect (None unless ``ok``) and group."""

    status: str
    effect: float | None
    group: int | None


@dataclass(frozen=True, slots=True)
class AdjustedRating:
    """One rating as rated and as scored, with the effect subtracted and why (or why not).

    ``reason``: adjusted | self | calibrated | not_in_estimate | insufficient_data |
    not_comparable | outside_group."""

    rating: Rating
    value: float
    effect: float | None
    clamped: bool
    reason: str


@dataclass(frozen=True, slots=True)
class SubjectAdjustment:
    """A person's ratings with the recorded effects subtracted, each explained."""

    ratings: tuple[Rating, ...]
    notes: tuple[AdjustedRating, ...]
    group: int | None  # the person's connected group: that of most of their adjustable ratings


def adjust_subject_ratings(
    ratings: Sequence[Rating],
    effects: Mapping[tuple[str, str], RecordedEffect],
    scale_min: float,
    scale_max: float,
    window: tuple[datetime, datetime] | None = None,
) -> SubjectAdjustment:
    """Subtract each rater's recorded effect (keyed by (role, rater_ref)) from their ratings,
    clamped to the scale. Self and calibrated ratings, raters the estimate does not know or
    gives no effect, and raters of another connected group than the person's (their effects are
    centred elsewhere, so not comparable) are left as rated. The person's group is that of most
    of their ratings with an effect (the smaller group number on a tie), counted over the
    ratings inside ``window`` (start, end] when given, as the cohort path counts them."""
    votes: Counter[int] = Counter()
    for rating in ratings:
        if window is not None and not window[0] < rating.assessed_at <= window[1]:
            continue
        if rating.role in ("self", "calibrated"):
            continue
        known = effects.get((rating.role, rating.rater_ref))
        if known is not None and known.status == OK and known.group is not None:
            votes[known.group] += 1
    group = min(votes, key=lambda g: (-votes[g], g)) if votes else None
    adjusted: list[Rating] = []
    notes: list[AdjustedRating] = []
    for rating in ratings:
        known = effects.get((rating.role, rating.rater_ref))
        if rating.role in ("self", "calibrated"):
            reason = rating.role
        elif known is None:
            reason = "not_in_estimate"
        elif known.status != OK or known.effect is None:
            reason = known.status
        elif known.group != group:
            reason = "outside_group"
        else:
            reason = "adjusted"
        if reason != "adjusted" or known is None or known.effect is None:
            adjusted.append(rating)
            notes.append(AdjustedRating(rating, rating.proficiency, None, False, reason))
            continue
        raw = rating.proficiency - known.effect
        value = min(scale_max, max(scale_min, raw))
        adjusted.append(replace(rating, proficiency=value))
        notes.append(AdjustedRating(rating, value, known.effect, value != raw, reason))
    return SubjectAdjustment(tuple(adjusted), tuple(notes), group)


def adjust_cohort_ratings(
    ratings: CohortRatings,
    effect: Floats,
    group: Int64s,
    scale_min: float,
    scale_max: float,
) -> CohortRatings:
    """``adjust_subject_ratings`` for many people at once: ``effect`` and ``group`` give each
    row its rater's recorded effect (NaN: none, or not ok) and connected group (-1: none). The
    person's group is voted over the rows given (the cohort's window), as the subject path
    votes over the same window."""
    role = ratings.role
    eligible = np.isfinite(effect) & (group >= 0) & (role != _SELF) & (role != _CALIBRATED)
    subject = ratings.subject_index.astype(np.int64)
    person_group = np.full(max(ratings.n_subjects, 1), -1, dtype=np.int64)
    if eligible.any():
        n_groups = int(group[eligible].max()) + 1
        pairs, votes = np.unique(subject[eligible] * n_groups + group[eligible], return_counts=True)
        who, which = pairs // n_groups, pairs % n_groups
        order = np.lexsort((which, -votes, who))  # most votes first, then the smaller group
        first = np.ones(order.size, dtype=np.bool_)
        first[1:] = who[order][1:] != who[order][:-1]
        person_group[who[order][first]] = which[order][first]
    applies = eligible & (group == person_group[subject])
    proficiency = ratings.proficiency.copy()
    proficiency[applies] = np.clip(proficiency[applies] - effect[applies], scale_min, scale_max)
    return replace(ratings, proficiency=proficiency)
