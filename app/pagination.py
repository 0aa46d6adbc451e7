"""Opaque cursor pages shared by every list endpoint."""

import base64
import binascii
import json
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import ColumnElement, and_, or_

from app.errors import FieldError, InvalidInput

T = TypeVar("T")

CURSOR_MAX_LENGTH = 512
# The alphabet of ``encode_cursor``: unpadded URL-safe base64.
CURSOR_PATTERN = r"^[A-Za-z0-9_-]*$"
MAX_LIMIT = 200  # what `limit` may ask for; MAX_PAGE_SIZE may only lower it
DEFAULT_LIMIT = 50


class Page(BaseModel, Generic[T]):
    """One page of results; pass ``next_cursor`` back as ``cursor`` for the next page."""

    items: list[T]
    next_cursor: str | None = Field(default=None, max_length=CURSOR_MAX_LENGTH)


def page_size(
    request: Request,
    limit: Annotated[
        int,
        Query(
            ge=1,
            le=MAX_LIMIT,
            description=f"Items per page, at most {MAX_LIMIT} (less if the operator set "
            "MAX_PAGE_SIZE lower; then a larger limit is refused, never silently cut).",
        ),
    ] = DEFAULT_LIMIT,
) -> int:
    """The page size asked for, refused (not cut) above the operator's MAX_PAGE_SIZE."""
    allowed: int = request.app.state.settings.max_page_size
    if limit > allowed:
        msg = f"limit is at most {allowed} on this service"
        raise InvalidInput(msg, errors=[FieldError(loc=["query", "limit"], msg=msg, type="limit")])
    return limit


PageSize = Annotated[int, Depends(page_size)]
PageCursor = Annotated[
    str | None,
    Query(
        max_length=CURSOR_MAX_LENGTH,
        pattern=CURSOR_PATTERN,
        description="The `next_cursor` of the previous page; absent or empty for the first page.",
    ),
]


def next_page(
    rows: Sequence[T], limit: int, cursor_of: Callable[[T], list[Any]]
) -> tuple[list[T], str | None]:
    """The first ``limit`` of ``rows`` (fetched as ``limit + 1``) and the cursor after them."""
    if len(rows) <= limit:
        return list(rows), None
    kept = list(rows[:limit])
    return kept, encode_cursor(cursor_of(kept[-1]))


def encode_cursor(values: list[Any]) -> str:
    """Encode the sort key of the last row seen."""
    raw = json.dumps(values, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None, arity: int) -> list[Any] | None:
    """Decode a cursor from ``encode_cursor``; a tampered one is a 422, never a 500."""
    if not cursor:  # absent or empty: the first page
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


def decode_moment_cursor(cursor: str | None) -> tuple[datetime, uuid.UUID] | None:
    """A cursor of (timestamp, id), the sort key of every list ordered by time."""
    decoded = decode_cursor(cursor, 2)
    if decoded is None:
        return None
    try:
        return datetime.fromisoformat(decoded[0]), uuid.UUID(decoded[1])
    except ValueError:
        raise invalid_cursor() from None


def moment_cursor(at: datetime, row_id: uuid.UUID) -> list[str]:
    """The cursor values of a row ordered by (timestamp, id)."""
    return [at.isoformat(), str(row_id)]


def after_moment(
    at: Any, row_id: Any, after: tuple[datetime, uuid.UUID], *, newest_first: bool
) -> ColumnElement[bool]:
    """The rows after a (timestamp, id) cursor, in the list's order (a keyset condition)."""
    at_value, id_value = after
    if newest_first:
        return or_(at < at_value, and_(at == at_value, row_id < id_value))
    return or_(at > at_value, and_(at == at_value, row_id > id_value))


def invalid_cursor() -> InvalidInput:
    """The error for a cursor this service did not issue."""
    return InvalidInput(
        "The cursor is not one this service issued.",
        errors=[FieldError(loc=["query", "cursor"], msg="invalid cursor", type="cursor")],
    )
