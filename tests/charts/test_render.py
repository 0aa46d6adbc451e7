"""The renderer: no network, accessible SVG, safe from threads."""

import ast
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from app.charts import render, style
from tests.charts.svg_marks import SVG_NS, parse, title_and_desc


def bar_chart(**data: Any) -> dict[str, Any]:
    spec = style.base_spec(
        title="Ratings & <things>", subtitle="as of today", description='Three "bars".'
    )
    spec.update(
        {
            "data": data
            or {"values": [{"k": "a", "v": 1}, {"k": "b", "v": 2}, {"k": "c", "v": 3}]},
            "mark": "bar",
            "encoding": {
                "x": {"field": "v", "type": "quantitative"},
                "y": {"field": "k", "type": "nominal"},
            },
        }
    )
    return spec


def test_external_data_is_refused_not_fetched() -> None:
    # Port 9 (discard) on loopback: were the URL fetched, it would fail differently or hang.
    spec = bar_chart(url="http://127.0.0.1:9/data.json")
    with pytest.raises(ValueError, match="External data url not allowed"):
        render.to_svg(spec)
    with pytest.raises(ValueError, match="External data url not allowed"):
        render.to_png(spec)


def test_svg_names_itself_for_screen_readers() -> None:
    svg = render.to_svg(bar_chart())
    root = parse(svg)
    title, desc = title_and_desc(svg)
    assert title == "Ratings & <things> — as of today"
    assert desc == 'Three "bars".'
    title_el, desc_el = root.find(f"{SVG_NS}title"), root.find(f"{SVG_NS}desc")
    assert title_el is not None and desc_el is not None
    assert root.get("role") == "img"
    assert root.get("aria-labelledby") == f"{title_el.get('id')} {desc_el.get('id')}"
    assert list(root)[:2] == [title_el, desc_el]  # first children, as SVG 2 asks


def test_png_is_a_png() -> None:
    assert render.to_png(bar_chart()).startswith(b"\x89PNG\r\n\x1a\n")


def test_renders_from_threads_alike() -> None:
    spec = bar_chart()
    alone = render.to_svg(spec)
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: render.to_svg(spec), range(12)))
    assert results == [alone] * 12


# Symbols outside ASCII that the font vl-convert bundles (Liberation Sans) draws itself: each
# was rendered to PNG with no font installed on the machine (as in the service's container
# image, python:3.11-slim), and drawn, not as an empty box. Others, such as ◆ (U+25C6) and
# ◐ (U+25D0), come out as empty boxes there, and where the machine has fonts the whole label is
# drawn in whichever font has them (a serif one here), unlike its neighbours.
BUNDLED_FONT_SYMBOLS = frozenset("♦○●•·±−—…")


def _chart_text_literals() -> Iterator[tuple[str, int, str]]:
    """Every string the chart modules write (docstrings aside), with its file and line."""
    for module in sorted(Path(render.__file__).parent.glob("*.py")):
        tree = ast.parse(module.read_text(), filename=str(module))
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            and node.body
            and isinstance(node.body[0], ast.Expr)
            and isinstance(node.body[0].value, ast.Constant)
        }
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and id(node) not in docstrings
            ):
                yield module.name, node.lineno, node.value


def test_the_service_writes_only_symbols_the_bundled_font_draws() -> None:
    strays = [
        (name, line, char)
        for name, line, text in _chart_text_literals()
        for char in text
        if not char.isascii() and char not in BUNDLED_FONT_SYMBOLS
    ]
    assert not strays, strays
