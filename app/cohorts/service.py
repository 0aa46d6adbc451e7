"""Cohort evaluation: many subjects scored at once with the vectorized engine."""

import math
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pydantic_core
from sqlmodel.ext.asyncio.session import AsyncSession

from app.assessments.schemas import FrameworkRef
from app.auth.principal import Principal
from app.cohorts import repository as repo
from app.cohorts import schemas as s
from app.errors import FieldError, InvalidInput
from app.frameworks import evolution
from app.frameworks import repository as frameworks_repo
from app.frameworks import service as frameworks
from app.models import utcnow
from app.observability import metrics
from app.scores import present
from app.scores import service as scores
from app.scores.service import engine_errors
from app.scoring import Framework, UnknownLevel, window_start
from app.scoring.cohort import (
    CohortRatings,
    CohortResult,
    gap_matrix,
    readiness_lost,
    score_cohort,
)
from app.scoring.engine import find_level


@dataclass(frozen=True, slots=True)
class CohortAnswer:
    """The cohort response, with its people as plain rows.

    Building 100,000 people (and their top gaps) as model instances took almost two seconds;
    plain rows with the same fields serialize to the same JSON.
    """

    response: s.CohortResponse  # its ``people`` is None; see ``people``
    people: list[dict[str, Any]] | None

    def json(self) -> bytes:
        """The response as JSON, fields in the documented order."""
        fields = {name: getattr(self.response, name) for name in s.CohortResponse.model_fields}
        fields["people"] = self.people
        return pydantic_core.to_json(fields)


@dataclass(frozen=True, slots=True, eq=False)
class LoadedCohort:
    """A cohort's scorable people and their ratings in the window against one version."""

    framework: Framework
    subjects: repo.CohortSubjects
    unknown_refs: list[str]
    skipped: list[s.SkippedSubject]
    ratings: CohortRatings
    window_start: datetime
    version_id: uuid.UUID  # the stored version scored against (recorded rater effects name it)


async def load(
    session: AsyncSession,
    principal: Principal,
    ref: FrameworkRef,
    subject_refs: Sequence[str] | None,
    filt: s.CohortFilter,
    as_of: datetime,
    window_days: int | None = None,
) -> LoadedCohort:
    """The people of a cohort (list and/or filter) and their ratings up to ``as_of`` within the
    window (default: the framework's), older versions' ratings carried through their maps."""
    resolved = await frameworks.resolve(session, principal, ref.key, ref.version)
    fw = frameworks.compiled(resolved.version)
    tracks = {level.track for level in fw.levels} - {None}
    if filt.track is not None and filt.track not in tracks:
        msg = f"{fw.key} v{fw.version} has no track {filt.track!r}"
        raise InvalidInput(
            msg, errors=[FieldError(loc=["body", "filter", "track"], msg=msg, type="unknown_track")]
        )
    subjects = await repo.load_subjects(
        session, principal.tenant_id, subject_refs, filt.track, filt.current_level, filt.attributes
    )
    unknown = sorted(set(subject_refs or ()) - set(subjects.refs))
    subjects, skipped = _scorable(fw, tracks, subjects)
    versions = await frameworks_repo.versions_of(session, resolved.framework)
    row = resolved.version  # ratings of older versions go through their competency maps
    chain = await evolution.chain_for(
        session, row.tenant_id, row.framework_id, row.id, row.revision, row.version
    )
    begins = window_start(as_of, window_days or fw.settings.window_days)
    ratings = await evolution.cohort_ratings(
        session,
        principal.tenant_id,
        subjects.ids,
        [(v.tenant_id, v.id) for v in versions],
        [c.key for c in fw.competencies],
        chain,
        begins,
        as_of,
    )
    return LoadedCohort(fw, subjects, unknown, skipped, ratings, begins, row.id)


async def evaluate(
    session: AsyncSession, principal: Principal, body: s.CohortRequest
) -> CohortAnswer:
    """Score a cohort and summarize it: levels, readiness, gaps, promotion lists, heatmap."""
    started = time.perf_counter()
    as_of = body.as_of or utcnow()
    cohort = await load(
        session,
        principal,
        body.framework,
        body.subject_refs,
        body.filter or s.CohortFilter(),
        as_of,
    )
    fw, subjects = cohort.framework, cohort.subjects
    adjustment = await scores.cohort_rater_adjustment(
        session,
        principal.tenant_id,
        fw,
        cohort.version_id,
        cohort.ratings,
        subjects.ids,
        (cohort.window_start, as_of),
    )
    ratings = adjustment.ratings if adjustment else cohort.ratings
    with engine_errors({UnknownLevel: ["body", "target_level"]}):
        scoring_started = time.perf_counter()
        result = score_cohort(fw, ratings, as_of=as_of, tracks=subjects.tracks)
        metrics.record_scoring("cohort", time.perf_counter() - scoring_started)
        target_index = _targets(fw, result, body.target_level)
    answer = _respond(
        fw, body, subjects, cohort.unknown_refs, cohort.skipped, result, target_index, as_of
    )
    metrics.record_cohort(len(subjects.refs), time.perf_counter() - started)
    if adjustment is None:
        return answer
    note = s.CohortRaterAdjustment(
        mode=adjustment.mode,  # type: ignore[arg-type]
        estimate_id=str(adjustment.estimate_id) if adjustment.estimate_id else None,
        estimate_recorded_at=adjustment.recorded_at,
        note=adjustment.note,
    )
    return CohortAnswer(
        answer.response.model_copy(update={"rater_adjustment": note}), answer.people
    )


async def attribute_values(
    session: AsyncSession, principal: Principal, refs: list[str], attribute: str
) -> dict[str, str | None]:
    """Each cohort member's value of one attribute (e.g. team): what a chart groups people by."""
    return await repo.load_attribute(session, principal.tenant_id, refs, attribute)


def _scorable(
    fw: Framework, tracks: set[str | None], subjects: repo.CohortSubjects
) -> tuple[repo.CohortSubjects, list[s.SkippedSubject]]:
    """The subjects this version can score, and the others with the reason (one bad row
    must not turn the whole cohort into an error)."""
    keep = [i for i, track in enumerate(subjects.tracks) if track is None or track in tracks]
    if len(keep) == len(subjects.refs):
        return subjects, []
    kept = set(keep)
    skipped = [
        s.SkippedSubject(
            subject_ref=ref,
            reason=f"track {subjects.tracks[i]!r} is not a track of {fw.key} v{fw.version}",
        )
        for i, ref in enumerate(subjects.refs)
        if i not in kept
    ]
    return (
        repo.CohortSubjects(
            ids=[subjects.ids[i] for i in keep],
            refs=[subjects.refs[i] for i in keep],
            names=[subjects.names[i] for i in keep],
            tracks=[subjects.tracks[i] for i in keep],
            levels=[subjects.levels[i] for i in keep],
        ),
        skipped,
    )


def _targets(fw: Framework, result: CohortResult, target_level: str | None) -> np.ndarray:
    """Each subject's target level index: the one asked for, else their next level."""
    if target_level is not None:
        find_level(fw, target_level)
        index = next(i for i, lv in enumerate(fw.levels) if lv.key == target_level)
        return np.full(result.attained.shape, index, dtype=np.int32)
    return result.next_level.astype(np.int32)


def _respond(
    fw: Framework,
    body: s.CohortRequest,
    subjects: repo.CohortSubjects,
    unknown: list[str],
    skipped: list[s.SkippedSubject],
    result: CohortResult,
    targets: np.ndarray,
    as_of: datetime,
) -> CohortAnswer:
    n = len(subjects.refs)
    n_comp = len(fw.competencies)
    lost = np.zeros((n, n_comp))
    for level_index in np.unique(targets[targets >= 0]):
        rows = targets == level_index
        lost[rows] = readiness_lost(fw, result.values[rows], fw.levels[int(level_index)].key)
    gaps = gap_matrix(fw, result.values, targets)
    rank = {lv.key: lv.rank for lv in fw.levels}
    level_keys = [lv.key for lv in fw.levels]
    # One plain dict per level, shared by every person at it: the same shape as a score's.
    level_refs = [
        {"key": lv.key, "name": lv.name, "rank": lv.rank, "track": lv.track} for lv in fw.levels
    ]

    def key_of(i: int) -> str | None:
        return level_keys[i] if i >= 0 else None

    def ref_of(i: int) -> dict[str, Any] | None:
        return level_refs[i] if i >= 0 else None

    promotion_ready, below_level = [], []
    distribution: dict[str, int] = {lv.key: 0 for lv in fw.levels}
    distribution["none"] = 0
    people: list[dict[str, Any]] = []
    # Plain Python lists once, instead of a numpy scalar conversion per cell and person.
    competency_keys = [c.key for c in fw.competencies]
    next_levels = result.next_level.tolist()
    level_index = result.level_index.tolist()
    target_readiness = (
        np.take_along_axis(result.readiness, np.maximum(targets, 0)[:, None], axis=1)[:, 0].tolist()
        if n
        else []
    )
    coverage = result.overall_coverage.tolist()
    confidence = result.confidence.tolist()
    top_index = (
        np.argsort(-lost, axis=1, kind="stable")[:, : body.top_gaps]
        if n
        else np.zeros((0, 0), dtype=int)
    )
    top = top_index.tolist()
    top_lost = np.take_along_axis(lost, top_index, axis=1).tolist() if n else []
    attained_levels = result.attained.tolist()
    rated = np.isfinite(result.values).any(axis=1) if n else np.zeros(0, dtype=bool)
    for i in range(n):
        attained = key_of(attained_levels[i])
        distribution[attained or "none"] += 1
        official = subjects.levels[i]
        if official in rank:
            mine = rank[attained] if attained else 0
            if mine > rank[official]:
                promotion_ready.append(subjects.refs[i])
            elif mine < rank[official]:
                below_level.append(subjects.refs[i])
        if body.include_people:
            target = int(targets[i])
            people.append(
                {
                    "subject_ref": subjects.refs[i],
                    "display_name": subjects.names[i],
                    "track": subjects.tracks[i],
                    "current_level": official,
                    "attained_level": ref_of(attained_levels[i]),
                    "next_level": ref_of(int(next_levels[i])),
                    "level_index": level_index[i],
                    "target_level": ref_of(target),
                    "target_readiness": target_readiness[i] if target >= 0 else None,
                    "coverage": coverage[i],
                    "confidence": confidence[i],
                    "top_gaps": [
                        {"competency": competency_keys[c], "readiness_points_lost": points}
                        for c, points in zip(top[i], top_lost[i], strict=True)
                        if points > 0
                    ],
                }
            )
    mean_lost = lost.mean(axis=0) if n else np.zeros(n_comp)
    below = np.nan_to_num(gaps, nan=0.0) < -1e-9
    biggest = sorted(
        (
            s.CohortGap(
                competency=c.key,
                name=c.name,
                mean_readiness_points_lost=float(mean_lost[j]),
                people_below_requirement=int(below[:, j].sum()),
            )
            for j, c in enumerate(fw.competencies)
        ),
        key=lambda g: (-g.mean_readiness_points_lost, g.competency),
    )
    heatmap = None
    if body.include_heatmap:
        # Rounded in one numpy pass (a Python round() per cell took over a second at 100,000
        # people); only rows with an unrated competency need a second look for NaN -> null.
        rounded = np.round(gaps, 6).tolist()
        values: list[list[float | None]] = rounded
        for r in np.flatnonzero(np.isnan(gaps).any(axis=1)).tolist():
            values[r] = [None if math.isnan(v) else v for v in rounded[r]]
        heatmap = s.Heatmap.model_construct(
            competencies=[c.key for c in fw.competencies], subject_refs=subjects.refs, values=values
        )
    response = s.CohortResponse(
        framework=FrameworkRef(key=fw.key, version=fw.version),
        as_of=as_of,
        target_level=present.level_ref(fw, body.target_level),
        unknown_refs=unknown,
        skipped=skipped,
        summary=s.CohortSummary(
            subjects=n,
            rated_subjects=int(rated.sum()),
            mean_coverage=float(result.overall_coverage.mean()) if n else 0.0,
            mean_level_index=float(result.level_index.mean()) if n else 0.0,
            level_distribution=distribution,
            biggest_gaps=biggest,
            promotion_ready=promotion_ready,
            below_level=below_level,
        ),
        people=None,
        heatmap=heatmap,
    )
    return CohortAnswer(response, people if body.include_people else None)
