"""Choosing a representation from Accept: q-values, wildcards, and what is refused."""

import pytest

from app.charts.negotiate import (
    CHART_TYPES,
    JSON,
    PNG,
    SVG,
    VEGA_LITE,
    choose,
    json_if_none_match,
    representation_etag,
)


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        (None, JSON),
        ("", JSON),
        ("*/*", JSON),
        ("application/json", JSON),
        ("application/*", JSON),
        ("image/*", SVG),
        (VEGA_LITE, VEGA_LITE),
        ("image/svg+xml", SVG),
        ("IMAGE/PNG", PNG),
        ("image/png;q=0.4, image/svg+xml;q=0.5", SVG),
        ("application/json;q=0.5, image/png", PNG),
        ("image/*;q=0.9, image/svg+xml;q=0", PNG),
        ("*/*;q=0.1, image/png;q=0.2", PNG),
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", JSON),
        ("nonsense", JSON),  # nothing parseable: as if absent
        ("image/png;q=abc, image/svg+xml", SVG),  # a range with a broken q is skipped
    ],
)
def test_choice_honours_q_values_and_specificity(accept: str | None, chosen: str) -> None:
    assert choose(accept, CHART_TYPES) == chosen


@pytest.mark.parametrize(
    "accept",
    ["text/csv", "application/problem+json", "image/*;q=0, application/json;q=0", "*/*;q=0"],
)
def test_nothing_acceptable(accept: str) -> None:
    assert choose(accept, CHART_TYPES) is None


def test_each_representation_has_its_own_etag() -> None:
    etag = 'W/"abc"'
    tags = {media: representation_etag(etag, media) for media in CHART_TYPES}
    assert tags[JSON] == etag
    assert len(set(tags.values())) == len(CHART_TYPES)
    svg_tag = tags[SVG]
    # The JSON read sees the SVG's tag as the JSON's own, and nothing of other representations.
    assert json_if_none_match(f"{svg_tag}, {tags[PNG]}", SVG) == etag
    assert json_if_none_match(etag, SVG) is None
    assert json_if_none_match(svg_tag, PNG) is None
    assert json_if_none_match("*", SVG) == "*"
    assert json_if_none_match(svg_tag, JSON) == svg_tag
