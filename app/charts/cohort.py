"""Charts of a cohort evaluation (`POST /v1/cohorts/evaluate`), built from its JSON body.

Three pictures, one per request (``chart``):

- ``heatmap``: actual minus required per competency, one row per person while the cohort has at
  most `HEATMAP_PEOPLE_CAP` people; above that, or whenever the caller names groups (an
  attribute such as ``team``), one row per group with the mean over its people. Without named
  groups a large cohort is grouped by official level. At most `GROUP_CAP` rows: beyond it the
  smallest groups are merged into one row, so 100,000 people draw as a few dozen rows.
- ``levels``: people per attained level (the summary's level distribution).
- ``readiness``: per official level, how many people attained above it (promotion-ready), at it,
  or below it.
"""

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, Final, Literal

import numpy as np

from app.charts import style
from app.errors import FieldError, InvalidInput

Chart = Literal["heatmap", "levels", "readiness"]
CHARTS: Final[tuple[Chart, ...]] = ("heatmap", "levels", "readiness")

HEATMAP_PEOPLE_CAP: Final = 50
GROUP_CAP: Final = 50
NO_LEVEL: Final = "(no official level)"
READY, AT_LEVEL, BELOW = "promotion-ready", "at official level", "below official level"


def build(
    body: dict[str, Any],
    *,
    chart: Chart = "heatmap",
    groups: Mapping[str, str | None] | None = None,
    group_by: str | None = None,
) -> dict[str, Any]:
    """The Vega-Lite spec of one cohort chart; ``groups`` maps people to their ``group_by``
    attribute value (the heatmap then aggregates by it)."""
    if chart == "levels":
        return levels(body)
    if chart == "readiness":
        return readiness(body)
    return heatmap(body, groups=groups, group_by=group_by)


def _target_text(body: Mapping[str, Any]) -> str:
    target = body.get("target_level")
    return f"at {target['key']}" if target else "at each person's next level"


def _needs(body: Mapping[str, Any], field: str, what: str) -> Any:
    """The part of the answer a chart is drawn from, or a 422 naming the switch that left it out."""
    value = body.get(field.removeprefix("include_"))
    if value is None:
        msg = f"The {what} chart is drawn from the answer's {field.removeprefix('include_')}: "
        msg += f"leave {field} true"
        raise InvalidInput(msg, errors=[FieldError(loc=["body", field], msg=msg, type="chart")])
    return value


def _level_order(body: Mapping[str, Any]) -> list[str]:
    """Level keys in the framework's order (the level distribution lists every level)."""
    return [key for key in body["summary"]["level_distribution"] if key != "none"]


def heatmap(
    body: dict[str, Any],
    *,
    groups: Mapping[str, str | None] | None = None,
    group_by: str | None = None,
) -> dict[str, Any]:
    """Competency × person heatmap of actual minus required, or × group (mean) for large cohorts
    and whenever ``groups`` is given."""
    grid = _needs(body, "include_heatmap", "heatmap")
    competencies: list[str] = grid["competencies"]
    refs: list[str] = grid["subject_refs"]
    rows: list[dict[str, Any]] = []
    aggregated = groups is not None or len(refs) > HEATMAP_PEOPLE_CAP
    if not aggregated:
        order = list(refs)
        for ref, values in zip(refs, grid["values"], strict=True):
            rows += [
                {"row": ref, "competency": c, "actual_minus_required": v}
                for c, v in zip(competencies, values, strict=True)
                if v is not None
            ]
        shown = f"{len(refs)} people"
        row_title = "Person"
    else:
        if groups is None:
            people = _needs(body, "include_people", "aggregated heatmap")
            official = {p["subject_ref"]: p["current_level"] for p in people}
            levels = _level_order(body)
            label_of = {ref: lv if lv in levels else NO_LEVEL for ref, lv in official.items()}
            rank = {lv: i for i, lv in enumerate(levels)}
            missing = NO_LEVEL
            row_title = "Official level"
        else:
            label_of = {ref: groups.get(ref) or f"(no {group_by})" for ref in refs}
            rank = {}
            missing = f"(no {group_by})"
            row_title = (group_by or "group").capitalize()
        members = [label_of[ref] for ref in refs]
        order, rows = _aggregate(competencies, members, grid["values"], rank, missing)
        shown = f"{len(refs)} people in {len(order)} groups"
    extreme = max((abs(r["actual_minus_required"]) for r in rows), default=0.0)
    bound = max(1.0, extreme)
    tooltip: list[dict[str, Any]] = [
        {"field": "row", "type": "nominal", "title": row_title},
        {"field": "competency", "type": "nominal", "title": "Competency"},
        {
            "field": "actual_minus_required",
            "type": "quantitative",
            "title": "Mean actual − required" if aggregated else "Actual − required",
            "format": ".2f",
        },
    ]
    if aggregated:
        tooltip.append({"field": "people", "type": "quantitative", "title": "People"})
    spec = style.base_spec(
        title=f"Actual minus required per competency, {shown}",
        subtitle=f"{style.framework_text(body)}, {_target_text(body)}, as of {style.moment_text(body['as_of'])}",
        description=(
            f"Heatmap of actual minus required proficiency in scale points, {len(competencies)} "
            f"competencies by {row_title.lower()} ({shown}), {_target_text(body)}. Below zero "
            "(vermillion) falls short of the requirement, above zero (blue) exceeds it; "
            "blank cells have nothing required or nobody rated."
        ),
    )
    spec.update(style.tile_size(rows=len(order)))
    spec["data"] = {"values": rows}
    spec["mark"] = {"type": "rect", "tooltip": True}
    spec["encoding"] = {
        "x": {
            "field": "competency",
            "type": "nominal",
            "sort": competencies,
            "title": "Competency",
            "axis": {"labelAngle": -40},
        },
        "y": {"field": "row", "type": "nominal", "sort": order, "title": row_title},
        "color": {
            "field": "actual_minus_required",
            "type": "quantitative",
            "title": "Actual − required (points)",
            "scale": {"domain": [-bound, bound], "domainMid": 0, "range": style.DIVERGING_RANGE},
        },
        "tooltip": tooltip,
    }
    return spec


def _aggregate(
    competencies: Sequence[str],
    members: Sequence[str],
    values: Sequence[Sequence[float | None]],
    rank: Mapping[str, int],
    missing: str,
) -> tuple[list[str], list[dict[str, Any]]]:
    """Rows (groups, at most `GROUP_CAP`) and their cells: the mean over the group's people
    with a value; groups beyond the cap, the smallest, are merged into one row."""
    size = Counter(members)
    other = None
    if len(size) > GROUP_CAP:
        kept = sorted(size, key=lambda g: (-size[g], g))[: GROUP_CAP - 1]
        other = f"({len(size) - len(kept)} other groups)"
        size = Counter(
            {g: size[g] for g in kept} | {other: len(members) - sum(size[g] for g in kept)}
        )

    def position(g: str) -> tuple[int, int, str]:
        # Levels in the framework's order, other labels by name; the leftovers last.
        tail = 2 if g == other else 1 if g == missing else 0
        return (tail, rank.get(g, len(rank)), g)

    order = sorted(size, key=position)
    index = {g: i for i, g in enumerate(order)}
    fallback = index[other] if other is not None else -1
    codes = np.array([index.get(g, fallback) for g in members], dtype=np.intp)
    # One numpy pass over 100,000 rows instead of a Python loop per cell; None becomes NaN.
    grid = np.array(values, dtype=float).reshape(len(members), len(competencies))
    present = ~np.isnan(grid)
    filled = np.where(present, grid, 0.0)
    sums = np.stack(
        [
            np.bincount(codes, weights=filled[:, j], minlength=len(order))
            for j in range(grid.shape[1])
        ],
        axis=1,
    ).reshape(len(order), len(competencies))
    counts = np.stack(
        [
            np.bincount(codes, weights=present[:, j], minlength=len(order))
            for j in range(grid.shape[1])
        ],
        axis=1,
    ).reshape(len(order), len(competencies))
    labels = [f"{g} ({size[g]})" for g in order]
    cells = [
        {
            "row": labels[i],
            "competency": c,
            "actual_minus_required": float(sums[i, j] / counts[i, j]),
            "people": int(counts[i, j]),
        }
        for i in range(len(order))
        for j, c in enumerate(competencies)
        if counts[i, j]
    ]
    return labels, cells


def levels(body: dict[str, Any]) -> dict[str, Any]:
    """People per attained level, in the framework's level order ('none' last)."""
    summary = body["summary"]
    distribution: dict[str, int] = summary["level_distribution"]
    rows = [{"level": level, "people": n} for level, n in distribution.items()]
    spec = style.base_spec(
        title=f"Attained level of {summary['subjects']} people",
        subtitle=f"{style.framework_text(body)}, as of {style.moment_text(body['as_of'])}",
        description=(
            f"Bar chart of how many of the cohort's {summary['subjects']} people attained each "
            "level, in the ladder's order; 'none' counts people who attained no level."
        ),
    )
    spec.update(style.tile_size())
    spec["data"] = {"values": rows}
    x = {
        "field": "level",
        "type": "nominal",
        "sort": list(distribution),
        "title": "Attained level",
        "axis": {"labelAngle": 0},
    }
    y = {
        "field": "people",
        "type": "quantitative",
        "title": "People",
        "axis": {"tickMinStep": 1, "format": "d"},
    }
    spec["layer"] = [
        {
            "mark": {
                "type": "bar",
                "color": style.ACTUAL_COLOR,
                "tooltip": True,
                "width": {"band": 0.7},
            },
            "encoding": {
                "x": x,
                "y": y,
                "tooltip": [
                    {"field": "level", "type": "nominal", "title": "Attained level"},
                    {"field": "people", "type": "quantitative", "title": "People"},
                ],
            },
        },
        {
            "mark": {"type": "text", "dy": -6, "color": style.THRESHOLD_COLOR},
            "encoding": {"x": x, "y": y, "text": {"field": "people", "type": "quantitative"}},
        },
    ]
    return spec


def readiness(body: dict[str, Any]) -> dict[str, Any]:
    """Per official level, people whose attained level is above it (promotion-ready), at it, or
    below it, from the answer's promotion-ready and below-level lists."""
    people = _needs(body, "include_people", "readiness")
    summary = body["summary"]
    order = _level_order(body)
    ready, below = set(summary["promotion_ready"]), set(summary["below_level"])
    counts: dict[tuple[str, str], int] = {}
    without = 0
    for person in people:
        official = person["current_level"]
        if official not in order:
            without += 1
            continue
        ref = person["subject_ref"]
        status = READY if ref in ready else BELOW if ref in below else AT_LEVEL
        counts[official, status] = counts.get((official, status), 0) + 1
    statuses = [BELOW, AT_LEVEL, READY]
    rows = [
        {"official_level": level, "status": status, "people": counts[level, status]}
        for level in order
        for status in statuses
        if (level, status) in counts
    ]
    placed = len(people) - without
    left_out = (
        f"; {without} without an official level of this ladder are left out" if without else ""
    )
    spec = style.base_spec(
        title=f"Attained vs official level of {placed} people",
        subtitle=f"{style.framework_text(body)}, as of {style.moment_text(body['as_of'])}",
        description=(
            f"Stacked bars per official level: {len(ready)} people attained a level above their "
            f"official one (promotion-ready), {len(below)} below it, the rest at it{left_out}."
        ),
    )
    spec.update(style.tile_size())
    spec["data"] = {"values": rows}
    spec["mark"] = {"type": "bar", "tooltip": True, "width": {"band": 0.7}}
    spec["encoding"] = {
        "x": {
            "field": "official_level",
            "type": "nominal",
            "sort": order,
            "title": "Official level",
            "axis": {"labelAngle": 0},
        },
        "y": {
            "field": "people",
            "type": "quantitative",
            "stack": "zero",
            "title": "People",
            "axis": {"tickMinStep": 1, "format": "d"},
        },
        "color": {
            "field": "status",
            "type": "nominal",
            "title": "Attained level",
            "sort": statuses,  # also the stacking order, bottom up
            "scale": {
                "domain": statuses,
                "range": [style.SHORTFALL_COLOR, style.OKABE_ITO["sky_blue"], style.MET_COLOR],
            },
        },
        "tooltip": [
            {"field": "official_level", "type": "nominal", "title": "Official level"},
            {"field": "status", "type": "nominal", "title": "Attained level"},
            {"field": "people", "type": "quantitative", "title": "People"},
        ],
    }
    return spec
