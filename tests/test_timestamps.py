"""Timestamps: the OpenAPI document refuses exactly the moments the request models refuse.

The database keeps UTC, so a moment whose UTC time falls outside the years 1 to 9999 cannot be
stored (0001-01-01T00:00:00+08:00 is in year 0 in UTC). The models refuse those; a client
validating against the document must be told the same, or it sends them and is surprised.
"""

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from app.config import PROJECT_ROOT
from app.schemas import STORABLE_MOMENT, Timestamp

OPENAPI_FILE = PROJECT_ROOT / "openapi" / "openapi.json"
TIMESTAMP = TypeAdapter(Timestamp)

SAMPLES = [
    "2026-11-30T12:00:00Z",
    "2026-11-30t12:00:00.123456+05:30",
    "0001-01-01T00:00:00Z",
    "0001-01-01T00:00:00+00:00",
    "0001-01-01T00:00:00-00:00",
    "0001-01-01T23:59:59-08:00",
    "0001-01-01T00:00:00+08:00",  # year 0 in UTC
    "0001-01-01T00:00:00.5+00:01",
    "0001-01-02T00:00:00+14:00",
    "9999-12-31T23:59:59Z",
    "9999-12-31T00:00:00+08:00",
    "9999-12-31T23:00:00-02:00",  # year 10000 in UTC
    "9999-12-31T00:00:00.25-00:30",
    "9999-12-30T23:00:00-14:00",
]


def _date_time_schemas(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if node.get("format") == "date-time":
            yield node
        for value in node.values():
            yield from _date_time_schemas(value)
    elif isinstance(node, list):
        for value in node:
            yield from _date_time_schemas(value)


def _model_accepts(text: str) -> bool:
    try:
        TIMESTAMP.validate_python(text)
    except ValidationError:
        return False
    return True


def _inputs(document: dict[str, Any]) -> list[Any]:
    """What callers send: every parameter and request body, with the components they use."""
    found: list[Any] = []
    for item in document["paths"].values():
        for operation in item.values():
            if isinstance(operation, dict):
                found.extend(operation.get("parameters", []))
                found.append(operation.get("requestBody", {}))
    components = document["components"]["schemas"]
    seen: set[str] = set()
    todo = list(found)
    while todo:
        node = todo.pop()
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            name = ref.rsplit("/", 1)[-1]
            if ref.startswith("#/components/schemas/") and name not in seen:
                seen.add(name)
                found.append(components[name])
                todo.append(components[name])
            todo.extend(node.values())
        elif isinstance(node, list):
            todo.extend(node)
    return found


def test_every_date_time_a_caller_sends_states_the_storable_range() -> None:
    schemas = list(_date_time_schemas(_inputs(json.loads(OPENAPI_FILE.read_text()))))
    assert len(schemas) > 10
    assert all(s.get("pattern") == STORABLE_MOMENT for s in schemas), [
        s for s in schemas if s.get("pattern") != STORABLE_MOMENT
    ]


@pytest.mark.parametrize("text", SAMPLES)
def test_the_document_and_the_models_agree(text: str) -> None:
    assert bool(re.search(STORABLE_MOMENT, text)) == _model_accepts(text)


def test_moments_outside_the_storable_years_are_refused() -> None:
    assert not _model_accepts("0001-01-01T00:00:00+08:00")
    assert not _model_accepts("9999-12-31T23:00:00-02:00")
    assert _model_accepts("0001-01-01T00:00:00Z")
    assert _model_accepts("9999-12-31T23:59:59Z")
