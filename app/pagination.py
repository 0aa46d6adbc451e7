"""Opaque cursor pages shared by every list endpoint."""

import base64
import binascii
import json
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field

from app.errors import FieldError, InvalidInput

T = TypeVar("T")

CURSOR_MAX_LENGTH = 512
# The alphabet of ``encode_cursor``: unpadded URL-safe base64.
CURSOR_PATTERN = r"^[A-Za-z0-9_-]*$"


class Page(BaseModel, Generic[T]):
    """One page of results; pass ``next_cursor`` back as ``cursor`` for the next page."""

    items: list[T]
    next_cursor: str | None = Field(default=None, max_length=CURSOR_MAX_LENGTH)


def encode_cursor(values: list[Any]) -> str:
    """Encode the sort key of the last row seen."""
    raw = json.dumps(values, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None, arity: int) -> list[Any] | None:
    """Decode a cursor from ``encode_cursor``; a tampered one is a 422, never a 500."""
    if cursor is None:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, UnicodeError, binascii.Error):
        values = None
    # Issued cursors hold refs, timestamps and ids: printable ASCII. Anything else (a NUL, a lone
    # surrogate) would only reach the database to be refused there.
    if (
        not isinstance(values, list)
        or len(values) != arity
        or not all(isinstance(v, str) and v.isascii() and v.isprintable() for v in values)
    ):
        raise invalid_cursor()
    return values


def invalid_cursor() -> InvalidInput:
    """The error for a cursor this service did not issue."""
    return InvalidInput(
        "The cursor is not one this service issued.",
        errors=[FieldError(loc=["query", "cursor"], msg="invalid cursor", type="cursor")],
    )
