"""Ratings carried through a competency map into a newer framework version.

A version may say how the competencies of the version before it became its own: a rename
(``a → b``), a merge (``[a, b] → n`` with a weight per source), a split (``o → [x, y]`` with a
factor per target, default 1), or a retirement (``o → null``). Keys it does not mention carry
over unchanged when the newer version still has them, and are dropped when it does not.

A step works on one assessment at a time (one rater at one moment): each competency of the new
version it reaches gets

    value(t) = Σ weight(e) · factor(e) · rating(source(e)) / Σ weight(e)

over the map's edges ``e`` into ``t`` whose source that assessment rated. So a rename copies the
rating, a split copies it (scaled by the factor) to every part, and a merge is the weighted mean
of whichever merged competencies were rated (the weights renormalized over those). A chain of
versions applies one step after another. The carried ratings then go through the ordinary
aggregation, so a newer rating by the same rater still supersedes a carried one.

Pure and columnar (numpy), like ``cohort.py``; ``app.scoring`` does not import it.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from app.scoring.cohort import CohortRatings, epoch_micros
from app.scoring.model import MapEntry, Rating

__all__ = [
    "Edge",
    "MapEntry",
    "Step",
    "build_step",
    "carry_cohort",
    "carry_columns",
    "carry_ratings",
]

Floats = npt.NDArray[np.float64]
Int64s = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class Edge:
    source: str
    target: str
    weight: float
    factor: float


@dataclass(frozen=True, slots=True)
class Step:
    """From one version's competencies to the next version's."""

    sources: tuple[str, ...]
    targets: tuple[str, ...]
    edges: tuple[Edge, ...]

    @property
    def merges(self) -> bool:
        """True when some target has several sources: ratings must be combined per assessment."""
        targets = [e.target for e in self.edges]
        return len(targets) != len(set(targets))

    @property
    def identity(self) -> bool:
        """True when the step changes no rating: each key the new version keeps maps to itself
        alone, as reading ratings by key would do."""
        kept = set(self.targets)
        plain = {(k, k) for k in self.sources if k in kept}
        return all(e.factor == 1 for e in self.edges) and plain == {
            (e.source, e.target) for e in self.edges
        }


def build_step(
    old_keys: Sequence[str], new_keys: Sequence[str], entries: Iterable[MapEntry]
) -> Step:
    """The step a (validated) map describes; unmapped keys the new version keeps map to themselves."""
    kept = set(new_keys)
    edges: list[Edge] = []
    mapped: set[str] = set()
    for entry in entries:
        mapped.update(entry.sources)
        for source in entry.sources:
            for target in entry.targets:
                weight = entry.weights.get(source, 1.0) if len(entry.sources) > 1 else 1.0
                factor = entry.weights.get(target, 1.0) if len(entry.targets) > 1 else 1.0
                edges.append(Edge(source, target, weight, factor))
    edges += [Edge(k, k, 1.0, 1.0) for k in old_keys if k not in mapped and k in kept]
    return Step(tuple(old_keys), tuple(new_keys), tuple(edges))


def carry_columns(
    group: Int64s, competency: Int64s, value: Floats, step: Step
) -> tuple[Int64s, Int64s, Floats]:
    """One step on columns: (assessment group, competency index into ``step.sources``, value)
    in, the same with indexes into ``step.targets`` out, one row per (group, target)."""
    source_index = {k: i for i, k in enumerate(step.sources)}
    target_index = {k: i for i, k in enumerate(step.targets)}
    edges = sorted(step.edges, key=lambda e: source_index[e.source])
    src = np.array([source_index[e.source] for e in edges], dtype=np.int64)
    tgt = np.array([target_index[e.target] for e in edges], dtype=np.int64)
    weight = np.array([e.weight for e in edges], dtype=np.float64)
    factor = np.array([e.factor for e in edges], dtype=np.float64)
    per_source = np.bincount(src, minlength=len(step.sources)) if edges else None
    if per_source is None or group.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float64)
    first_edge = np.concatenate(([0], np.cumsum(per_source)[:-1]))
    fan_out = per_source[competency]
    row = np.repeat(np.arange(competency.size), fan_out)
    within = np.arange(row.size) - np.repeat(np.cumsum(fan_out) - fan_out, fan_out)
    edge = first_edge[competency[row]] + within
    if not step.merges:
        # Each target has one source: a rating maps to its targets alone, no combining needed.
        return group[row], tgt[edge], factor[edge] * value[row]
    n_targets = max(len(step.targets), 1)
    cell, inverse = np.unique(group[row] * n_targets + tgt[edge], return_inverse=True)
    numerator = np.bincount(inverse, weights=weight[edge] * factor[edge] * value[row])
    denominator = np.bincount(inverse, weights=weight[edge])
    # A merge whose rated sources all weigh 0 carries nothing for that assessment.
    keep = denominator > 0
    carried = np.divide(numerator, denominator, out=np.zeros_like(numerator), where=keep)
    cell = cell[keep]
    return cell // n_targets, cell % n_targets, carried[keep]


def carry_cohort(ratings: CohortRatings, steps: Sequence[Step]) -> CohortRatings:
    """Columnar ratings (competency indexes into the first step's sources) carried through the
    steps; the result indexes the last step's targets."""
    if not any(step.merges for step in steps):
        # No step combines ratings: each row is its own group.
        firsts = group = np.arange(ratings.subject_index.size, dtype=np.int64)
    elif ratings.subject_index.size == 0:
        firsts = group = np.zeros(0, dtype=np.int64)
    else:
        columns = np.stack(
            [
                ratings.subject_index.astype(np.int64),
                ratings.role.astype(np.int64),
                ratings.rater,
                ratings.assessed_at,
                ratings.sequence,
            ],
            axis=1,
        )
        _, firsts, group = np.unique(columns, axis=0, return_index=True, return_inverse=True)
        group = group.reshape(-1).astype(np.int64)
    competency = ratings.competency_index.astype(np.int64)
    value = ratings.proficiency
    for step in steps:
        group, competency, value = carry_columns(group, competency, value, step)
    origin = firsts[group]
    return CohortRatings(
        subject_index=ratings.subject_index[origin],
        competency_index=competency.astype(np.int32),
        proficiency=value,
        role=ratings.role[origin],
        rater=ratings.rater[origin],
        assessed_at=ratings.assessed_at[origin],
        sequence=ratings.sequence[origin],
        n_subjects=ratings.n_subjects,
    )


def carry_ratings(ratings: Sequence[Rating], steps: Sequence[Step]) -> list[Rating]:
    """One subject's ratings of an older version carried through the steps to the newest one;
    ratings of keys the first step does not know are dropped."""
    if not steps:
        return list(ratings)
    known = {k: i for i, k in enumerate(steps[0].sources)}
    kept = [r for r in ratings if r.competency in known]
    moments = {epoch_micros(r.assessed_at): r.assessed_at for r in kept}
    groups: dict[tuple[str, str, int, int], int] = {}
    group = np.array(
        [
            groups.setdefault(
                (r.rater_ref, r.role, epoch_micros(r.assessed_at), r.sequence), len(groups)
            )
            for r in kept
        ],
        dtype=np.int64,
    )
    competency = np.array([known[r.competency] for r in kept], dtype=np.int64)
    value = np.array([r.proficiency for r in kept], dtype=np.float64)
    for step in steps:
        group, competency, value = carry_columns(group, competency, value, step)
    by_group = {g: key for key, g in groups.items()}
    targets = steps[-1].targets
    out = []
    for g, c, v in zip(group.tolist(), competency.tolist(), value.tolist(), strict=True):
        rater, role, moment, sequence = by_group[g]
        out.append(
            Rating(
                competency=targets[c],
                proficiency=v,
                rater_ref=rater,
                role=role,
                assessed_at=moments[moment],
                sequence=sequence,
            )
        )
    return out
