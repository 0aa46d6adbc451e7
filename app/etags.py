"""Optimistic concurrency: strong ETags and the If-Match check every update shares."""

import uuid
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

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


async def guarded_update(
    session: AsyncSession, model: type[SQLModel], row: Any, values: dict[str, Any]
) -> None:
    """Write ``values`` only if the row still has the revision that was checked.

    Two writers holding the same ETag both pass the If-Match check; the database then lets
    exactly one of them bump the revision, and the other matches no row and gets 412.
    """
    table: Any = model.__table__  # type: ignore[attr-defined]
    stmt = (
        update(table)
        .where(
            table.c.tenant_id == row.tenant_id,
            table.c.id == row.id,
            table.c.revision == row.revision,
        )
        .values(**values)
    )
    result = await session.exec(stmt)
    if result.rowcount != 1:
        raise PreconditionFailed("The resource changed since you read it; read it again and retry.")
    for name, value in values.items():
        set_committed_value(row, name, value)
