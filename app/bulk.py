"""Shared parts of the bulk endpoints: reading JSON arrays or NDJSON, and per-item reports."""

import codecs
import json
import re
from collections.abc import Iterator
from typing import Annotated, Any, Literal

from fastapi import Query
from pydantic import BaseModel, Field, ValidationError

from app.errors import FieldError, InvalidInput

NDJSON_TYPES = ("application/x-ndjson", "application/ndjson", "application/jsonl")
MAX_REPORTED_ERRORS = 1000

WINDOW_BYTES = 1 << 20  # how much of a JSON array body is decoded into text at a time
TOKEN_MARGIN = 16  # an error this close to the window's end may be a token cut in two
WHITESPACE = re.compile(r"[ \t\n\r]*")
VALUE_STARTS = frozenset('{"-0123456789tfnNI')
DECODER = json.JSONDecoder()
NOT_UTF8 = "The body is not valid UTF-8."

BulkMode = Literal["all_or_nothing", "partial"]
BulkModeQuery = Annotated[
    BulkMode,
    Query(
        description="all_or_nothing: any bad item refuses the batch (422, nothing stored); "
        "partial: store the valid items and report the others. A request that stores nothing "
        "is a 422 in either mode, so 201 always means something was created."
    ),
]


class BulkRefusal(BaseModel):
    index: int = Field(description="Position of the refused item in the request (0-based).")
    errors: list[FieldError]


def bulk_request_body(item_schema: str) -> dict[str, Any]:
    """The OpenAPI request body of a bulk route: a JSON array of items, or NDJSON."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "array",
                        "items": {"$ref": f"#/components/schemas/{item_schema}"},
                    }
                },
                "application/x-ndjson": {"schema": {"type": "string"}},
            },
        }
    }


def read_items(raw: bytes, content_type: str | None, max_items: int) -> list[Any]:
    """Decode a JSON array or NDJSON stream of items; 422 naming the bad line otherwise."""
    return list(iter_items(raw, content_type, max_items))


def iter_items(raw: bytes, content_type: str | None, max_items: int) -> Iterator[Any]:
    """The items of a JSON array or NDJSON body, decoded one at a time as they are consumed.

    Only one item (and a window of at most a few MiB of text) is held at a time, so a caller
    that works in batches never has the whole body decoded at once. A body-level fault (not
    UTF-8, not JSON, no items, too many) raises InvalidInput when the iteration reaches it.
    """
    media = (content_type or "").split(";")[0].strip().lower()
    count = 0
    for item in _ndjson(raw) if media in NDJSON_TYPES else _ArrayReader(raw).items():
        count += 1
        if count > max_items:
            raise _refuse(["body"], f"At most {max_items} items per request; split the batch.")
        yield item
    if not count:
        raise _refuse(["body"], "Send at least one item.")


def _ndjson(raw: bytes) -> Iterator[Any]:
    """One item per line (LF, CRLF or CR); blank lines are skipped but counted."""
    number = 0
    start = 0
    while start < len(raw):
        end = raw.find(b"\n", start)
        end = len(raw) if end < 0 else end
        chunk = raw[start:end]
        start = end + 1
        for line in chunk.splitlines() if b"\r" in chunk else (chunk,):
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError:
                raise _refuse(["body"], NOT_UTF8) from None
            if text.strip():
                try:
                    yield json.loads(text)
                except (ValueError, RecursionError) as exc:
                    if not _utf8(memoryview(raw)[start:], codecs.getincrementaldecoder("utf-8")()):
                        raise _refuse(["body"], NOT_UTF8) from None
                    raise _refuse(
                        ["body", number], f"Line {number + 1} is not JSON: {exc}"
                    ) from None
            number += 1


def _utf8(rest: memoryview, decoder: codecs.IncrementalDecoder) -> bool:
    """Whether the rest of a body is valid UTF-8 (a body that is not is refused as such first)."""
    try:
        for start in range(0, len(rest), WINDOW_BYTES):
            decoder.decode(rest[start : start + WINDOW_BYTES])
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


class _ArrayReader:
    """A JSON array read item by item from UTF-8 bytes through a sliding window of text.

    Each item is decoded by the standard library's C scanner (``raw_decode``); when an item
    runs past the window, more of the body is decoded and the item read again (the window at
    least doubles, so a large item costs linear time). Errors name the line, column and
    character of the whole body, as ``json.loads`` of the whole body would.
    """

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self.read_to = 0  # bytes of raw decoded into the window so far
        self.utf8 = codecs.getincrementaldecoder("utf-8")()
        self.window = ""
        self.pos = 0  # position in the window
        self.base = 0  # characters of the body before the window
        self.lines_before = 0  # newlines in the body before the window
        self.last_newline = -1  # character offset of the last of them

    def items(self) -> Iterator[Any]:
        """Every item of the array, in order."""
        self._skip_whitespace()
        if self.pos == 0 and self.window.startswith("\ufeff"):
            raise self._error("Unexpected UTF-8 BOM (decode using utf-8-sig)")
        if self._at_end():
            raise self._error("Expecting value")
        first = self.window[self.pos]
        if first != "[":
            if first in VALUE_STARTS and _utf8(memoryview(self.raw)[self.read_to :], self.utf8):
                raise _refuse(
                    ["body"], "Send a JSON array of items (or NDJSON, one item per line)."
                )
            raise self._error("Expecting value")
        self.pos += 1
        self._skip_whitespace()
        if self._at_end() or self.window[self.pos] != "]":
            while True:
                yield self._value()
                self._skip_whitespace()
                if self._at_end() or self.window[self.pos] not in ",]":
                    raise self._error("Expecting ',' delimiter")
                self.pos += 1
                if self.window[self.pos - 1] == "]":
                    break
                self._skip_whitespace()
        else:
            self.pos += 1
        self._skip_whitespace()
        if not self._at_end():
            raise self._error("Extra data")

    def _value(self) -> Any:
        while True:
            try:
                value, end = DECODER.raw_decode(self.window, self.pos)
            except json.JSONDecodeError as exc:
                # Truncated by the window's end, or wrong wherever the rest of the body goes?
                cut = exc.msg.startswith("Unterminated string") or (
                    exc.pos + TOKEN_MARGIN > len(self.window)
                )
                if not cut or not self._more(len(self.window) - self.pos):
                    raise self._error(exc.msg, exc.pos) from None
                continue
            except RecursionError as exc:
                raise _refuse(["body"], f"The body is not JSON: {exc}") from None
            # A value that ends near the window's end may be a number cut in two ("1." of "1.5").
            if end + TOKEN_MARGIN > len(self.window) and self._more(0):
                continue
            self.pos = end
            return value

    def _skip_whitespace(self) -> None:
        while True:
            self.pos = WHITESPACE.match(self.window, self.pos).end()  # type: ignore[union-attr]
            if self.pos < len(self.window) or not self._more(0):
                return

    def _at_end(self) -> bool:
        return self.pos >= len(self.window) and not self._more(0)

    def _more(self, at_least: int) -> bool:
        """Decode at least ``at_least`` (and at least WINDOW_BYTES) more bytes; False at the end."""
        if self.read_to >= len(self.raw):
            return False
        size = max(WINDOW_BYTES, at_least)
        piece = memoryview(self.raw)[self.read_to : self.read_to + size]
        self.read_to += len(piece)
        try:
            text = self.utf8.decode(piece, final=self.read_to >= len(self.raw))
        except UnicodeDecodeError:
            raise _refuse(["body"], NOT_UTF8) from None
        newlines = self.window.count("\n", 0, self.pos)
        if newlines:
            self.lines_before += newlines
            self.last_newline = self.base + self.window.rindex("\n", 0, self.pos)
        self.base += self.pos
        self.window = self.window[self.pos :] + text
        self.pos = 0
        return True

    def _error(self, msg: str, at: int | None = None) -> InvalidInput:
        if not _utf8(memoryview(self.raw)[self.read_to :], self.utf8):
            return _refuse(["body"], NOT_UTF8)
        at = self.pos if at is None else at
        newlines = self.window.count("\n", 0, at)
        last = self.base + self.window.rindex("\n", 0, at) if newlines else self.last_newline
        offset = self.base + at
        return _refuse(
            ["body"],
            f"The body is not JSON: {msg}: line {self.lines_before + newlines + 1} "
            f"column {offset - last} (char {offset})",
        )


def _refuse(loc: list[str | int], msg: str) -> InvalidInput:
    return InvalidInput(msg[:1000], errors=[FieldError(loc=loc, msg=msg[:1000], type="bulk_body")])


def validation_errors(exc: ValidationError, index: int) -> list[FieldError]:
    """Pydantic errors of item ``index`` as field errors with paths into the request."""
    return [
        FieldError(
            loc=["body", index, *(p if isinstance(p, int) else str(p) for p in e["loc"])],
            msg=str(e["msg"])[:2000],
            type=str(e["type"])[:100],
        )
        for e in exc.errors()
    ]


def refuse_all(refusals: list[BulkRefusal], total: int, refused: int | None = None) -> InvalidInput:
    """The answer when any item is bad in all-or-nothing mode, or every item in partial mode:
    every reason, nothing stored.

    ``refused`` counts the bad items when ``refusals`` holds only the first of them.
    """
    errors = [e for r in refusals for e in r.errors][:MAX_REPORTED_ERRORS]
    return InvalidInput(
        f"{len(refusals) if refused is None else refused} of {total} item(s) are invalid;"
        " nothing was stored"
        + (
            f" (first {MAX_REPORTED_ERRORS} errors listed)."
            if len(errors) == MAX_REPORTED_ERRORS
            else "."
        ),
        errors=errors,
    )
