"""Constrained types the API models share, so the OpenAPI document says what validation does.

- Postgres cannot store U+0000 in text or jsonb: free text refuses it with a 422 (never a
  500 from the driver, never silently stripped).
- Timestamps are RFC 3339 strings with an offset, as ``format: date-time`` promises; pydantic
  would otherwise also take numbers and numeric strings as Unix times. Their UTC time must
  fall in the years 1 to 9999, since that is what the database stores; the document states
  the rule as a pattern.
- Maps keyed by a pattern are closed: pydantic documents the key pattern as
  ``patternProperties``, which on its own lets any other key through in JSON Schema.
"""

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BeforeValidator,
    GetJsonSchemaHandler,
    StringConstraints,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError

NUL_FREE = r"^[^\x00]*$"

# The key of a framework, level, track, competency or activity: lower-case letters, digits, "-"
# and "_", starting with a letter or digit, so it reads the same in a URL, a file and a chart.
KEY_PATTERN = r"^[a-z0-9][a-z0-9_\-]*$"
KEY_MAX_LENGTH = 64
KeyStr = Annotated[
    str, StringConstraints(min_length=1, max_length=KEY_MAX_LENGTH, pattern=KEY_PATTERN)
]

CLOSED_MAP: dict[str, Any] = {"additionalProperties": False}

_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


# Only a moment on the calendar's first day with a positive offset, or on its last day with a
# negative one, can fall outside the years 1 to 9999 in UTC. Those two days are refused whole
# with such offsets (a few hours of them would do): a rule a pattern can state exactly, so a
# client validating against the OpenAPI document refuses what the service refuses.
_EDGE_DAYS = r"0001-01-01[Tt][^+]*\+(?!00:00$)|9999-12-31[Tt][^-]*-(?!00:00$)"
STORABLE_MOMENT = rf"^(?!{_EDGE_DAYS})"
_OUTSIDE = "the moment lies outside the years 1 to 9999 in UTC"


def _rfc3339_only(value: Any) -> Any:
    if isinstance(value, str) and _RFC3339.match(value):
        if re.match(_EDGE_DAYS, value):
            raise ValueError(
                "0001-01-01 takes no positive offset and 9999-12-31 no negative one: the moment "
                "could lie outside the years 1 to 9999 in UTC, which the database stores"
            )
        return value
    if isinstance(value, datetime):
        return value
    raise ValueError("expected an RFC 3339 date-time with an offset, e.g. 2026-01-31T09:00:00Z")


def _storable(value: datetime) -> datetime:
    # The database keeps UTC: 0001-01-01T00:00:00+01:00 has no UTC year to store.
    try:
        value.astimezone(UTC)
    except OverflowError:
        raise ValueError(_OUTSIDE) from None
    return value


class _StatedInTheDocument:
    """Adds the storable-moment pattern to a timestamp's JSON schema."""

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler(core_schema)
        schema["pattern"] = STORABLE_MOMENT
        return schema


Timestamp = Annotated[
    AwareDatetime,
    BeforeValidator(_rfc3339_only),
    AfterValidator(_storable),
    _StatedInTheDocument(),
]


def _json_number(value: Any) -> Any:
    # Pydantic's lax mode turns true into 1 and "3" into 3; strict mode refuses 3.0 for an
    # integer, which JSON Schema (and so the OpenAPI document) calls an integer. A JSON number
    # with no fraction is an integer here too; a boolean or a string is never a number.
    if isinstance(value, bool | str):
        raise PydanticCustomError(
            "json_number",
            "Input should be a JSON number, not {kind}",
            {"kind": type(value).__name__},
        )
    return value


# Put it after the field's bounds, `Annotated[int, Field(ge=0), JSON_NUMBER]`: in that order the
# bounds stay in the JSON schema as minimum/maximum.
JSON_NUMBER = BeforeValidator(_json_number)
