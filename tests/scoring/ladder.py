"""Independent arithmetic on the built-in product-management ladder, straight from its YAML.

Written apart from ``app/scoring`` on purpose: it reads the YAML file with PyYAML, never imports
the engine, and works in exact fractions (every decimal in the file is read as the decimal it
spells, so 0.45 is 9/20). The ladder-case tests compare the engine's floats with these exact
numbers and with the arithmetic written out in their comments.

Formulas, as documented in the README's "Scoring, precisely":

- ``w_L(c) = e_A(L) * weight_c / sum(weight of A's competencies with r_cL > 0)``
- ``R_L = sum(w_L(c) * min(1, a_c / r_cL)) / sum(w_L(c))``, unrated counted as 0
- an activity raises each competency it develops by its points, capped at the scale max
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
LADDER_PATH = REPO_ROOT / "app" / "frameworks" / "builtin" / "product-management.yaml"

Number = int | float | Fraction
Values = Mapping[str, Number]


def exact(number: Number) -> Fraction:
    """The exact rational a YAML decimal (or a test's value) spells: 0.45 -> 9/20."""
    if isinstance(number, Fraction):
        return number
    if isinstance(number, float):
        return Fraction(repr(number))
    return Fraction(number)


@dataclass(frozen=True)
class ActivitySpec:
    key: str
    kind: str
    gains: Mapping[str, int]
    effort: Fraction
    band: tuple[int, int]  # ranks of level_band.from and level_band.to


@dataclass(frozen=True)
class Ladder:
    rank: Mapping[str, int]  # level key -> rank
    track: Mapping[str, str | None]  # level key -> track (None: trunk)
    area_of: Mapping[str, str]  # competency key -> area key
    weight_of: Mapping[str, Fraction]  # competency key -> weight
    order: tuple[str, ...]  # competency keys in file order
    # level key -> competency key -> (required, critical)
    required: Mapping[str, Mapping[str, tuple[int, bool]]]
    indicators: Mapping[tuple[str, str], tuple[str, ...]]  # (competency, level) -> indicators
    emphasis: Mapping[str, Mapping[str, Fraction]]  # area key -> level key -> share
    activities: Mapping[str, ActivitySpec]
    scale_max: int
    threshold: Fraction
    tolerance: Fraction

    # -- weights and readiness ---------------------------------------------------------------

    def weights(self, level: str) -> dict[str, Fraction]:
        """w_L(c) for every competency with r_cL > 0, in file order."""
        expected = [c for c in self.order if self.required[level].get(c, (0, False))[0] > 0]
        shares = {
            area: by_level[level] for area, by_level in self.emphasis.items() if level in by_level
        }
        if not shares:
            return {c: self.weight_of[c] for c in expected}
        area_total: dict[str, Fraction] = {}
        for c in expected:
            area_total[self.area_of[c]] = (
                area_total.get(self.area_of[c], Fraction(0)) + self.weight_of[c]
            )
        result: dict[str, Fraction] = {}
        for c in expected:
            area = self.area_of[c]
            share = shares.get(area, Fraction(0))
            members = sum(1 for other in expected if self.area_of[other] == area)
            total = area_total[area]
            result[c] = share * self.weight_of[c] / total if total > 0 else share / members
        return result

    def attainment(self, level: str, competency: str, values: Values) -> Fraction:
        required = self.required[level][competency][0]
        actual = exact(values.get(competency, 0))
        return min(Fraction(1), actual / required)

    def readiness(self, level: str, values: Values) -> Fraction:
        weights = self.weights(level)
        total = sum(weights.values(), Fraction(0))
        if total == 0:
            return Fraction(1)
        got = sum((w * self.attainment(level, c, values) for c, w in weights.items()), Fraction(0))
        return got / total

    def points_lost(self, level: str, values: Values) -> dict[str, Fraction]:
        """d_c = w_L(c) * (1 - min(1, a_c / r_cL)) / sum(w_L) per expected competency."""
        weights = self.weights(level)
        total = sum(weights.values(), Fraction(0))
        return {c: w * (1 - self.attainment(level, c, values)) / total for c, w in weights.items()}

    # -- the meets verdict ---------------------------------------------------------------------

    def critical_unmet(self, level: str, values: Values) -> list[str]:
        return sorted(
            c
            for c, (required, critical) in self.required[level].items()
            if required > 0 and critical and exact(values.get(c, 0)) < required
        )

    def below_tolerance(self, level: str, values: Values) -> list[str]:
        return sorted(
            c
            for c, (required, _) in self.required[level].items()
            if required > 0 and exact(values.get(c, 0)) < required - self.tolerance
        )

    def meets(self, level: str, values: Values) -> bool:
        return (
            self.readiness(level, values) >= self.threshold
            and not self.critical_unmet(level, values)
            and not self.below_tolerance(level, values)
        )

    # -- activities ----------------------------------------------------------------------------

    def apply(self, values: Values, activities: Iterable[str]) -> dict[str, Fraction]:
        """Values after doing the activities in order: +points each, capped at the scale max."""
        after = {c: exact(v) for c, v in values.items()}
        for key in activities:
            for competency, points in self.activities[key].gains.items():
                after[competency] = min(
                    Fraction(self.scale_max), after.get(competency, Fraction(0)) + points
                )
        return after

    def in_band(self, level: str) -> list[str]:
        rank = self.rank[level]
        return sorted(k for k, a in self.activities.items() if a.band[0] <= rank <= a.band[1])

    def ranked_candidates(
        self,
        level: str,
        values: Values,
        exclude: Iterable[str] = (),
        hours_left: Number | None = None,
    ) -> list[tuple[Fraction, Fraction, str]]:
        """(gain per hour, effort, key) of every in-band helpful activity, best first.

        Best = largest gain per hour, then shorter effort, then key (the documented tie-break).
        Activities longer than ``hours_left`` are left out.
        """
        skip = set(exclude)
        now = self.readiness(level, values)
        ranked = []
        for key in self.in_band(level):
            spec = self.activities[key]
            if key in skip or (hours_left is not None and spec.effort > exact(hours_left)):
                continue
            gain = self.readiness(level, self.apply(values, [key])) - now
            if gain > 0:
                ranked.append((gain / spec.effort, spec.effort, key))
        ranked.sort(key=lambda item: (-item[0], item[1], item[2]))
        return ranked


def load_ladder(path: Path = LADDER_PATH) -> Ladder:
    """Read the ladder's YAML into exact numbers, with no help from the app."""
    data: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    rank = {lv["key"]: int(lv["rank"]) for lv in data["levels"]}
    track = {lv["key"]: lv.get("track") for lv in data["levels"]}
    required: dict[str, dict[str, tuple[int, bool]]] = {level: {} for level in rank}
    indicators: dict[tuple[str, str], tuple[str, ...]] = {}
    for comp in data["competencies"]:
        for level, expectation in comp.get("expectations", {}).items():
            required[level][comp["key"]] = (
                int(expectation["required"]),
                bool(expectation.get("critical", False)),
            )
            indicators[(comp["key"], level)] = tuple(expectation.get("indicators", ()))
    activities = {
        a["key"]: ActivitySpec(
            key=a["key"],
            kind=a["kind"],
            gains={c: int(p) for c, p in a["develops"].items()},
            effort=exact(a["effort_hours"]),
            band=(rank[a["level_band"]["from"]], rank[a["level_band"]["to"]]),
        )
        for a in data["activities"]
    }
    settings = data["settings"]
    return Ladder(
        rank=rank,
        track=track,
        area_of={c["key"]: c["area"] for c in data["competencies"]},
        weight_of={c["key"]: exact(c["weight"]) for c in data["competencies"]},
        order=tuple(c["key"] for c in data["competencies"]),
        required=required,
        indicators=indicators,
        emphasis={
            a["key"]: {level: exact(share) for level, share in a["emphasis"].items()}
            for a in data["areas"]
            if a.get("emphasis")
        },
        activities=activities,
        scale_max=max(int(point["value"]) for point in data["scale"]),
        threshold=exact(settings["readiness_threshold"]),
        tolerance=exact(settings["gap_tolerance"]),
    )
