"""How a framework evolves: a version's competency map, checked and applied to older ratings.

The map lives in the version's document (``competency_map``), beside its ``release_notes``: it
describes the step from the version before, so it travels with the file on export and import.
"""

import uuid
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise
from typing import Any

import numpy as np
from sqlmodel.ext.asyncio.session import AsyncSession

from app.assessments.repository import rater_key
from app.cohorts import repository as cohort_repo
from app.errors import FieldError, InvalidInput
from app.frameworks import repository
from app.frameworks.diff import OPS, diff_documents, summary_markdown
from app.frameworks.document import CompetencyMap, FrameworkDocument
from app.models import FrameworkVersion
from app.scoring import Rating as ScoringRating
from app.scoring.carry import MapEntry, Step, build_step, carry_cohort, carry_ratings
from app.scoring.cohort import CohortRatings, epoch_micros
from app.scoring.model import RATER_ROLES, CarriedMap
from app.webhooks import service as webhooks

MAP_LOC: list[str | int] = ["body", "competency_map"]


def check_map(cmap: CompetencyMap, old: FrameworkDocument | None, new: FrameworkDocument) -> None:
    """Raise InvalidInput naming every entry that does not fit the two versions."""
    if old is None:
        msg = "the first version of a framework has no previous version to map from"
        raise InvalidInput(
            "The competency map has nothing to map from.",
            errors=[FieldError(loc=MAP_LOC, msg=msg, type="no_previous_version")],
        )
    old_keys = [c.key for c in old.competencies]
    new_keys = {c.key for c in new.competencies}
    errors: list[FieldError] = []
    seen: set[str] = set()
    for i, entry in enumerate(cmap.entries):
        loc = [*MAP_LOC, "entries", i]
        sources, targets = entry.sources, entry.targets
        for key in sources:
            if key not in old_keys:
                errors.append(
                    _error([*loc, "from"], f"{key!r} is not a competency of the previous version")
                )
            elif key in seen:
                errors.append(
                    FieldError(
                        loc=[*loc, "from"],
                        msg=f"{key!r} is mapped by an earlier entry",
                        type="duplicate",
                    )
                )
            seen.add(key)
        for key in targets:
            if key not in new_keys:
                errors.append(_error([*loc, "to"], f"{key!r} is not a competency of this version"))
        if len(sources) > 1 and len(targets) > 1:
            errors.append(
                FieldError(
                    loc=loc,
                    msg="an entry merges several keys into one or splits one into several, "
                    "not both",
                    type="many_to_many",
                )
            )
        weighted = set(sources) if len(sources) > 1 else set(targets) if len(targets) > 1 else set()
        for key, weight in entry.weights.items():
            if key not in weighted:
                errors.append(
                    _error(
                        [*loc, "weights", key],
                        f"{key!r} takes no weight here: weights name the sources of a merge "
                        "or the targets of a split",
                    )
                )
            elif len(targets) > 1 and weight > 1:
                errors.append(
                    FieldError(
                        loc=[*loc, "weights", key],
                        msg="a split's factor is at most 1",
                        type="out_of_range",
                    )
                )
    if cmap.complete:
        missing = [k for k in old_keys if k not in seen]
        if missing:
            errors.append(
                FieldError(
                    loc=[*MAP_LOC, "complete"],
                    msg=f"the map claims to be complete but leaves {', '.join(missing)} of "
                    "the previous version unaccounted for",
                    type="incomplete_map",
                )
            )
    if errors:
        raise InvalidInput(
            f"The competency map does not fit the versions: {len(errors)} problem(s).",
            errors=errors,
        )


def _error(loc: list[str | int], msg: str) -> FieldError:
    return FieldError(loc=loc, msg=msg, type="unknown_reference")


def entries_of(cmap: CompetencyMap | None) -> list[MapEntry]:
    """The map's entries as the scoring module's plain values."""
    if cmap is None:
        return []
    return [MapEntry(tuple(e.sources), tuple(e.targets), dict(e.weights)) for e in cmap.entries]


def renames_of(cmap: CompetencyMap | None) -> dict[str, str]:
    """The map's renames, old key -> new key (what a diff pairs up)."""
    return {e.sources[0]: e.targets[0] for e in entries_of(cmap) if e.kind == "rename"}


def step_between(old: FrameworkDocument, new: FrameworkDocument) -> Step:
    """The carrying step from one version to the next (the next one's map, if any)."""
    return build_step(
        [c.key for c in old.competencies],
        [c.key for c in new.competencies],
        entries_of(new.competency_map),
    )


def describe(cmap: CompetencyMap | None) -> list[dict[str, Any]]:
    """What a map does, entry by entry, for an ``explanation``."""
    return [
        {"kind": e.kind, "from": list(e.sources), "to": list(e.targets), "weights": dict(e.weights)}
        for e in entries_of(cmap)
    ]


# ---- chains of versions ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Chain:
    """For each older version whose ratings change on the way to the target: its id, its
    competencies, and the steps from it to the target."""

    target: int
    target_keys: tuple[str, ...]
    carried: tuple[tuple[uuid.UUID, int, tuple[str, ...], tuple[Step, ...]], ...]
    maps: tuple[CarriedMap, ...]

    @property
    def carried_ids(self) -> set[uuid.UUID]:
        return {version_id for version_id, *_ in self.carried}

    def reaching(self, version_id: uuid.UUID, keys: Sequence[str]) -> set[str]:
        """The keys of a version whose ratings still count for the target."""
        steps = next((st for vid, _, _, st in self.carried if vid == version_id), None)
        if steps is None:
            return set(keys) & set(self.target_keys)
        return {k for k in keys if _reaches(k, steps)}

    def renames(self, version_id: uuid.UUID, keys: Sequence[str]) -> dict[str, str]:
        """Keys of a version that are one competency of the target under another name."""
        steps = next((st for vid, _, _, st in self.carried if vid == version_id), None)
        if steps is None:
            return {}
        out = {}
        for key in keys:
            current: str | None = key
            for step in steps:
                out_edges = [e for e in step.edges if e.source == current]
                if len(out_edges) != 1 or out_edges[0].factor != 1:
                    current = None
                    break
                target = out_edges[0].target
                if sum(1 for e in step.edges if e.target == target) != 1:
                    current = None
                    break
                current = target
            if current is not None and current != key:
                out[key] = current
        return out


def _reaches(key: str, steps: Sequence[Step]) -> bool:
    alive = {key}
    for step in steps:
        alive = {e.target for e in step.edges if e.source in alive}
    return bool(alive)


_CHAINS: "OrderedDict[tuple[uuid.UUID, int], Chain]" = OrderedDict()
_CHAINS_MAX = 256


def chain_of(docs: Sequence[tuple[uuid.UUID, int, FrameworkDocument]], target: int) -> Chain:
    """The chain to version ``target`` from the versions (id, number, document) before it."""
    ordered = sorted((d for d in docs if d[1] <= target), key=lambda d: d[1])
    steps: list[Step] = [step_between(a[2], b[2]) for a, b in pairwise(ordered)]
    carried = []
    for i, (version_id, number, doc) in enumerate(ordered[:-1]):
        path = steps[i:]
        if any(not s.identity for s in path):
            carried.append(
                (version_id, number, tuple(c.key for c in doc.competencies), tuple(path))
            )
    maps = tuple(
        CarriedMap(number, tuple(entries_of(doc.competency_map)))
        for _, number, doc in ordered
        if doc.competency_map is not None and doc.competency_map.entries
    )
    keys = tuple(c.key for c in ordered[-1][2].competencies) if ordered else ()
    return Chain(target, keys, tuple(carried), maps)


def remembered_chain(version_id: uuid.UUID, revision: int) -> Chain | None:
    """The chain to a version if this worker holds it (no read), else None."""
    return _CHAINS.get((version_id, revision))


async def chain_for(
    session: AsyncSession,
    owner: uuid.UUID,
    framework_id: uuid.UUID,
    version_id: uuid.UUID,
    revision: int,
    number: int,
) -> Chain:
    """The chain to a stored version, cached by the version's (id, revision): the versions
    before it are published or archived, which never change (only the newest can be a draft)."""
    key = (version_id, revision)
    hit = _CHAINS.get(key)
    if hit is not None:
        _CHAINS.move_to_end(key)
        return hit
    rows = await repository.version_documents(session, owner, framework_id, number)
    chain = chain_of([(r[0], r[1], FrameworkDocument.model_validate(r[2])) for r in rows], number)
    _CHAINS[key] = chain
    if len(_CHAINS) > _CHAINS_MAX:
        _CHAINS.popitem(last=False)
    return chain


async def subject_ratings(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    subject_id: uuid.UUID,
    owner: uuid.UUID,
    chain: Chain,
    plain: Sequence[ScoringRating],
) -> list[ScoringRating]:
    """A subject's ratings with those of mapped older versions carried to the target.

    ``plain`` are the subject's ratings of every version read by key; the ones of carried
    versions are replaced by their carried form."""
    if not chain.carried:
        return list(plain)
    rows = await repository.subject_ratings_of_versions(
        session, tenant_id, subject_id, owner, chain.carried_ids
    )
    keep = {(x[3], x[4], x[5], x[6]) for x in rows}
    out = [
        rating
        for rating in plain
        if (rating.rater_ref, rating.role, rating.assessed_at, rating.sequence) not in keep
    ]
    for version_id, _, _, steps in chain.carried:
        older = [
            ScoringRating(
                competency=x[1],
                proficiency=float(x[2]),
                rater_ref=x[3],
                role=x[4],
                assessed_at=x[5],
                sequence=x[6],
            )
            for x in rows
            if x[0] == version_id
        ]
        out += carry_ratings(older, steps)
    return out


async def cohort_ratings(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    subject_ids: Sequence[uuid.UUID],
    versions: Sequence[tuple[uuid.UUID, uuid.UUID]],
    competencies: Sequence[str],
    chain: Chain,
    window_start: datetime,
    as_of: datetime,
) -> CohortRatings:
    """A cohort's ratings against the target version: versions read by key as before, and the
    carried versions through their steps."""
    carried_ids = chain.carried_ids
    plain_versions = [v for v in versions if v[1] not in carried_ids]
    if not chain.carried:
        return await cohort_repo.load_ratings(
            session, tenant_id, subject_ids, plain_versions, competencies, window_start, as_of
        )
    keys = {version_id: list(keys) for version_id, _, keys, _ in chain.carried}
    groups: list[tuple[list[tuple[uuid.UUID, uuid.UUID]], list[str]]] = [
        (plain_versions, list(competencies)),
        *(([v], keys[v[1]]) for v in versions if v[1] in carried_ids),
    ]
    parts = await load_groups(session, tenant_id, subject_ids, groups, window_start, as_of)
    return concat(
        [
            parts[0],
            *(
                carry_cohort(part, _steps(chain, group[0][0][1]))
                for part, group in zip(parts[1:], groups[1:], strict=True)
            ),
        ]
    )


def _steps(chain: Chain, version_id: uuid.UUID) -> tuple[Step, ...]:
    return next(steps for vid, _, _, steps in chain.carried if vid == version_id)


async def load_groups(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    subject_ids: Sequence[uuid.UUID],
    groups: Sequence[tuple[Sequence[tuple[uuid.UUID, uuid.UUID]], Sequence[str]]],
    window_start: datetime,
    as_of: datetime,
) -> list[CohortRatings]:
    """Ratings of the subjects, one columnar part per group of versions, each indexed by the
    group's own competency keys; one rater has one id in every part."""
    if (await session.connection()).dialect.name == "postgresql":
        # On Postgres a rater's id is a hash of (role, rater), the same in every load.
        return [
            await cohort_repo.load_ratings(
                session, tenant_id, subject_ids, list(versions), list(keys), window_start, as_of
            )
            for versions, keys in groups
        ]
    return await _generic(session, tenant_id, subject_ids, groups, window_start, as_of)


async def _generic(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    subject_ids: Sequence[uuid.UUID],
    groups: Sequence[tuple[Sequence[tuple[uuid.UUID, uuid.UUID]], Sequence[str]]],
    window_start: datetime,
    as_of: datetime,
) -> list[CohortRatings]:
    """One query over every version, so one rater has one id in every part."""
    wanted = sorted({v[1] for versions, _ in groups for v in versions})
    index = {sid: i for i, sid in enumerate(subject_ids)}
    role_index = {role: i for i, role in enumerate(RATER_ROLES)}
    by_version: dict[uuid.UUID, list[tuple[int, str, int, int, int, int, int]]] = {}
    ids = list(subject_ids)
    for start in range(0, len(ids), cohort_repo.CHUNK):
        rows = await repository.cohort_ratings_of_versions(
            session, tenant_id, ids[start : start + cohort_repo.CHUNK], wanted, window_start, as_of
        )
        for version_id, sid, key, value, role, rater, at, seq in rows:
            if role not in role_index:
                continue
            rater_id = rater_key(role, rater)
            by_version.setdefault(version_id, []).append(
                (index[sid], key, value, role_index[role], rater_id, epoch_micros(at), seq)
            )
    return [
        _columnar([row for v in versions for row in by_version.get(v[1], [])], keys, len(ids))
        for versions, keys in groups
    ]


def assemble(
    parts: Mapping[uuid.UUID, CohortRatings],
    keys: Mapping[uuid.UUID, Sequence[str]],
    chain: Chain,
) -> CohortRatings:
    """Per-version parts (each indexed by its version's keys) as ratings of the chain's target:
    carried versions through their steps, the others by key."""
    target = {k: i for i, k in enumerate(chain.target_keys)}
    out = []
    for version_id, part in parts.items():
        if version_id in chain.carried_ids:
            out.append(carry_cohort(part, _steps(chain, version_id)))
            continue
        position = np.array([target.get(k, -1) for k in keys[version_id]] + [-1], dtype=np.int32)
        moved = position[part.competency_index]
        kept = moved >= 0
        out.append(
            CohortRatings(
                subject_index=part.subject_index[kept],
                competency_index=moved[kept],
                proficiency=part.proficiency[kept],
                role=part.role[kept],
                rater=part.rater[kept],
                assessed_at=part.assessed_at[kept],
                sequence=part.sequence[kept],
                n_subjects=part.n_subjects,
            )
        )
    return concat(out)


def _columnar(
    rows: Sequence[tuple[int, str, int, int, int, int, int]], keys: Sequence[str], n: int
) -> CohortRatings:
    position = {k: i for i, k in enumerate(keys)}
    kept = [row for row in rows if row[1] in position]
    table = np.array(
        [(s, position[k], v, role, rater, at, seq) for s, k, v, role, rater, at, seq in kept],
        dtype=np.int64,
    ).reshape(-1, 7)
    return CohortRatings(
        subject_index=table[:, 0].astype(np.int32),
        competency_index=table[:, 1].astype(np.int32),
        proficiency=table[:, 2].astype(np.float64),
        role=table[:, 3].astype(np.int8),
        rater=table[:, 4],
        assessed_at=table[:, 5],
        sequence=table[:, 6],
        n_subjects=n,
    )


def concat(parts: Sequence[CohortRatings]) -> CohortRatings:
    """Columnar ratings of the same subjects and competencies, one after another."""
    return CohortRatings(
        subject_index=np.concatenate([p.subject_index for p in parts]),
        competency_index=np.concatenate([p.competency_index for p in parts]),
        proficiency=np.concatenate([p.proficiency for p in parts]),
        role=np.concatenate([p.role for p in parts]),
        rater=np.concatenate([p.rater for p in parts]),
        assessed_at=np.concatenate([p.assessed_at for p in parts]),
        sequence=np.concatenate([p.sequence for p in parts]),
        n_subjects=parts[0].n_subjects,
    )


# ---- publishing -----------------------------------------------------------------------------


def published_payload(
    key: str, previous: FrameworkVersion | None, row: FrameworkVersion
) -> dict[str, Any]:
    """The data of a framework.published event: which version, why, and what changed."""
    new = FrameworkDocument.model_validate(row.content)
    payload: dict[str, Any] = {
        "framework": {"key": key, "version": row.version},
        "previous_version": None if previous is None else previous.version,
        "release_notes": new.release_notes,
        "competency_map": describe(new.competency_map),
    }
    if previous is None:
        payload |= {"changes": {"added": 0, "removed": 0, "changed": 0}, "summary": None}
        return payload
    old = FrameworkDocument.model_validate(previous.content)
    direct = row.version == previous.version + 1
    changes = diff_documents(old, new, renames_of(new.competency_map) if direct else None)
    payload["changes"] = {op: sum(1 for c in changes if c.op == op) for op in OPS}
    payload["summary"] = summary_markdown(
        old, new, changes, old_label=f"v{previous.version}", new_label=f"v{row.version}"
    )
    return payload


async def announce_published(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    key: str,
    previous: FrameworkVersion | None,
    row: FrameworkVersion,
) -> int:
    """Enqueue framework.published (with the diff's summary) for the tenant's subscribers."""
    subs = await webhooks.subscribers(session, tenant_id, "framework.published")
    if not subs:
        return 0
    payload = published_payload(key, previous, row)
    return await webhooks.enqueue(
        session, tenant_id, "framework.published", [payload], subs, subject_ids=[None]
    )
