"""Shared look of every chart: a colour-blind-safe palette, tile sizes and the Vega-Lite config."""

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

VEGA_LITE_SCHEMA: Final = "https://vega.github.io/schema/vega-lite/v5.json"

# Okabe & Ito (2008), "Color Universal Design": distinguishable under the common colour-vision
# deficiencies. Named by role so every chart means the same thing by the same colour.
OKABE_ITO: Final[dict[str, str]] = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
}
CATEGORY_RANGE: Final[list[str]] = [
    OKABE_ITO["blue"],
    OKABE_ITO["orange"],
    OKABE_ITO["bluish_green"],
    OKABE_ITO["vermillion"],
    OKABE_ITO["sky_blue"],
    OKABE_ITO["reddish_purple"],
    OKABE_ITO["yellow"],
    OKABE_ITO["black"],
]
ACTUAL_COLOR: Final = OKABE_ITO["blue"]
REQUIRED_COLOR: Final = OKABE_ITO["orange"]
SHORTFALL_COLOR: Final = OKABE_ITO["vermillion"]
MET_COLOR: Final = OKABE_ITO["bluish_green"]
THRESHOLD_COLOR: Final = OKABE_ITO["black"]
# Diverging scale for "actual minus required" (below requirement → vermillion, above → blue),
# light grey at zero; both ends stay apart for deuteranopes and protanopes.
DIVERGING_RANGE: Final[list[str]] = [OKABE_ITO["vermillion"], "#F7F7F7", OKABE_ITO["blue"]]

# The generic family: vl-convert measures text by it at once (a named family costs a font lookup
# per label, ~10x the time), and every viewer maps it to its own sans-serif face.
FONT: Final = "sans-serif"
# The marks that lead a competency's label. vl-convert draws PNGs with the font it bundles
# (Liberation Sans), which has these two; ◆ and ◐ it lacks, and they came out as empty boxes
# where no other font is installed (the container image) and in another face where one is.
CRITICAL_MARK: Final = "♦"
BLIND_SPOT_MARK: Final = "○"

# A dashboard tile: wide enough for ~30 labelled bars, short enough to sit beside another tile.
TILE_WIDTH_PX: Final = 560
TILE_HEIGHT_PX: Final = 320
BAND_STEP_PX: Final = 16


def tile_size(*, rows: int | None = None) -> dict[str, Any]:
    """Width and height of a tile; with `rows`, a height that gives each row a readable band."""
    if rows is None:
        return {"width": TILE_WIDTH_PX, "height": TILE_HEIGHT_PX}
    return {"width": TILE_WIDTH_PX, "height": {"step": BAND_STEP_PX}}


def base_config() -> dict[str, Any]:
    """The Vega-Lite `config` every chart shares: font, palette, readable axes and legends."""
    return {
        "font": FONT,
        "background": "#FFFFFF",
        "padding": 8,
        "view": {"stroke": None},
        "range": {"category": CATEGORY_RANGE, "diverging": DIVERGING_RANGE},
        "title": {"fontSize": 14, "anchor": "start", "subtitleFontSize": 11},
        "axis": {"labelFontSize": 11, "titleFontSize": 12, "labelLimit": 240},
        "legend": {"labelFontSize": 11, "titleFontSize": 12, "orient": "bottom"},
    }


def base_spec(*, title: str, subtitle: str | None, description: str) -> dict[str, Any]:
    """The top of every spec: schema, title (what and as of when), description, config."""
    title_block: dict[str, Any] = {"text": title}
    if subtitle:
        title_block["subtitle"] = subtitle
    return {
        "$schema": VEGA_LITE_SCHEMA,
        "title": title_block,
        "description": description,
        "config": base_config(),
    }


# Labels the builders shorten themselves, so Vega need not measure and cut them: its truncation
# measures each long label over and over, a third of a bar chart's rendering time.
LABEL_CHARS: Final = 42


def short_label(text: str, limit: int = LABEL_CHARS) -> str:
    """The text cut to `limit` characters with an ellipsis (whole when it fits)."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def unmeasured_labels(spec: dict[str, Any]) -> dict[str, Any]:
    """The spec with Vega's label truncation off (for labels already cut by `short_label`)."""
    config = spec["config"]
    config["axis"] = {**config["axis"], "labelLimit": 0}
    config["legend"] = {**config["legend"], "labelLimit": 0}
    return spec


def moment_text(value: str | None) -> str:
    """An ISO timestamp of an answer as a subtitle says it: UTC, to the minute ("now" if absent).

    A request may give a moment with an offset, and the answer repeats it: it is converted, not
    relabelled.
    """
    if not value:
        return "now"
    when = datetime.fromisoformat(value)
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    return f"{when:%Y-%m-%d %H:%M} UTC"


def framework_text(body: Mapping[str, Any]) -> str:
    """The answer's framework as "key vN" (the version left out when the answer has none)."""
    fw = body.get("framework") or {}
    version = fw.get("version")
    return f"{fw.get('key')}" + (f" v{version}" if version is not None else "")
