"""Shared parts of the bulk endpoints: reading JSON arrays or NDJSON, and per-item reports."""

import json
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from app.errors import FieldError, InvalidInput

NDJSON_TYPES = ("application/x-ndjson", "application/ndjson", "application/jsonl")
MAX_REPORTED_ERRORS = 1000

BulkMode = Literal["all_or_nothing", "partial"]


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
    media = (content_type or "").split(";")[0].strip().lower()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _refuse(["body"], "The body is not valid UTF-8.") from None
    items: list[Any]
    if media in NDJSON_TYPES:
        items = []
        for number, line in enumerate(text.splitlines()):
            if not line.strip():
                continue
            try:
                items.append(json.loads(line))
            except (ValueError, RecursionError) as exc:
                raise _refuse(["body", number], f"Line {number + 1} is not JSON: {exc}") from None
            if len(items) > max_items:
                break
    else:
        try:
            decoded = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise _refuse(["body"], f"The body is not JSON: {exc}") from None
        if not isinstance(decoded, list):
            raise _refuse(["body"], "Send a JSON array of items (or NDJSON, one item per line).")
        items = decoded
    if not items:
        raise _refuse(["body"], "Send at least one item.")
    if len(items) > max_items:
        raise _refuse(["body"], f"At most {max_items} items per request; split the batch.")
    return items


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


def refuse_all(refusals: list[BulkRefusal], total: int) -> InvalidInput:
    """The all-or-nothing answer when any item is bad: every reason, nothing stored."""
    errors = [e for r in refusals for e in r.errors][:MAX_REPORTED_ERRORS]
    return InvalidInput(
        f"{len(refusals)} of {total} item(s) are invalid; nothing was stored"
        + (
            f" (first {MAX_REPORTED_ERRORS} errors listed)."
            if len(errors) == MAX_REPORTED_ERRORS
            else "."
        ),
        errors=errors,
    )
