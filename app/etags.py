"""Optimistic concurrency: strong ETags and the If-Match check every update shares."""

import uuid

from app.errors import PreconditionFailed, PreconditionRequired


def make_etag(row_id: uuid.UUID, revision: int) -> str:
    """A strong ETag that changes with every revision of a row."""
    return f'"{row_id.hex}.{revision}"'


def check_if_match(if_match: str | None, current: str) -> None:
    """428 without If-Match, 412 when it names another state of the resource."""
    if if_match is None:
        raise PreconditionRequired(
            "Send If-Match with the ETag you read, so concurrent updates are not lost."
        )
    candidates = {tag.strip().removeprefix("W/") for tag in if_match.split(",")}
    if "*" not in candidates and current not in candidates:
        raise PreconditionFailed("The resource changed since you read it; read it again and retry.")
