"""Charts of rater effects (`POST /v1/calibration/rater-effects`), built from its JSON body.

Two pictures, one per request (``chart``):

- ``distributions``: small multiples of each rater's ratings per scale value (their share),
  beside the whole cohort's in the first panel and as a tick in every panel. At most
  `RATER_PANEL_CAP` raters: those with the largest effects first, then those with most ratings.
- ``effects``: each measured rater's effect (points above their group's average rater) with its
  interval effect ± z·standard error, the flag thresholds ± effect_points as dashed rules. At most
  `RATER_ROW_CAP` raters, largest effects first.
"""

from typing import Any, Final, Literal

from app.charts import style

Chart = Literal["distributions", "effects"]
CHARTS: Final[tuple[Chart, ...]] = ("distributions", "effects")

RATER_PANEL_CAP: Final = 15
RATER_ROW_CAP: Final = 40
COHORT_PANEL: Final = "whole cohort"
PANEL_COLUMNS: Final = 4
PANEL_WIDTH_PX: Final = 100
PANEL_HEIGHT_PX: Final = 70


def build(body: dict[str, Any], *, chart: Chart = "distributions") -> dict[str, Any]:
    """The Vega-Lite spec of one rater-effects chart."""
    if chart == "effects":
        return effects(body)
    return distributions(body)


def rater_label(rater: dict[str, Any]) -> str:
    """A rater as the answer identifies one: the pair (role, rater_ref)."""
    return f"{rater['rater_ref']} ({rater['role']})"


def _subtitle(body: dict[str, Any]) -> str:
    fw = body["framework"]
    return (
        f"{fw['key']} v{fw['version']}, ratings of the {body['window_days']} days "
        f"up to {style.moment_text(body['as_of'])}"
    )


def _by_effect_size(rater: dict[str, Any]) -> tuple[float, int, str]:
    effect = rater["effect"]
    return (-abs(effect) if effect is not None else 0.0, -rater["ratings"], rater_label(rater))


def distributions(body: dict[str, Any]) -> dict[str, Any]:
    """Each rater's share of ratings per scale value, beside the cohort's."""
    scale: list[float] = body["scale"]
    cohort: list[int] = body["cohort_distribution"]
    raters = sorted(body["raters"], key=_by_effect_size)
    shown = raters[:RATER_PANEL_CAP]
    cohort_total = sum(cohort)
    cohort_share = [n / cohort_total if cohort_total else 0.0 for n in cohort]
    panels = [(COHORT_PANEL, cohort), *((rater_label(r), r["distribution"]) for r in shown)]
    rows = []
    for panel, counts in panels:
        total = sum(counts)
        rows += [
            {
                "panel": panel,
                "value": f"{value:g}",
                "ratings": n,
                "share": n / total if total else 0.0,
                "cohort_share": cohort_share[i],
            }
            for i, (value, n) in enumerate(zip(scale, counts, strict=True))
        ]
    more = (
        f" ({len(shown)} of {len(raters)} raters, largest effects first)"
        if raters[RATER_PANEL_CAP:]
        else ""
    )
    spec = style.base_spec(
        title=f"Ratings per scale value: each rater beside the cohort{more}",
        subtitle=_subtitle(body),
        description=(
            f"Small multiples of the share of each rater's latest ratings at each scale value, "
            f"{len(shown)} raters after the whole cohort's {cohort_total} ratings; the black tick "
            "in every panel marks the cohort's share, so a rater who rates higher or lower, or "
            "more in the middle, than everyone else stands out."
        ),
    )
    value_axis = {
        "field": "value",
        "type": "ordinal",
        "sort": [f"{v:g}" for v in scale],
        "title": "Rating",
        "axis": {"labelAngle": 0},
    }
    share_axis = {
        "field": "share",
        "type": "quantitative",
        "title": "Share of ratings",
        "axis": {"format": "%", "tickCount": 3},
        "scale": {"domain": [0, 1]},
    }
    tooltip = [
        {"field": "panel", "type": "nominal", "title": "Rater"},
        {"field": "value", "type": "ordinal", "title": "Rating"},
        {"field": "ratings", "type": "quantitative", "title": "Ratings"},
        {"field": "share", "type": "quantitative", "title": "Share", "format": ".1%"},
        {"field": "cohort_share", "type": "quantitative", "title": "Cohort's", "format": ".1%"},
    ]
    spec["data"] = {"values": rows}
    spec["columns"] = PANEL_COLUMNS
    spec["facet"] = {
        "field": "panel",
        "type": "nominal",
        "sort": [p for p, _ in panels],
        "title": None,
        "header": {"labelFontSize": 11, "labelLimit": PANEL_WIDTH_PX + 20},
    }
    spec["spec"] = {
        "width": PANEL_WIDTH_PX,
        "height": PANEL_HEIGHT_PX,
        "layer": [
            {
                "mark": {"type": "bar", "tooltip": True},
                "encoding": {
                    "x": value_axis,
                    "y": share_axis,
                    "color": {
                        "condition": {
                            "test": f"datum.panel === '{COHORT_PANEL}'",
                            "value": style.REQUIRED_COLOR,
                        },
                        "value": style.ACTUAL_COLOR,
                    },
                    "tooltip": tooltip,
                },
            },
            {
                "mark": {"type": "tick", "color": style.THRESHOLD_COLOR, "thickness": 2},
                "encoding": {
                    "x": value_axis,
                    "y": {
                        "field": "cohort_share",
                        "type": "quantitative",
                        "title": "Cohort's share",
                    },
                },
            },
        ],
    }
    return spec


def effects(body: dict[str, Any]) -> dict[str, Any]:
    """Each measured rater's effect with its interval, beside the flag thresholds."""
    thresholds = body["thresholds"]
    z, limit = float(thresholds["z"]), float(thresholds["effect_points"])
    measured = [r for r in body["raters"] if r["effect"] is not None]
    measured.sort(key=_by_effect_size)
    shown = measured[:RATER_ROW_CAP]
    rows = [
        {
            "rater": rater_label(r),
            "group": r["group"],
            "effect": r["effect"],
            "low": r["effect"] - z * (r["standard_error"] or 0.0),
            "high": r["effect"] + z * (r["standard_error"] or 0.0),
            "standard_error": r["standard_error"],
            "flag": next(
                (f["kind"] for f in r["flags"] if f["kind"] in ("lenient", "severe")), "neither"
            ),
        }
        for r in shown
    ]
    order = [row["rater"] for row in sorted(rows, key=lambda row: -row["effect"])]
    more = (
        f", {len(shown)} of {len(measured)} with the largest effects"
        if measured[RATER_ROW_CAP:]
        else ""
    )
    spec = style.base_spec(
        title=f"Rater effects with their {z:g}·SE intervals{more}",
        subtitle=_subtitle(body),
        description=(
            f"Dot per rater with enough evidence ({len(measured)}): points above their group's "
            f"average rater (positive lenient, negative severe), a line for effect ± {z:g} "
            f"standard errors, dashed rules at ± {limit:g} points, beyond which an interval "
            "clear of them is flagged."
        ),
    )
    spec.update(style.tile_size(rows=len(shown)))
    spec["data"] = {"values": rows}
    y = {"field": "rater", "type": "nominal", "sort": order, "title": "Rater (role)"}
    x_title = "Effect (points above the group's average rater)"
    color = {
        "field": "flag",
        "type": "nominal",
        "title": "Flag",
        "scale": {
            "domain": ["severe", "neither", "lenient"],
            "range": [style.SHORTFALL_COLOR, style.OKABE_ITO["black"], style.ACTUAL_COLOR],
        },
    }
    spec["layer"] = [
        {
            "mark": {"type": "rule", "strokeWidth": 2},
            "encoding": {
                "y": y,
                "x": {
                    "field": "low",
                    "type": "quantitative",
                    "title": "Interval from",
                    "axis": {"title": x_title},
                },
                "x2": {"field": "high", "title": "to"},
                "color": color,
            },
        },
        {
            "mark": {"type": "point", "filled": True, "size": 50, "tooltip": True},
            "encoding": {
                "y": y,
                "x": {
                    "field": "effect",
                    "type": "quantitative",
                    "title": "Effect",
                    "axis": {"title": x_title},
                },
                "color": color,
                "tooltip": [
                    {"field": "rater", "type": "nominal", "title": "Rater"},
                    {"field": "group", "type": "quantitative", "title": "Group"},
                    {
                        "field": "effect",
                        "type": "quantitative",
                        "title": "Effect",
                        "format": "+.2f",
                    },
                    {
                        "field": "standard_error",
                        "type": "quantitative",
                        "title": "SE",
                        "format": ".2f",
                    },
                    {"field": "flag", "type": "nominal", "title": "Flag"},
                ],
            },
        },
        {
            "data": {"values": [{"at": -limit}, {"at": 0.0}, {"at": limit}]},
            "mark": {"type": "rule", "color": style.THRESHOLD_COLOR},
            "encoding": {
                "x": {
                    "field": "at",
                    "type": "quantitative",
                    "title": "Rule at",
                    "axis": {"title": x_title},
                },
                "strokeDash": {
                    "condition": {"test": "datum.at === 0", "value": [1, 0]},
                    "value": [4, 3],
                },
            },
        },
    ]
    return spec
