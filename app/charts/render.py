"""Vega-Lite specifications rendered to SVG or PNG in-process: vl-convert, no browser, no network.

vl-convert runs Vega in an embedded JavaScript engine. `allowed_base_urls=[]` refuses every
external data URL, so a spec (ours inline their data) can never make the service fetch anything;
text is drawn with the machine's installed fonts, which are read from disk, never downloaded.
One converter serves the process behind vl-convert's own lock, so calls from threads are safe
(they queue); the routes call `render` through a worker thread so the event loop never waits.
"""

import hashlib
import json
from typing import Any, Final, Literal
from xml.sax.saxutils import escape, quoteattr

import vl_convert

VEGA_LITE_VERSION: Final = "5.20"
# PNG at twice the tile's CSS pixels, sharp on high-density screens.
PNG_SCALE: Final = 2.0

ImageFormat = Literal["svg", "png"]


def title_text(spec: dict[str, Any]) -> str:
    """The spec's title (and subtitle) as one line of plain text."""
    title = spec.get("title")
    parts = [title.get("text"), title.get("subtitle")] if isinstance(title, dict) else [title]
    lines: list[str] = []
    for part in parts:
        if isinstance(part, list):
            lines.extend(str(p) for p in part)
        elif part:
            lines.append(str(part))
    return " — ".join(lines)


def accessible_svg(svg: str, spec: dict[str, Any]) -> str:
    """The SVG with `<title>`/`<desc>` from the spec, `role="img"` and `aria-labelledby`.

    Screen readers announce an SVG by these; the ids carry a digest of the text so two charts
    inlined in one page do not share ids.
    """
    title = title_text(spec)
    desc = str(spec.get("description") or "")
    # From the description only: the subtitle's moment may be filled in after rendering.
    digest = hashlib.blake2b(desc.encode(), digest_size=4).hexdigest()
    title_id, desc_id = f"chart-{digest}-title", f"chart-{digest}-desc"
    head_end = svg.index(">", svg.index("<svg")) + 1
    head = svg[:head_end]
    opening = head[:-1].rstrip("/")
    attributes = f' role="img" aria-labelledby={quoteattr(f"{title_id} {desc_id}")}'
    inner = (
        f"<title id={quoteattr(title_id)}>{escape(title)}</title>"
        f"<desc id={quoteattr(desc_id)}>{escape(desc)}</desc>"
    )
    return f"{opening}{attributes}>{inner}{svg[head_end:]}"


def to_svg(spec: dict[str, Any]) -> str:
    """The chart as an accessible SVG document."""
    svg = vl_convert.vegalite_to_svg(spec, vl_version=VEGA_LITE_VERSION, allowed_base_urls=[])
    return accessible_svg(svg, spec)


def to_png(spec: dict[str, Any]) -> bytes:
    """The chart as a PNG image."""
    png: bytes = vl_convert.vegalite_to_png(
        spec, vl_version=VEGA_LITE_VERSION, scale=PNG_SCALE, allowed_base_urls=[]
    )
    return png


def render(spec: dict[str, Any], image: ImageFormat) -> bytes:
    """The chart's bytes in the given image format."""
    if image == "svg":
        return to_svg(spec).encode()
    return to_png(spec)


def spec_bytes(spec: dict[str, Any]) -> bytes:
    """The specification as compact JSON."""
    return json.dumps(spec, ensure_ascii=False, separators=(",", ":")).encode()
