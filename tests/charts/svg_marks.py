"""Reading a rendered chart back: its marks with the values they show, and the spec's schema.

Vega labels each mark for screen readers with its encoded fields (`aria-label="Field: value;
…"`), so a test can check that a chart draws one mark per value and the value itself.
"""

import json
import xml.etree.ElementTree as ET
from functools import cache
from importlib.resources import files
from typing import Any

import jsonschema

SVG_NS = "{http://www.w3.org/2000/svg}"


def parse(svg: str | bytes) -> ET.Element:
    """The SVG's element tree."""
    return ET.fromstring(svg)  # noqa: S314 - the service's own rendering, in a test


@cache
def vega_lite_validator() -> jsonschema.protocols.Validator:
    """A validator for the Vega-Lite v5 schema that altair bundles (no network)."""
    path = files("altair") / "vegalite" / "v5" / "schema" / "vega-lite-schema.json"
    schema = json.loads(path.read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema)


def assert_valid_spec(spec: dict[str, Any]) -> None:
    """The spec is a Vega-Lite v5 specification (every error listed if not)."""
    errors = [e.message for e in vega_lite_validator().iter_errors(spec)]
    assert not errors, errors[:5]


def marks(svg: str | bytes, role: str) -> list[dict[str, str]]:
    """Every mark of one kind (`aria-roledescription`, e.g. "rect mark", "bar", "point"), as
    its label's fields."""
    root = parse(svg)
    found = []
    for element in root.iter():
        if element.get("aria-roledescription") == role and element.get("role") == "graphics-symbol":
            label = element.get("aria-label", "")
            fields = (part.split(": ", 1) for part in label.split("; ") if ": " in part)
            found.append({name: value for name, value in fields})
    return found


def number(text: str) -> float:
    """A number as Vega prints it (a Unicode minus, thousands separators)."""
    return float(text.replace("\u2212", "-").replace(",", ""))


def title_and_desc(svg: str | bytes) -> tuple[str, str]:
    """The SVG's `<title>` and `<desc>` (what a screen reader announces)."""
    root = parse(svg)
    title, desc = root.find(f"{SVG_NS}title"), root.find(f"{SVG_NS}desc")
    assert title is not None and desc is not None
    return title.text or "", desc.text or ""
