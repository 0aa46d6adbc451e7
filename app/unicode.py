"""Invalid Unicode in requests: found once, where bodies arrive, and refused before any work.

JSON lets a client write a lone surrogate as an escape (``"\\udfff"``), and Python's decoders
turn it into a ``str`` that no UTF-8 encoder accepts: Postgres, the JSON of a response and the
terminal would all fail on it, possibly after the request's transaction had committed. So a
request carrying one is refused with a 422 naming each field, whatever route it is for.
"""

import json
import re
import sys
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import unquote_to_bytes

import yaml

from app.bulk import NDJSON_TYPES, iter_items
from app.errors import FieldError, InvalidInput, printable
from app.frameworks.files import YAML_TYPES

MAX_REPORTED = 20

# Anything that may decode into a surrogate: a JSON or YAML escape in the surrogate range
# (``\uD800``-``\uDFFF``, YAML's ``\U0000DFFF``), or the bytes of one encoded as if it were UTF-8
# (json.loads decodes bytes with "surrogatepass"). Valid pairs match too; the walk then decides.
_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_YAML_LONG_ESCAPE = re.compile(rb"\\U0000[dD][89a-fA-F]")
_ENCODED = re.compile(rb"\xed[\xa0-\xbf]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_ARRAY = re.compile(rb"[ \t\r\n]*\[")

Loc = list[str | int]


def has_lone_surrogate(text: str) -> bool:
    """True when the string holds a code point UTF-8 cannot encode."""
    return _SURROGATE.search(text) is not None


def lone_surrogates(data: Any, root: Loc) -> Iterator[FieldError]:
    """Each string value or key of decoded JSON/YAML that holds a lone surrogate, by path."""
    stack: list[tuple[Any, Loc]] = [(data, root)]
    while stack:
        value, loc = stack.pop()
        if isinstance(value, str):
            if has_lone_surrogate(value):
                yield _error(loc, "The value is not valid Unicode (it holds a lone surrogate).")
        elif isinstance(value, dict):
            for key, item in reversed(value.items()):
                if isinstance(key, str) and has_lone_surrogate(key):
                    yield _error(
                        [*loc, printable(key)],
                        "The key is not valid Unicode (it holds a lone surrogate).",
                    )
                stack.append((item, [*loc, key if isinstance(key, int) else printable(key)]))
        elif isinstance(value, list):
            stack.extend((item, [*loc, i]) for i, item in reversed(list(enumerate(value))))


def _error(loc: Loc, msg: str) -> FieldError:
    return FieldError(loc=loc, msg=msg, type="unicode_invalid")


def refuse_lone_surrogates(data: Any, root: Loc) -> None:
    """Raise a 422 naming every field (up to a few) of ``data`` that holds a lone surrogate."""
    _refuse_in([(data, root)])


def _refuse_in(values: Iterable[tuple[Any, Loc]]) -> None:
    found: list[FieldError] = []
    for data, root in values:
        for error in lone_surrogates(data, root):
            found.append(error)
            if len(found) == MAX_REPORTED:
                break
        if len(found) == MAX_REPORTED:
            break
    if found:
        raise InvalidInput(
            f"The request has {len(found)} field(s) that are not valid Unicode"
            f"{' (first ones listed)' if len(found) == MAX_REPORTED else ''}; "
            "nothing was stored.",
            errors=found,
        )


def check_body(body: bytes, content_type: str | None) -> None:
    """Refuse a JSON, NDJSON or YAML body holding a lone surrogate anywhere (values or keys).

    A body that does not decode at all is left to the route, which says why; the scan for
    escapes keeps the common body (no surrogate escape at all) from being decoded twice.
    """
    media = (content_type or "").split(";")[0].strip().lower()
    if not _may_hold_surrogate(body, yaml_text=media in YAML_TYPES):
        return
    if media in NDJSON_TYPES or (media not in YAML_TYPES and _ARRAY.match(body)):
        # Bulk bodies (tens of MB, and any emoji a client escapes as a surrogate pair brings
        # them here) are walked one item at a time, never decoded whole.
        _refuse_in(_bulk_items(body, media))
        return
    decoded = _decode(body, yaml_text=media in YAML_TYPES)
    if decoded is not None:
        refuse_lone_surrogates(decoded[0], ["body"])


def _bulk_items(body: bytes, media: str) -> Iterator[tuple[Any, Loc]]:
    """Each item of a JSON array or NDJSON body with its loc, as the bulk routes number them."""
    try:
        for index, item in enumerate(iter_items(body, media, sys.maxsize)):
            yield item, ["body", index]
    except InvalidInput:
        return  # not a well-formed list of items: the route says why


def _may_hold_surrogate(body: bytes, *, yaml_text: bool) -> bool:
    # Ordered by cost: a one-byte search runs at memory speed, a pattern at a few ms per 10 MB
    # (one alternation of all three took 0.3 s over a 40 MB bulk body; this order, 0.06 s).
    if _other_encoding(body) or (b"\xed" in body and _ENCODED.search(body)):
        return True
    if b"\\" not in body:
        return False
    if _ESCAPE.search(body):
        return True
    return yaml_text and _YAML_LONG_ESCAPE.search(body) is not None


def _other_encoding(body: bytes) -> bool:
    # json.loads also accepts UTF-16 and UTF-32 (a BOM or NULs in the first bytes), and decodes
    # them with "surrogatepass": such a body can hold a raw lone surrogate.
    head = body[:4]
    return b"\x00" in head or head.startswith((b"\xff\xfe", b"\xfe\xff"))


def _decode(raw: bytes, *, yaml_text: bool) -> tuple[Any] | None:
    try:
        if yaml_text:
            from app.frameworks.files import load_file  # refuses aliases and deep nesting first

            return (load_file(raw, content_type=YAML_TYPES[0]),)
        return (json.loads(raw),)
    except (ValueError, RecursionError, InvalidInput, yaml.YAMLError):
        return None


def check_query(query_string: bytes) -> None:
    """Refuse a query string whose percent-escapes do not decode as UTF-8, naming the field."""
    if b"%" not in query_string:
        return
    errors = []
    for part in query_string.split(b"&"):
        name, _, value = part.partition(b"=")
        for raw in (name, value):
            try:
                unquote_to_bytes(raw.replace(b"+", b" ")).decode("utf-8")
            except UnicodeDecodeError:
                label = unquote_to_bytes(name).decode("utf-8", "backslashreplace")
                errors.append(
                    _error(["query", label], "The parameter is not valid UTF-8 once decoded.")
                )
                break
    if errors:
        raise InvalidInput(
            "The query string is not valid Unicode; nothing was done.",
            errors=errors[:MAX_REPORTED],
        )
