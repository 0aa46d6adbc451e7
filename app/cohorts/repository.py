"""Loading a cohort: its subjects. Their ratings, in columnar form, come from the assessments
repository (``load_ratings``), which the write path's events read as well."""

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from app.assessments.repository import CHUNK, load_ratings
from app.models import Subject

__all__ = ["CHUNK", "CohortSubjects", "load_attribute", "load_ratings", "load_subjects"]


@dataclass(frozen=True, slots=True)
class CohortSubjects:
    ids: list[uuid.UUID]
    refs: list[str]
    names: list[str | None]
    tracks: list[str | None]
    levels: list[str | None]


async def load_subjects(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    refs: Sequence[str] | None,
    track: str | None,
    current_level: str | None,
    attributes: Mapping[str, str],
) -> CohortSubjects:
    """The tenant's subjects matching the list and/or filter, ordered by external_ref."""
    base = select(
        Subject.id,
        Subject.external_ref,
        Subject.display_name,
        Subject.track,
        Subject.current_level,  # type: ignore[call-overload]
    ).where(col(Subject.tenant_id) == tenant_id)
    if track is not None:
        base = base.where(col(Subject.track) == track)
    if current_level is not None:
        base = base.where(col(Subject.current_level) == current_level)
    for key, value in attributes.items():
        base = base.where(col(Subject.attributes)[key].as_string() == value)
    rows: list[Any] = []
    if refs is None:
        rows = list((await session.exec(base)).all())
    else:
        unique = sorted(set(refs))
        for start in range(0, len(unique), CHUNK):
            chunk = unique[start : start + CHUNK]
            rows += list(
                (await session.exec(base.where(col(Subject.external_ref).in_(chunk)))).all()
            )
    rows.sort(key=lambda r: r[1])
    return CohortSubjects(
        ids=[r[0] for r in rows],
        refs=[r[1] for r in rows],
        names=[r[2] for r in rows],
        tracks=[r[3] for r in rows],
        levels=[r[4] for r in rows],
    )


async def load_attribute(
    session: AsyncSession, tenant_id: uuid.UUID, refs: Sequence[str], key: str
) -> dict[str, str | None]:
    """Each listed subject's value of one free attribute (None for a subject without it)."""
    value = col(Subject.attributes)[key].as_string()
    found: dict[str, str | None] = {}
    unique = sorted(set(refs))
    for start in range(0, len(unique), CHUNK):
        chunk = unique[start : start + CHUNK]
        query = select(Subject.external_ref, value).where(  # type: ignore[call-overload]
            col(Subject.tenant_id) == tenant_id, col(Subject.external_ref).in_(chunk)
        )
        found.update((await session.exec(query)).all())
    return found
