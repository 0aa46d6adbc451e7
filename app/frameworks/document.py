"""The declarative framework file: one schema for JSON and YAML, with cross-field validation.

Pydantic checks each field; ``check_document`` checks what only the whole document can tell
(unknown references, duplicate keys, rank collisions, emphasis sums) and names the field.
"""

from collections import defaultdict
from itertools import pairwise
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app.errors import FieldError, InvalidInput
from app.schemas import CLOSED_MAP, JSON_NUMBER, KEY_MAX_LENGTH, KEY_PATTERN, NUL_FREE

FORMAT: Literal["competency-framework/v1"] = "competency-framework/v1"

Key = Annotated[
    str,
    Field(min_length=1, max_length=KEY_MAX_LENGTH, pattern=KEY_PATTERN, examples=["execution"]),
]
Name = Annotated[str, Field(min_length=1, max_length=200, pattern=NUL_FREE)]
Text = Annotated[str, Field(max_length=4000, pattern=NUL_FREE)]
Indicator = Annotated[str, Field(min_length=1, max_length=300, pattern=NUL_FREE)]
# An absolute IRI (RFC 3987: a scheme, then no spaces or controls), as xAPI activity ids are.
# Control and space characters are spelled out: JSON Schema regexes and Python disagree on \s.
ActivityIri = Annotated[
    str,
    Field(
        min_length=3,
        max_length=2000,
        pattern=r"^[A-Za-z][A-Za-z0-9+.\-]*:[^\x00-\x20\x7f-\x9f]+$",
        examples=["https://learning.example.com/courses/system-design"],
    ),
]

RoleWeightKey = Literal["self", "manager", "peer", "direct_report", "external"]
ActivityKind = Literal[
    "practice", "stretch_assignment", "mentoring", "course", "certification", "reading", "community"
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def _default_role_weights() -> dict[RoleWeightKey, float]:
    return {"manager": 3.0, "peer": 2.0, "direct_report": 2.0, "external": 2.0, "self": 1.0}


class FrameworkSettings(Strict):
    """Scoring thresholds this framework uses unless a request overrides them."""

    readiness_threshold: Annotated[float, Field(gt=0, le=1), JSON_NUMBER] = 0.85
    gap_tolerance: Annotated[float, Field(ge=0, le=100), JSON_NUMBER] = Field(
        default=1.0,
        description="How far below a requirement an expected competency may lie; its unit is "
        "gap_tolerance_mode.",
    )
    gap_tolerance_mode: Literal["points", "steps", "fraction"] = Field(
        default="points",
        description="points: gap_tolerance is in scale points; steps: in steps of the scale "
        "(its span over the number of steps); fraction: a share of each requirement (0.25 = 25%).",
    )
    window_days: Annotated[int, Field(ge=1, le=3650), JSON_NUMBER] = 365
    role_weights: dict[RoleWeightKey, Annotated[float, Field(ge=0, le=100), JSON_NUMBER]] = Field(
        default_factory=_default_role_weights,
        description="Merged with the defaults (manager 3, peer 2, direct_report 2, external 2, "
        "self 1); only an explicit 0 drops a role.",
    )
    rater_adjustment: Literal["none", "preview", "apply"] = Field(
        default="none",
        description="Rater effects in scores: none; preview (score responses also carry the "
        "score with the latest recorded rater-effect estimate subtracted); apply (that adjusted "
        "score is the score).",
    )
    cumulative_indicators: bool = Field(
        default=False,
        description="Lower levels' criteria stay expected: gap items also list the indicators of "
        "lower levels on the target's path whose requirement is not met.",
    )


class ScalePoint(Strict):
    value: Annotated[int, Field(ge=0, le=100), JSON_NUMBER]
    label: Name
    description: Text = ""


class Track(Strict):
    key: Key
    name: Name
    description: Text = ""


class Level(Strict):
    key: Key
    name: Name
    rank: Annotated[int, Field(ge=1, le=1000), JSON_NUMBER] = Field(
        description="Seniority; unique along each path from the trunk into a track."
    )
    track: Key | None = Field(default=None, description="Omit for the shared trunk.")
    description: Text = ""


class Area(Strict):
    key: Key
    name: Name
    description: Text = ""
    emphasis: dict[Key, Annotated[float, Field(ge=0, le=1), JSON_NUMBER]] = Field(
        default_factory=dict,
        description="Level key -> share of that level's expectations this area carries.",
        json_schema_extra=CLOSED_MAP,
    )


class Expectation(Strict):
    required: Annotated[int, Field(ge=0, le=100), JSON_NUMBER] = Field(
        description="Required proficiency (a scale value)."
    )
    critical: bool = False
    indicators: list[Indicator] = Field(default_factory=list, max_length=12)


class Competency(Strict):
    key: Key
    name: Name
    area: Key
    weight: Annotated[float, Field(ge=0, le=1000), JSON_NUMBER] = 1.0
    description: Text = ""
    expectations: dict[Key, Expectation] = Field(
        default_factory=dict,
        description="Level key -> what that level requires.",
        json_schema_extra=CLOSED_MAP,
    )


class LevelBand(Strict):
    from_level: Key = Field(alias="from")
    to_level: Key = Field(alias="to")


class Activity(Strict):
    key: Key
    title: Name
    kind: ActivityKind
    description: Text = ""
    develops: dict[Key, Annotated[int, Field(ge=1, le=100), JSON_NUMBER]] = Field(
        min_length=1,
        description="Competency key -> proficiency points the activity develops.",
        json_schema_extra=CLOSED_MAP,
    )
    effort_hours: Annotated[float, Field(gt=0, le=10_000), JSON_NUMBER]
    level_band: LevelBand
    url: str | None = Field(default=None, max_length=2000, pattern=r"^https?://[\x21-\x7e]+$")
    iri: ActivityIri | None = Field(
        default=None,
        description="The activity's identity in a learning catalogue (an xAPI activity id): "
        "statements about it record it as completed.",
    )
    alternative_iris: list[ActivityIri] = Field(
        default_factory=list,
        max_length=20,
        description="Other IRIs naming the same activity (e.g. in a second catalogue).",
    )


class CompetencyMapping(Strict):
    """How competencies of the previous version became this version's: a rename (one key to
    one), a merge (several to one), a split (one to several) or a retirement (to null)."""

    from_keys: Key | list[Key] = Field(
        alias="from", description="A key of the previous version, or several for a merge."
    )
    to: Key | list[Key] | None = Field(
        description="A key of this version, several for a split, or null: retired."
    )
    weights: dict[Key, Annotated[float, Field(gt=0, le=1000), JSON_NUMBER]] = Field(
        default_factory=dict,
        description="Merge: weight of each source (default 1; the carried rating is their "
        "weighted mean). Split: factor of each target, at most 1 (default 1; the carried rating "
        "is the old one times the factor).",
        json_schema_extra=CLOSED_MAP,
    )

    @property
    def sources(self) -> list[str]:
        return [self.from_keys] if isinstance(self.from_keys, str) else list(self.from_keys)

    @property
    def targets(self) -> list[str]:
        if self.to is None:
            return []
        return [self.to] if isinstance(self.to, str) else list(self.to)


class CompetencyMap(Strict):
    """Ratings given against older versions are carried through this map when scoring."""

    complete: bool = Field(
        default=False,
        description="True: every competency of the previous version is named in an entry.",
    )
    entries: list[CompetencyMapping] = Field(default_factory=list, max_length=300)


class FrameworkDocument(Strict):
    """A whole framework version as a file: scale, tracks, levels, areas, competencies, activities."""

    format: Literal["competency-framework/v1"] = FORMAT
    key: Key
    name: Name
    description: Text = ""
    settings: FrameworkSettings = Field(default_factory=FrameworkSettings)
    scale: list[ScalePoint] = Field(min_length=2, max_length=21)
    tracks: list[Track] = Field(default_factory=list, max_length=20)
    levels: list[Level] = Field(min_length=1, max_length=50)
    areas: list[Area] = Field(default_factory=list, max_length=50)
    competencies: list[Competency] = Field(min_length=1, max_length=300)
    activities: list[Activity] = Field(default_factory=list, max_length=1000)
    competency_map: CompetencyMap | None = Field(
        default=None,
        description="How the previous version's competencies map onto this version's.",
    )
    release_notes: Text | None = Field(
        default=None, description="Why this version exists (Markdown); sent when it is published."
    )


EMPHASIS_SUM_TOLERANCE = 0.01


def _dupes(items: list[Any], attr: str, where: str, errors: list[FieldError]) -> None:
    seen: set[Any] = set()
    for i, item in enumerate(items):
        value = getattr(item, attr)
        if value in seen:
            errors.append(
                FieldError(
                    loc=[where, i, attr], msg=f"duplicate {attr} {value!r}", type="duplicate"
                )
            )
        seen.add(value)


def check_document(doc: FrameworkDocument) -> list[FieldError]:
    """Cross-field checks: every problem found, each with the path of the offending field."""
    errors: list[FieldError] = []
    for where, items, attr in (
        ("scale", doc.scale, "value"),
        ("tracks", doc.tracks, "key"),
        ("levels", doc.levels, "key"),
        ("areas", doc.areas, "key"),
        ("competencies", doc.competencies, "key"),
        ("activities", doc.activities, "key"),
    ):
        _dupes(list(items), attr, where, errors)

    values = [p.value for p in doc.scale]
    for i in range(1, len(values)):
        if values[i] <= values[i - 1]:
            errors.append(
                FieldError(
                    loc=["scale", i, "value"], msg="scale values must increase", type="order"
                )
            )
    scale_values = set(values)
    scale_min, scale_max = min(values), max(values)

    tracks = {t.key for t in doc.tracks}
    levels = {lv.key: lv for lv in doc.levels}
    for i, lv in enumerate(doc.levels):
        if lv.track is not None and lv.track not in tracks:
            errors.append(
                FieldError(
                    loc=["levels", i, "track"],
                    msg=f"unknown track {lv.track!r}",
                    type="unknown_reference",
                )
            )
    # Ranks must be unique on each path: the trunk, and the trunk plus each track.
    for i, lv in enumerate(doc.levels):
        for j in range(i):
            other = doc.levels[j]
            same_path = lv.track is None or other.track is None or lv.track == other.track
            if same_path and lv.rank == other.rank:
                errors.append(
                    FieldError(
                        loc=["levels", i, "rank"],
                        msg=f"rank {lv.rank} collides with level {other.key!r} on the same path",
                        type="rank_collision",
                    )
                )

    areas = {a.key for a in doc.areas}
    required_at: dict[tuple[str, str], bool] = defaultdict(
        bool
    )  # (area, level) -> anything required
    for ci, comp in enumerate(doc.competencies):
        if comp.area not in areas:
            errors.append(
                FieldError(
                    loc=["competencies", ci, "area"],
                    msg=f"unknown area {comp.area!r}",
                    type="unknown_reference",
                )
            )
        for level_key, exp in comp.expectations.items():
            loc: list[str | int] = ["competencies", ci, "expectations", level_key]
            if level_key not in levels:
                errors.append(
                    FieldError(
                        loc=loc, msg=f"unknown level {level_key!r}", type="unknown_reference"
                    )
                )
            if exp.required not in scale_values:
                errors.append(
                    FieldError(
                        loc=[*loc, "required"],
                        msg=f"required proficiency {exp.required} is not on the scale {sorted(scale_values)}",
                        type="out_of_scale",
                    )
                )
            if exp.required > 0:
                required_at[(comp.area, level_key)] = True

    for ai, area in enumerate(doc.areas):
        for level_key, share in area.emphasis.items():
            loc = ["areas", ai, "emphasis", level_key]
            if level_key not in levels:
                errors.append(
                    FieldError(
                        loc=loc, msg=f"unknown level {level_key!r}", type="unknown_reference"
                    )
                )
            elif share > 0 and not required_at[(area.key, level_key)]:
                errors.append(
                    FieldError(
                        loc=loc,
                        msg=f"area {area.key!r} has emphasis at {level_key!r} but no competency of it is required there",
                        type="emphasis_without_expectations",
                    )
                )
    for level_key in levels:
        shares = {a.key: a.emphasis[level_key] for a in doc.areas if level_key in a.emphasis}
        if not shares:
            continue
        total = sum(shares.values())
        if abs(total - 1.0) > EMPHASIS_SUM_TOLERANCE:
            errors.append(
                FieldError(
                    loc=["areas", "emphasis", level_key],
                    msg=f"emphasis at level {level_key!r} sums to {total:.3f}; it must sum to 1",
                    type="emphasis_sum",
                )
            )
        for ai, area in enumerate(doc.areas):
            if required_at[(area.key, level_key)] and area.key not in shares:
                errors.append(
                    FieldError(
                        loc=["areas", ai, "emphasis", level_key],
                        msg=f"level {level_key!r} has emphasis on other areas but none for {area.key!r}, whose competencies it requires",
                        type="emphasis_missing",
                    )
                )

    competencies = {c.key for c in doc.competencies}
    span = scale_max - scale_min
    errors.extend(_iri_clashes(doc))
    for ai, act in enumerate(doc.activities):
        for comp_key, points in act.develops.items():
            if comp_key not in competencies:
                errors.append(
                    FieldError(
                        loc=["activities", ai, "develops", comp_key],
                        msg=f"unknown competency {comp_key!r}",
                        type="unknown_reference",
                    )
                )
            elif points > span:
                errors.append(
                    FieldError(
                        loc=["activities", ai, "develops", comp_key],
                        msg=f"{points} points exceed the scale's span {span}",
                        type="out_of_scale",
                    )
                )
        band = act.level_band
        lo, hi = levels.get(band.from_level), levels.get(band.to_level)
        if lo is None:
            errors.append(
                FieldError(
                    loc=["activities", ai, "level_band", "from"],
                    msg=f"unknown level {band.from_level!r}",
                    type="unknown_reference",
                )
            )
        if hi is None:
            errors.append(
                FieldError(
                    loc=["activities", ai, "level_band", "to"],
                    msg=f"unknown level {band.to_level!r}",
                    type="unknown_reference",
                )
            )
        if lo is not None and hi is not None and lo.rank > hi.rank:
            errors.append(
                FieldError(
                    loc=["activities", ai, "level_band"],
                    msg="band 'from' ranks above 'to'",
                    type="band_order",
                )
            )

    tolerance, mode = doc.settings.gap_tolerance, doc.settings.gap_tolerance_mode
    if mode == "fraction" and tolerance > 1:
        errors.append(
            FieldError(
                loc=["settings", "gap_tolerance"],
                msg=f"a tolerance of {tolerance:g} times the requirement would let any value pass; "
                "with gap_tolerance_mode 'fraction' it must be at most 1",
                type="out_of_scale",
            )
        )
    elif mode != "fraction" and tolerance * (scale_step(doc) if mode == "steps" else 1) > span:
        errors.append(
            FieldError(
                loc=["settings", "gap_tolerance"],
                msg=f"tolerance exceeds the scale's span {span}",
                type="out_of_scale",
            )
        )
    errors.extend(_weightless_levels(doc))
    return errors


def _iri_clashes(doc: FrameworkDocument) -> list[FieldError]:
    """An IRI names one activity: a second activity (or a repeat) naming it is refused."""
    errors: list[FieldError] = []
    owner: dict[str, str] = {}
    for ai, act in enumerate(doc.activities):
        named: list[tuple[list[str | int], str]] = []
        if act.iri is not None:
            named.append((["activities", ai, "iri"], act.iri))
        named += [
            (["activities", ai, "alternative_iris", i], iri)
            for i, iri in enumerate(act.alternative_iris)
        ]
        for loc, iri in named:
            if iri in owner:
                errors.append(
                    FieldError(
                        loc=loc,
                        msg=f"IRI {iri!r} already names activity {owner[iri]!r}",
                        type="duplicate",
                    )
                )
            owner.setdefault(iri, act.key)
    return errors


def scale_step(doc: FrameworkDocument) -> float:
    """Points between neighbouring scale values (their mean when the scale is uneven)."""
    values = [point.value for point in doc.scale]
    return (max(values) - min(values)) / (len(values) - 1)


def _weightless_levels(doc: FrameworkDocument) -> list[FieldError]:
    """Levels whose expectations can never carry weight, which would be met on no evidence."""
    errors: list[FieldError] = []
    for li, lv in enumerate(doc.levels):
        expected = [
            c
            for c in doc.competencies
            if lv.key in c.expectations and c.expectations[lv.key].required > 0
        ]
        if not expected:
            errors.append(
                FieldError(
                    loc=["levels", li],
                    msg=f"level {lv.key!r} requires no competency above 0, so nobody could "
                    "ever show it is attained; require at least one competency there",
                    type="level_without_expectations",
                )
            )
            continue
        shares = {a.key: a.emphasis[lv.key] for a in doc.areas if lv.key in a.emphasis}
        if shares:
            carried = sum(shares.get(c.area, 0.0) for c in expected)
        else:
            carried = sum(c.weight for c in expected)
        if carried <= 0:
            keys = ", ".join(repr(c.key) for c in expected)
            errors.append(
                FieldError(
                    loc=["levels", li],
                    msg=f"the expectations of level {lv.key!r} ({keys}) all weigh 0, so they can "
                    "never carry weight; give one of them a weight (or area emphasis) above 0",
                    type="level_without_weight",
                )
            )
    return errors


def tolerance_advice(doc: FrameworkDocument) -> list[str]:
    """Why the default gap tolerance (1 point) may make little sense for this scale; empty when
    the document chose its tolerance or the default suits it. Advice only: nothing is refused."""
    chosen = doc.settings.model_fields_set & {"gap_tolerance", "gap_tolerance_mode"}
    if "settings" not in doc.model_fields_set:
        chosen = set()
    if chosen:
        return []
    advice: list[str] = []
    step = scale_step(doc)
    tolerance = doc.settings.gap_tolerance
    if tolerance < step:
        advice.append(
            f"settings.gap_tolerance: the default tolerance of {tolerance:g} point is less than "
            f"one step of this scale ({step:g} points), so nothing below a requirement is "
            "tolerated; set gap_tolerance_mode 'steps' (or 'fraction') to say what you mean"
        )
    ranks = {lv.key: lv.rank for lv in doc.levels}
    rises: list[int] = []
    for comp in doc.competencies:
        required = sorted(
            (ranks[key], exp.required)
            for key, exp in comp.expectations.items()
            if key in ranks and exp.required > 0
        )
        rises.extend(b - a for (_, a), (_, b) in pairwise(required) if b > a)
    if rises and max(rises) <= tolerance:
        advice.append(
            f"settings.gap_tolerance: requirements rise by at most {max(rises)} point(s) from one "
            f"level to the next, so the default tolerance of {tolerance:g} point lets a person a "
            "whole level below on every competency pass it; consider gap_tolerance_mode "
            "'fraction' (e.g. gap_tolerance 0.2) or gap_tolerance 0"
        )
    return advice


def parse_document(data: Any) -> FrameworkDocument:
    """Validate a decoded framework file; raise InvalidInput naming every offending field."""
    try:
        doc = FrameworkDocument.model_validate(data)
    except ValidationError as exc:
        errors = [
            FieldError(
                loc=[p if isinstance(p, int) else str(p) for p in e["loc"]],
                msg=e["msg"],
                type=e["type"],
            )
            for e in exc.errors()
        ]
        raise InvalidInput(
            f"The framework file has {len(errors)} invalid field(s).", errors=errors
        ) from None
    ensure_valid(doc)
    return doc


def ensure_valid(doc: FrameworkDocument) -> None:
    """Raise InvalidInput when the document's parts do not fit together."""
    errors = check_document(doc)
    if errors:
        raise InvalidInput(
            f"The framework is inconsistent: {len(errors)} problem(s).", errors=errors
        )


def dump_document(doc: FrameworkDocument) -> dict[str, Any]:
    """The document as plain JSON-compatible data (the export format)."""
    data = doc.model_dump(mode="json", by_alias=True)
    # Left out when absent, so a document without them stores (and digests) as it always did.
    for optional in ("competency_map", "release_notes"):
        if data[optional] is None:
            del data[optional]
    for activity in data["activities"]:
        if activity["iri"] is None:
            del activity["iri"]
        if not activity["alternative_iris"]:
            del activity["alternative_iris"]
    return data
