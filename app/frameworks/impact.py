"""Framework evolution use cases: the diff of two versions, and the impact of publishing one.

The impact preview scores the tenant's people twice with the vectorized cohort engine, under
the current published version and under the draft (its map carrying older ratings), and
compares: nothing is stored.
"""

from dataclasses import dataclass

import numpy as np
from sqlmodel.ext.asyncio.session import AsyncSession

from app.auth.principal import Principal
from app.cohorts import repository as cohort_repo
from app.cohorts.schemas import CohortFilter
from app.frameworks import evolution, service
from app.frameworks import repository as repo
from app.frameworks import schemas as s
from app.frameworks.diff import OPS, change_as_dict, diff_documents, summary_markdown
from app.frameworks.document import FrameworkDocument
from app.models import utcnow
from app.scores import present
from app.scoring import Framework, window_start
from app.scoring.cohort import CohortResult, readiness_lost, score_cohort

REF_SAMPLE = 100


async def diff_versions(
    session: AsyncSession,
    principal: Principal,
    key: str,
    from_version: int | None,
    to_version: int | None,
) -> s.FrameworkDiff:
    """What changed from one version to another: by default from the latest published version
    to the newest one (a draft, when there is one)."""
    versions = await service.list_versions(session, principal, key)
    if to_version is None:
        to_version = versions[-1].version
    if from_version is None:
        published = [v.version for v in versions if v.status == "published"]
        from_version = published[-1] if published else versions[0].version
    old = await service.resolve(session, principal, key, from_version)
    new = await service.resolve(session, principal, key, to_version)
    old_doc = FrameworkDocument.model_validate(old.version.content)
    new_doc = FrameworkDocument.model_validate(new.version.content)
    direct = to_version == from_version + 1
    renames = evolution.renames_of(new_doc.competency_map) if direct else None
    changes = diff_documents(old_doc, new_doc, renames)
    return s.FrameworkDiff(
        key=key,
        from_version=from_version,
        to_version=to_version,
        from_status=old.version.status,  # type: ignore[arg-type]
        to_status=new.version.status,  # type: ignore[arg-type]
        counts=s.ChangeCounts(**{op: sum(1 for c in changes if c.op == op) for op in OPS}),
        changes=[s.FrameworkChange(**change_as_dict(c)) for c in changes],
        competency_map=[
            s.MapEntryRead.model_validate(e)
            for e in (evolution.describe(new_doc.competency_map) if direct else [])
        ],
        release_notes=new_doc.release_notes,
        summary=summary_markdown(
            old_doc, new_doc, changes, old_label=f"v{from_version}", new_label=f"v{to_version}"
        ),
    )


@dataclass(frozen=True, slots=True)
class Scored:
    """One version's scores of the cohort."""

    fw: Framework
    result: CohortResult


@dataclass(frozen=True, slots=True)
class Impact:
    """The comparison, with every mover (the route pages them, or writes them all as CSV)."""

    response: s.ImpactResponse
    movers: list[s.ImpactMover]


async def impact(
    session: AsyncSession, principal: Principal, key: str, version: int, body: s.ImpactRequest
) -> Impact:
    """Score the people under the published version and under ``version`` and compare."""
    draft = await service.resolve(session, principal, key, version)
    current = await service.resolve(session, principal, key)
    before_fw = service.compiled(current.version)
    after_fw = service.compiled(draft.version)
    as_of = body.as_of or utcnow()
    window = max(before_fw.settings.window_days, after_fw.settings.window_days)
    filt = body.filter or CohortFilter()
    subjects = await cohort_repo.load_subjects(
        session,
        principal.tenant_id,
        body.subject_refs,
        filt.track,
        filt.current_level,
        filt.attributes,
    )
    unknown = sorted(set(body.subject_refs or ()) - set(subjects.refs))
    tracks = _tracks(before_fw) & _tracks(after_fw)
    keep = [i for i, t in enumerate(subjects.tracks) if t is None or t in tracks]
    skipped = [
        r
        for r, t in zip(subjects.refs, subjects.tracks, strict=True)
        if t is not None and t not in tracks
    ]
    ids = [subjects.ids[i] for i in keep]
    refs = [subjects.refs[i] for i in keep]
    names = [subjects.names[i] for i in keep]
    subject_tracks = [subjects.tracks[i] for i in keep]
    rows = await repo.versions_of(session, draft.framework)
    owner, framework_id = draft.framework.tenant_id, draft.framework.id
    # Every version's ratings are read once, by its own keys, and serve both scorings.
    keys = {v.id: [c["key"] for c in v.content["competencies"]] for v in rows}
    parts = await evolution.load_groups(
        session,
        principal.tenant_id,
        ids,
        [([(v.tenant_id, v.id)], keys[v.id]) for v in rows],
        window_start(as_of, window),
        as_of,
    )
    by_version = {v.id: part for v, part in zip(rows, parts, strict=True)}
    scored = []
    for fw, row in ((before_fw, current.version), (after_fw, draft.version)):
        chain = await evolution.chain_for(
            session, owner, framework_id, row.id, row.revision, row.version
        )
        ratings = evolution.assemble(by_version, keys, chain)
        scored.append(Scored(fw, score_cohort(fw, ratings, as_of=as_of, tracks=subject_tracks)))
    before, after = scored  # ``chain`` is the draft's from here on
    movers = _movers(before, after, refs, names, subject_tracks)
    reaching = chain.reaching(current.version.id, [c.key for c in before_fw.competencies])
    lost_refs = _ratings_lost(before, after, refs, reaching)
    summary = s.ImpactSummary(
        subjects=len(refs),
        moved_up=sum(1 for m in movers if m.direction == "up"),
        moved_down=sum(1 for m in movers if m.direction == "down"),
        unchanged=len(refs) - len(movers),
        level_counts_before=_level_counts(before),
        level_counts_after=_level_counts(after),
        readiness_changes=_readiness_changes(before, after),
        ratings_no_longer_count=len(lost_refs),
        ratings_no_longer_count_refs=lost_refs[:REF_SAMPLE],
        top_competencies=_causes(
            before,
            after,
            chain.renames(current.version.id, [c.key for c in before_fw.competencies]),
        )[: body.top_competencies],
    )
    response = s.ImpactResponse(
        key=key,
        before_version=before_fw.version,
        after_version=after_fw.version,
        as_of=as_of,
        unknown_refs=unknown,
        skipped=skipped,
        summary=summary,
        movers=[],
        next_cursor=None,
    )
    return Impact(response, movers)


def _tracks(fw: Framework) -> set[str | None]:
    return {level.track for level in fw.levels} - {None}


def _rank(fw: Framework, index: int) -> int:
    return fw.levels[index].rank if index >= 0 else 0


def _movers(
    before: Scored,
    after: Scored,
    refs: list[str],
    names: list[str | None],
    tracks: list[str | None],
) -> list[s.ImpactMover]:
    """People whose attained level's rank changes, by ref."""
    was = before.result.attained.tolist()
    now = after.result.attained.tolist()
    index_before = before.result.level_index.tolist()
    index_after = after.result.level_index.tolist()
    out = []
    for i, ref in enumerate(refs):
        rank_before, rank_after = _rank(before.fw, was[i]), _rank(after.fw, now[i])
        if rank_before == rank_after:
            continue
        out.append(
            s.ImpactMover(
                subject_ref=ref,
                display_name=names[i],
                track=tracks[i],
                direction="up" if rank_after > rank_before else "down",
                level_before=present.level_ref(
                    before.fw, before.fw.levels[was[i]].key if was[i] >= 0 else None
                ),
                level_after=present.level_ref(
                    after.fw, after.fw.levels[now[i]].key if now[i] >= 0 else None
                ),
                level_index_before=index_before[i],
                level_index_after=index_after[i],
            )
        )
    return out


def _level_counts(scored: Scored) -> dict[str, int]:
    counts = {lv.key: 0 for lv in scored.fw.levels} | {"none": 0}
    keys = [lv.key for lv in scored.fw.levels]
    for index in scored.result.attained.tolist():
        counts[keys[index] if index >= 0 else "none"] += 1
    return counts


def _readiness_changes(before: Scored, after: Scored) -> list[s.LevelReadinessChange]:
    """Per level both versions have (by key), the distribution of readiness after − before."""
    old = {lv.key: i for i, lv in enumerate(before.fw.levels)}
    out = []
    for j, level in enumerate(after.fw.levels):
        i = old.get(level.key)
        if i is None:
            continue
        change = after.result.readiness[:, j] - before.result.readiness[:, i]
        n = int(change.size)
        out.append(
            s.LevelReadinessChange(
                level=level.key,
                people=n,
                mean_change=float(change.mean()) if n else 0.0,
                min_change=float(change.min()) if n else 0.0,
                max_change=float(change.max()) if n else 0.0,
                raised=int((change > 1e-9).sum()),
                lowered=int((change < -1e-9).sum()),
            )
        )
    return out


def _ratings_lost(before: Scored, after: Scored, refs: list[str], reaching: set[str]) -> list[str]:
    """People rated on a competency before whose rating reaches nothing after."""
    gone = [j for j, c in enumerate(before.fw.competencies) if c.key not in reaching]
    if not gone or not refs:
        return []
    rated = np.isfinite(before.result.values[:, gone]).any(axis=1)
    return [refs[i] for i in np.flatnonzero(rated).tolist()]


def _causes(before: Scored, after: Scored, renames: dict[str, str]) -> list[s.CompetencyImpact]:
    """Competencies by how much the readiness they cost moved, at the two levels that decide a
    move (each person's attained and next level before, when the new version has them too). A
    renamed competency is one competency, under its new key."""
    n = before.result.attained.shape[0]
    keys_after = [c.key for c in after.fw.competencies]
    keys_before = [renames.get(c.key, c.key) for c in before.fw.competencies]
    keys = [*keys_after, *(k for k in keys_before if k not in set(keys_after))]
    column = {k: j for j, k in enumerate(keys)}
    own_after = [column[k] for k in keys_after]
    own_before = [column[k] for k in keys_before]
    after_index = {lv.key: j for j, lv in enumerate(after.fw.levels)}
    magnitude = np.zeros((n, len(keys)))
    for per_person in (before.result.attained, before.result.next_level):
        for level_index in np.unique(per_person[per_person >= 0]).tolist():
            level = before.fw.levels[level_index].key
            if level not in after_index:
                continue
            rows = per_person == level_index
            delta = np.zeros((int(rows.sum()), len(keys)))
            delta[:, own_after] += readiness_lost(after.fw, after.result.values[rows], level)
            delta[:, own_before] -= readiness_lost(before.fw, before.result.values[rows], level)
            magnitude[rows] += np.abs(delta)
    out = [
        s.CompetencyImpact(
            competency=k,
            in_before=k in set(keys_before),
            in_after=k in set(keys_after),
            mean_abs_readiness_change=float(magnitude[:, j].mean()) if n else 0.0,
            people_affected=int((magnitude[:, j] > 1e-9).sum()),
        )
        for j, k in enumerate(keys)
    ]
    return sorted(out, key=lambda c: (-c.mean_abs_readiness_change, c.competency))


def page_movers(
    movers: list[s.ImpactMover], limit: int, after_ref: str | None
) -> tuple[list[s.ImpactMover], str | None]:
    """One page of movers after a ref, and the ref to continue from."""
    rest = [m for m in movers if after_ref is None or m.subject_ref > after_ref]
    page = rest[:limit]
    return page, page[-1].subject_ref if len(rest) > limit else None
