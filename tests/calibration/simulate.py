"""A seeded generator of ratings with known person levels and planted rater effects."""

from dataclasses import dataclass, field

import numpy as np

from app.scoring.cohort import CohortRatings
from app.scoring.model import RATER_ROLES

PEER = RATER_ROLES.index("peer")
SELF = RATER_ROLES.index("self")
SCALE = (0.0, 1.0, 2.0, 3.0, 4.0, 5.0)


@dataclass
class Simulation:
    ratings: CohortRatings
    severity: np.ndarray  # the true effect of each rater id
    lenient: set[int] = field(default_factory=set)
    severe: set[int] = field(default_factory=set)
    central: set[int] = field(default_factory=set)
    halo: set[int] = field(default_factory=set)
    inflated_selves: set[int] = field(default_factory=set)


def simulate(
    seed: int,
    *,
    people: int = 500,
    competencies: int = 14,
    raters: int = 50,
    per_person: int = 3,
    planted: int = 4,
    effects: bool = True,
    noise: float = 0.5,
    self_share: float = 0.0,
    rounded: bool = True,
) -> Simulation:
    """Each person is rated on every competency by ``per_person`` raters drawn at random; a
    rating is the person's level plus the rater's effect plus noise, rounded into 0..5.
    With ``effects``, ``planted`` raters each are lenient (+1), severe (−1), central (they
    pull everything to the middle) and halo (one value per person); the rest get small effects.
    Without ``rounded`` the ratings are the model's exact real values (no rounding, no clipping).
    """

    def observed(value: np.ndarray) -> list[float]:
        shown: list[float] = (np.clip(np.rint(value), 0, 5) if rounded else value).tolist()
        return shown

    rng = np.random.default_rng(seed)
    general = rng.normal(2.5, 0.8, people)
    level = general[:, None] + rng.normal(0.0, 0.7, (people, competencies))
    severity = rng.normal(0.0, 0.15, raters) if effects else np.zeros(raters)
    kinds = np.array(["normal"] * raters, dtype=object)
    sim_sets: dict[str, set[int]] = {k: set() for k in ("lenient", "severe", "central", "halo")}
    if effects:
        chosen = rng.permutation(raters)[: 4 * planted]
        for i, kind in enumerate(("lenient", "severe", "central", "halo")):
            for rater in chosen[i * planted : (i + 1) * planted].tolist():
                kinds[rater] = kind
                sim_sets[kind].add(rater)
        severity[list(sim_sets["lenient"])] = 1.0
        severity[list(sim_sets["severe"])] = -1.0
        severity[list(sim_sets["central"] | sim_sets["halo"])] = 0.0
    subject, competency, proficiency, role, rater_id = [], [], [], [], []
    for p in range(people):
        for r in rng.choice(raters, per_person, replace=False).tolist():
            true = level[p]
            if kinds[r] == "central":
                value = 2.5 + 0.2 * (true - 2.5) + rng.normal(0, noise * 0.5, competencies)
            elif kinds[r] == "halo":
                value = np.full(competencies, general[p] + rng.normal(0, noise * 0.3))
            else:
                value = true + severity[r] + rng.normal(0, noise, competencies)
            subject += [p] * competencies
            competency += list(range(competencies))
            proficiency += observed(value)
            role += [PEER] * competencies
            rater_id += [r] * competencies
    inflated: set[int] = set()
    for p in range(people):
        if rng.random() >= self_share:
            continue
        boost = 1.5 if rng.random() < 0.3 else 0.0
        if boost:
            inflated.add(p)
        value = level[p] + boost + rng.normal(0, noise, competencies)
        subject += [p] * competencies
        competency += list(range(competencies))
        proficiency += observed(value)
        role += [SELF] * competencies
        rater_id += [10_000 + p] * competencies
    n = len(subject)
    ratings = CohortRatings(
        subject_index=np.array(subject, dtype=np.int32),
        competency_index=np.array(competency, dtype=np.int32),
        proficiency=np.array(proficiency, dtype=np.float64),
        role=np.array(role, dtype=np.int8),
        rater=np.array(rater_id, dtype=np.int64),
        assessed_at=np.zeros(n, dtype=np.int64),
        sequence=np.zeros(n, dtype=np.int64),
        n_subjects=people,
    )
    return Simulation(ratings, severity, **sim_sets, inflated_selves=inflated)
