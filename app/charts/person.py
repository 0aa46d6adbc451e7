"""Charts of one person: score, gaps, development plan and history (spec builders, pure).

Each builder takes the JSON body its route answers (decoded) and returns a Vega-Lite v5 spec
with that body's numbers inlined; nothing is recomputed except sums and formatting.
"""

import math
from datetime import datetime
from typing import Any, Final

from app.charts import style
from app.errors import InvalidInput

LEVEL_INDEX_PER_90_DAYS: Final = "level index per 90 days"
# Bar panels: the tile less the room their competency labels take.
PANEL_WIDTH_PX: Final = style.TILE_WIDTH_PX - 200


def _number(value: float | None, digits: int = 2) -> str:
    return "unrated" if value is None else f"{value:.{digits}f}"


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f}%"


def _who(body: dict[str, Any]) -> str:
    return str(body.get("subject_ref") or "Evaluation")


def score_level(body: dict[str, Any], level: str | None = None) -> str | None:
    """The level a score chart compares against: the named one, else the next, else attained."""
    known = [lv["level"] for lv in body["explanation"]["levels"]]
    if level is not None:
        if level not in known:
            raise InvalidInput(
                f"Level {level!r} is not one of this score's levels: {', '.join(known)}."
            )
        return level
    for candidate in (body.get("next_level"), body.get("attained_level")):
        if candidate and candidate["key"] in known:
            return str(candidate["key"])
    return known[-1] if known else None


_MARKS = {"critical": style.CRITICAL_MARK, "blind spot": style.BLIND_SPOT_MARK}


def competency_rows(body: dict[str, Any], level: str | None) -> list[dict[str, Any]]:
    """One row per competency expected at `level`: actual vs required, grouped by area."""
    competencies = {c["key"]: c for c in body["competencies"]}
    explained = next((lv for lv in body["explanation"]["levels"] if lv["level"] == level), None)
    rows = []
    for weight in explained["weights"] if explained else []:
        comp = competencies.get(weight["competency"], {})
        actual = weight["actual"]
        marks = []
        if weight["critical"]:
            marks.append("critical")
        if comp.get("blind_spot"):
            marks.append("blind spot")
        name = comp.get("name", weight["competency"])
        rows.append(
            {
                "competency": weight["competency"],
                "name": name,
                # Marks lead the label, so a long name cut short never hides them.
                "label": "".join(f"{_MARKS[m]} " for m in marks) + style.short_label(name),
                "area": weight["area"],
                "actual": actual,
                "actual_drawn": 0.0 if actual is None else actual,
                "required": weight["required"],
                "critical": weight["critical"],
                "blind_spot": bool(comp.get("blind_spot")),
                "status": _status(actual, weight["required"]),
                "aria": f"{name}: actual {_number(actual)}, required {weight['required']}"
                + ("".join(f", {m}" for m in marks)),
            }
        )
    rows.sort(key=lambda r: (r["area"], r["name"]))
    return rows


def _status(actual: float | None, required: int) -> str:
    if actual is None:
        return "unrated"
    return "meets the requirement" if actual >= required else "below the requirement"


def build_score(body: dict[str, Any], level: str | None = None) -> dict[str, Any]:
    """Actual vs required per competency for a level, by area; readiness per level of the track."""
    target = score_level(body, level)
    rows = competency_rows(body, target)
    names = {lv["level"]: lv["name"] for lv in body["levels"]}
    target_name = names.get(target or "", target or "no level")
    threshold = body["explanation"]["settings"]["readiness_threshold"]
    path = body["explanation"]["path"] or [lv["level"] for lv in body["levels"]]
    by_key = {lv["level"]: lv for lv in body["levels"]}
    levels = [
        {
            "level": by_key[key]["level"],
            "name": style.short_label(by_key[key]["name"]),
            "order": i,
            "readiness": by_key[key]["readiness"],
            "meets": "met" if by_key[key]["meets"] else "not met",
            "aria": f"{by_key[key]['name']}: readiness {_percent(by_key[key]['readiness'])}, "
            + ("met" if by_key[key]["meets"] else "not met"),
        }
        for i, key in enumerate(path)
        if key in by_key
    ]
    attained = body.get("attained_level")
    below = sum(1 for r in rows if r["status"] != "meets the requirement")
    spec = style.base_spec(
        title=f"{_who(body)}: competencies against {target_name}",
        subtitle=f"{style.framework_text(body)} · as of {style.moment_text(body.get('as_of'))} · "
        f"level index {body['level_index']:.2f} · {style.CRITICAL_MARK} critical · "
        f"{style.BLIND_SPOT_MARK} blind spot",
        description=(
            f"Bars show {_who(body)}'s proficiency in each of {len(rows)} competencies expected "
            f"at {target_name}, ticks the required proficiency; {below} are below or unrated. "
            f"Below, readiness for each level of the track against the {threshold:.0%} "
            f"threshold; attained level: {attained['name'] if attained else 'none'}."
        ),
    )
    spec["vconcat"] = [_competency_panel(rows, target_name), _readiness_panel(levels, threshold)]
    spec["resolve"] = {"scale": {"color": "independent"}}
    return style.unmeasured_labels(spec)


def _competency_panel(rows: list[dict[str, Any]], target_name: str) -> dict[str, Any]:
    scale_max = max([5.0, *(r["actual_drawn"] for r in rows), *(r["required"] for r in rows)])
    y = {
        "field": "label",
        "type": "nominal",
        "title": None,
        "sort": [r["label"] for r in rows],
    }
    status_colors = {
        "meets the requirement": style.MET_COLOR,
        "below the requirement": style.SHORTFALL_COLOR,
        "unrated": style.OKABE_ITO["black"],
    }
    return {
        "data": {"values": rows},
        "facet": {
            "row": {
                "field": "area",
                "type": "nominal",
                "title": None,
                "header": {"labelAngle": 0, "labelAlign": "left", "labelFontWeight": "bold"},
            }
        },
        "resolve": {"scale": {"y": "independent"}},
        "spec": {
            "width": PANEL_WIDTH_PX,
            "height": {"step": style.BAND_STEP_PX},
            "encoding": {"y": y},
            "layer": [
                {
                    "mark": {"type": "bar", "height": {"band": 0.6}},
                    "encoding": {
                        "x": {
                            "field": "actual_drawn",
                            "type": "quantitative",
                            "title": f"Proficiency (bar: actual; tick: required for {target_name})",
                            "scale": {"domain": [0, scale_max]},
                        },
                        "color": {
                            "field": "status",
                            "type": "nominal",
                            "title": "Actual",
                            "scale": {
                                "domain": list(status_colors),
                                "range": list(status_colors.values()),
                            },
                        },
                        "description": {"field": "aria"},
                        "tooltip": [
                            {"field": "name", "title": "Competency"},
                            {"field": "actual", "title": "Actual", "format": ".2f"},
                            {"field": "required", "title": "Required"},
                            {"field": "critical", "title": "Critical"},
                            {"field": "blind_spot", "title": "Blind spot"},
                        ],
                    },
                },
                {
                    "mark": {"type": "tick", "thickness": 3, "color": style.THRESHOLD_COLOR},
                    "encoding": {
                        "x": {"field": "required", "type": "quantitative"},
                        "description": {"value": None},
                    },
                },
            ],
        },
    }


def _readiness_panel(levels: list[dict[str, Any]], threshold: float) -> dict[str, Any]:
    order = [lv["name"] for lv in levels]
    return {
        "width": PANEL_WIDTH_PX,
        "height": {"step": style.BAND_STEP_PX},
        "layer": [
            {
                "data": {"values": levels},
                "mark": {"type": "bar", "height": {"band": 0.7}},
                "encoding": {
                    "y": {"field": "name", "type": "nominal", "sort": order, "title": None},
                    "x": {
                        "field": "readiness",
                        "type": "quantitative",
                        "title": "Readiness per level of the track (dashed: threshold)",
                        "axis": {"format": ".0%"},
                        "scale": {"domain": [0, 1]},
                    },
                    "color": {
                        "field": "meets",
                        "type": "nominal",
                        "title": "Level",
                        "scale": {
                            "domain": ["met", "not met"],
                            "range": [style.MET_COLOR, style.REQUIRED_COLOR],
                        },
                    },
                    "description": {"field": "aria"},
                    "tooltip": [
                        {"field": "name", "title": "Level"},
                        {"field": "readiness", "title": "Readiness", "format": ".1%"},
                        {"field": "meets", "title": "Met"},
                    ],
                },
            },
            _threshold_rule(threshold, "x"),
        ],
    }


def _threshold_rule(threshold: float, channel: str) -> dict[str, Any]:
    return {
        "data": {"values": [{"threshold": threshold}]},
        "mark": {"type": "rule", "strokeDash": [4, 3], "color": style.THRESHOLD_COLOR},
        "encoding": {
            channel: {"field": "threshold", "type": "quantitative"},
            "description": {"value": f"Readiness threshold {threshold:.0%}"},
        },
    }


def _target_name(body: dict[str, Any]) -> str:
    target = body.get("target_level")
    return str(target["name"]) if target else "no level"


def build_gaps(body: dict[str, Any]) -> dict[str, Any]:
    """Readiness points lost per competency toward the target, largest first; they add up to
    the shortfall 1 − readiness."""
    target_name = _target_name(body)
    status_colors = {
        "critical gap": style.SHORTFALL_COLOR,
        "gap": style.REQUIRED_COLOR,
        "met": style.MET_COLOR,
        "exceeds": style.ACTUAL_COLOR,
    }
    rows = [
        {
            "competency": item["competency"],
            "name": (f"{style.CRITICAL_MARK} " if item["critical"] else "")
            + style.short_label(item["name"]),
            "area": item["area"],
            "points_lost": item["readiness_points_lost"],
            "required": item["required"],
            "actual": item["actual"],
            "status": item["status"],
            "status_label": item["status"].replace("_", " "),
            "aria": f"{item['name']}: {item['readiness_points_lost'] * 100:.1f} readiness points "
            f"lost, actual {_number(item['actual'])}, required {item['required']}, "
            f"{item['status'].replace('_', ' ')}",
        }
        for item in sorted(
            body["items"], key=lambda i: (-i["readiness_points_lost"], i["competency"])
        )
    ]
    shortfall = sum(r["points_lost"] for r in rows)
    readiness = body.get("readiness")
    spec = style.base_spec(
        title=f"{_who(body)}: what readiness for {target_name} is missing",
        subtitle=f"{style.framework_text(body)} · readiness {_percent(readiness)} · the bars add up to "
        f"the shortfall of {shortfall * 100:.1f} points · {style.CRITICAL_MARK} critical",
        description=(
            f"Readiness points each of {len(rows)} competencies costs {_who(body)} toward "
            f"{target_name}, largest first; together they make the shortfall of "
            f"{shortfall * 100:.1f} points (readiness {_percent(readiness)}). "
            f"{body['gap_count']} gaps, {body['critical_gap_count']} critical."
        ),
    )
    spec.update(
        {
            "data": {"values": rows},
            "width": PANEL_WIDTH_PX,
            "height": {"step": style.BAND_STEP_PX},
            "mark": {"type": "bar"},
            "encoding": {
                "y": {
                    "field": "name",
                    "type": "nominal",
                    "title": None,
                    "sort": [r["name"] for r in rows],
                },
                "x": {
                    "field": "points_lost",
                    "type": "quantitative",
                    "title": f"Readiness points lost toward {target_name}",
                    "axis": {"format": ".1%"},
                },
                "color": {
                    "field": "status_label",
                    "type": "nominal",
                    "title": "Status",
                    "scale": {
                        "domain": list(status_colors),
                        "range": list(status_colors.values()),
                    },
                },
                "description": {"field": "aria"},
                "tooltip": [
                    {"field": "name", "title": "Competency"},
                    {"field": "points_lost", "title": "Points lost", "format": ".1%"},
                    {"field": "actual", "title": "Actual", "format": ".2f"},
                    {"field": "required", "title": "Required"},
                    {"field": "status_label", "title": "Status"},
                ],
            },
        }
    )
    return style.unmeasured_labels(spec)


def build_recommendations(body: dict[str, Any], threshold: float) -> dict[str, Any]:
    """Projected readiness after each step of the plan against cumulative hours, with the
    readiness threshold."""
    target_name = _target_name(body)
    start = {
        "step": 0,
        "title": "Today",
        "hours": 0.0,
        "readiness": body["readiness_now"],
        "aria": f"Today: readiness {_percent(body['readiness_now'])}",
    }
    steps = [
        {
            "step": i,
            "title": step["title"],
            "hours": step["cumulative_hours"],
            "readiness": step["readiness_after"],
            "aria": f"Step {i}, {step['title']}: readiness {_percent(step['readiness_after'])} "
            f"after {step['cumulative_hours']:g} hours",
        }
        for i, step in enumerate(body["steps"], start=1)
    ]
    points = [start, *steps] if body["readiness_now"] is not None else steps
    spec = style.base_spec(
        title=f"{_who(body)}: development plan toward {target_name}",
        subtitle=f"{style.framework_text(body)} · {len(steps)} steps, {body['total_hours']:g} hours · "
        f"projected readiness {_percent(body['projected_readiness'])} · {body['stop_reason']}",
        description=(
            f"Projected readiness for {target_name} after each of {len(steps)} recommended "
            f"steps against the cumulative effort in hours, from {_percent(body['readiness_now'])} "
            f"today to {_percent(body['projected_readiness'])} after {body['total_hours']:g} "
            f"hours; the dashed line is the {threshold:.0%} readiness threshold."
        ),
    )
    x = {"field": "hours", "type": "quantitative", "title": "Cumulative effort (hours)"}
    # From a tenth below the lowest of the readiness values and the threshold, up to 100%.
    low = min([threshold, *(p["readiness"] for p in points)])
    y = {
        "field": "readiness",
        "type": "quantitative",
        "title": f"Readiness for {target_name}",
        "axis": {"format": ".0%"},
        "scale": {"domain": [max(0.0, math.floor(low * 10 - 1) / 10), 1]},
    }
    spec.update(
        {
            **style.tile_size(),
            "layer": [
                {
                    "data": {"values": points},
                    "mark": {"type": "line", "color": style.ACTUAL_COLOR, "aria": False},
                    "encoding": {"x": x, "y": y, "order": {"field": "step"}},
                },
                {
                    "data": {"values": points},
                    "mark": {"type": "point", "filled": True, "size": 60},
                    "encoding": {
                        "x": x,
                        "y": y,
                        "color": {"value": style.ACTUAL_COLOR},
                        "description": {"field": "aria"},
                        "tooltip": [
                            {"field": "step", "title": "Step"},
                            {"field": "title", "title": "Activity"},
                            {"field": "hours", "title": "Cumulative hours"},
                            {"field": "readiness", "title": "Readiness", "format": ".1%"},
                        ],
                    },
                },
                _threshold_rule(threshold, "y"),
            ],
        }
    )
    return spec


def build_history(body: dict[str, Any]) -> dict[str, Any]:
    """The level index at each assessment date, with its velocity per 90 days."""
    points = [
        {
            "as_of": point["as_of"],
            "level_index": point["level_index"],
            "attained": point["attained_level"]["name"] if point["attained_level"] else "none",
            "aria": f"{style.moment_text(point['as_of'])}: level index {point['level_index']:.2f}",
        }
        for point in body["points"]
    ]
    velocity = body.get("velocity_per_90_days")
    pace = "n/a (fewer than 2 dates)" if velocity is None else f"{velocity:+.2f}"
    last = points[-1]["as_of"] if points else None
    spec = style.base_spec(
        title=f"{_who(body)}: level index over time",
        subtitle=f"{style.framework_text(body)} · {len(points)} assessment dates up to {style.moment_text(last)} · "
        f"velocity {pace} {LEVEL_INDEX_PER_90_DAYS}",
        description=(
            f"{_who(body)}'s level index (attained level's rank plus readiness for the next) "
            f"at each of {len(points)} assessment dates; velocity {pace} "
            f"{LEVEL_INDEX_PER_90_DAYS}."
        ),
    )
    x = {
        "field": "as_of",
        "type": "temporal",
        "title": "Assessment date",
        # One tick per assessment date (epoch milliseconds), not the scale's hours or weeks.
        "axis": {
            "format": "%Y-%m-%d",
            "labelAngle": -30,
            "values": [
                datetime.fromisoformat(p["as_of"]).timestamp() * 1000 for p in body["points"]
            ],
        },
    }
    # Whole levels: the integer part of the level index is the attained level's rank.
    indexes = [p["level_index"] for p in points] or [0.0]
    y = {
        "field": "level_index",
        "type": "quantitative",
        "title": "Level index",
        "scale": {"domain": [math.floor(min(indexes)), math.floor(max(indexes)) + 1]},
    }
    spec.update(
        {
            **style.tile_size(),
            "data": {"values": points},
            "layer": [
                {
                    "mark": {"type": "line", "color": style.ACTUAL_COLOR, "aria": False},
                    "encoding": {"x": x, "y": y},
                },
                {
                    # The least-squares line whose slope is the reported velocity.
                    "transform": [{"regression": "level_index", "on": "as_of"}],
                    "mark": {
                        "type": "line",
                        "strokeDash": [4, 3],
                        "color": style.REQUIRED_COLOR,
                        "aria": False,
                    },
                    "encoding": {"x": x, "y": y},
                },
                {
                    "mark": {"type": "point", "filled": True, "size": 60},
                    "encoding": {
                        "x": x,
                        "y": y,
                        "color": {"value": style.ACTUAL_COLOR},
                        "description": {"field": "aria"},
                        "tooltip": [
                            {"field": "as_of", "title": "As of", "type": "temporal"},
                            {"field": "level_index", "title": "Level index", "format": ".2f"},
                            {"field": "attained", "title": "Attained level"},
                        ],
                    },
                },
            ],
        }
    )
    return spec
