"""Calibration use cases: rater effects over a cohort, with fair averages."""

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pydantic_core
from sqlmodel.ext.asyncio.session import AsyncSession

from app.assessments import repository as assessments_repo
from app.assessments.schemas import FrameworkRef
from app.audit.repository import record as audit
from app.auth.principal import Principal
from app.calibration import estimates_repository as estimates
from app.calibration import schemas as s
from app.cohorts import service as cohorts
from app.cohorts.schemas import CohortFilter
from app.frameworks import repository as frameworks_repo
from app.frameworks import service as frameworks
from app.models import utcnow
from app.scores import present
from app.scoring import Framework
from app.scoring.calibration import CalibrationThresholds, RaterEffects, adjusted_ratings
from app.scoring.calibration import rater_effects as fit_rater_effects
from app.scoring.cohort import score_cohort
from app.scoring.model import RATER_ROLES
from app.webhooks import events


def _number(value: float) -> float | None:
    """A float for JSON: NaN (undefined) becomes null."""
    return None if math.isnan(value) else float(value)


@dataclass(frozen=True, slots=True)
class RaterEffectsAnswer:
    """The rater-effects response with its long lists (raters, self ratings, fair averages per
    person) as plain rows: as model instances, 100,000 people took seconds to build and a few
    hundred MiB to hold, and plain rows with the same fields serialize to the same JSON."""

    response: s.RaterEffectsResponse  # its raters and people lists are empty; see the rows
    raters: list[dict[str, Any]]
    self_people: list[dict[str, Any]]
    fair_people: list[dict[str, Any]] | None

    def json(self) -> bytes:
        """The response as JSON, fields in the documented order."""
        r = self.response
        fields: dict[str, Any] = {
            name: getattr(r, name) for name in s.RaterEffectsResponse.model_fields
        }
        fields["raters"] = self.raters
        fields["self_ratings"] = {
            "effect": r.self_ratings.effect,
            "standard_error": r.self_ratings.standard_error,
            "people": self.self_people,
        }
        if r.fair_averages is not None:
            fields["fair_averages"] = {
                "competencies": r.fair_averages.competencies,
                "people": self.fair_people,
            }
        return pydantic_core.to_json(fields)

    def model(self) -> s.RaterEffectsResponse:
        """The response as the documented model (for CSV, sessions and the command line)."""
        r = self.response
        raters = [
            s.RaterEffect.model_construct(
                **{**row, "flags": [s.Flag.model_construct(**f) for f in row["flags"]]}
            )
            for row in self.raters
        ]
        people = [s.SelfRatingRow.model_construct(**row) for row in self.self_people]
        fair = None
        if r.fair_averages is not None:
            fair = s.FairAverages.model_construct(
                competencies=r.fair_averages.competencies,
                people=[s.FairPerson.model_construct(**row) for row in self.fair_people or []],
            )
        return r.model_copy(
            update={
                "raters": raters,
                "self_ratings": r.self_ratings.model_copy(update={"people": people}),
                "fair_averages": fair,
            }
        )


async def rater_effects(
    session: AsyncSession, principal: Principal, body: s.RaterEffectsRequest
) -> s.RaterEffectsResponse:
    """Fit the rater-effects model to a cohort's ratings and report it with its evidence."""
    return (await answer(session, principal, body)).model()


async def answer(
    session: AsyncSession,
    principal: Principal,
    body: s.RaterEffectsRequest,
    cohort: cohorts.LoadedCohort | None = None,
) -> RaterEffectsAnswer:
    """``rater_effects`` with its long lists as plain rows (the JSON route renders them once).

    ``cohort``: the cohort ``body`` names, when the caller has loaded it already (as of
    ``body.as_of``), so it is not read twice.
    """
    as_of = body.as_of or utcnow()
    if cohort is None:
        cohort = await cohorts.load(
            session,
            principal,
            body.framework,
            body.subject_refs,
            body.filter or CohortFilter(),
            as_of,
            body.window_days,
        )
    names = await assessments_repo.rater_names(
        session, principal.tenant_id, cohort.subjects.ids, cohort.window_start, as_of
    )
    fw = cohort.framework
    limits = CalibrationThresholds(**body.thresholds.model_dump())
    scale = [float(v) for v in range(fw.scale_min, fw.scale_max + 1)]
    result = fit_rater_effects(cohort.ratings, len(fw.competencies), scale, limits)
    fair_people = None
    if body.include_fair_averages:
        fair_people = _fair_averages(fw, cohort, result, as_of)
    refs = cohort.subjects.refs
    raters = _raters(names, result)
    raters.sort(key=lambda r: (r["group"] is None, r["group"] or 0, r["role"], r["rater_ref"]))
    window_days = (as_of - cohort.window_start).days
    recorded = None
    if body.record:
        recorded = await _record(session, principal, fw, as_of, window_days, result, raters)
    response = s.RaterEffectsResponse(
        framework=FrameworkRef(key=fw.key, version=fw.version),
        as_of=as_of,
        window_days=window_days,
        unknown_refs=cohort.unknown_refs,
        skipped=cohort.skipped,
        thresholds=body.thresholds,
        fit=s.Fit(
            sigma=_number(result.sigma),
            degrees_of_freedom=result.degrees_of_freedom,
            iterations=result.iterations,
            ratings=int(result.ratings.sum()),
            shared_ratings=int(result.shared_ratings.sum()),
        ),
        groups=[s.Group(group=g, raters=n) for g, n in enumerate(result.group_sizes)],
        raters=[],
        scale=result.scale,
        cohort_distribution=result.cohort_distribution.tolist(),
        agreement=[
            s.Agreement(
                competency=c.key,
                alpha=a.alpha,
                alpha_adjusted=a.alpha_adjusted,
                subjects=a.subjects,
                ratings=a.ratings,
            )
            for c, a in zip(fw.competencies, result.agreement, strict=True)
        ],
        self_ratings=s.SelfFacet(
            effect=result.self_effect, standard_error=result.self_effect_se, people=[]
        ),
        fair_averages=None
        if fair_people is None
        else s.FairAverages(competencies=[c.key for c in fw.competencies], people=[]),
        estimate=recorded,
    )
    self_people = [
        {
            "subject_ref": refs[row.subject],
            "mean_difference": row.mean_difference,
            "competencies": row.competencies,
            "inflated": row.inflated,
        }
        for row in result.self_ratings
    ]
    return RaterEffectsAnswer(response, raters, self_people, fair_people)


async def _record(
    session: AsyncSession,
    principal: Principal,
    fw: Framework,
    as_of: datetime,
    window_days: int,
    result: RaterEffects,
    raters: list[dict[str, Any]],
) -> s.RecordedEstimate:
    """Store the fit as the framework version's latest estimate, with an audit event. Under
    ``rater_adjustment: apply`` it changes the scores of the people its raters rated:
    readiness.changed subscribers hear of each one who moved."""
    resolved = await frameworks.resolve(session, principal, fw.key, fw.version)
    before = None
    watchers = (
        await events.readiness_watchers(session, principal.tenant_id)
        if fw.settings.rater_adjustment == "apply"
        else []
    )
    if watchers:
        versions = await frameworks_repo.versions_of(session, resolved.framework)
        people = await assessments_repo.subjects_rated_against(
            session, principal.tenant_id, resolved.version.tenant_id, [v.id for v in versions]
        )
        before = await events.snapshot(session, principal.tenant_id, resolved, people)
    row = await estimates.record(
        session,
        principal.tenant_id,
        framework_tenant_id=resolved.version.tenant_id,
        framework_version_id=resolved.version.id,
        framework_key=fw.key,
        framework_version=fw.version,
        as_of=as_of,
        window_days=window_days,
        sigma=_number(result.sigma),
        raters=[
            {
                "role": r["role"],
                "rater_ref": r["rater_ref"],
                "status": r["status"],
                "effect": r["effect"],
                "standard_error": r["standard_error"],
                "group": r["group"],
            }
            for r in raters
        ],
    )
    ok = sum(1 for r in raters if r["status"] == "ok")
    audit(
        session,
        principal,
        "calibration.estimate_recorded",
        "rater_effect_estimate",
        str(row.id),
        {"framework": fw.key, "version": fw.version, "raters": len(raters), "ok_raters": ok},
    )
    if before is not None:
        await events.readiness_changed(session, principal.tenant_id, before, watchers)
    return s.RecordedEstimate(id=str(row.id), recorded_at=row.recorded_at, raters=len(raters))


def _column(values: Any) -> list[float | None]:
    """A float column for JSON: NaN (undefined) becomes null."""
    return [None if math.isnan(v) else v for v in values.tolist()]


def _raters(names: dict[int, tuple[str, str]], result: RaterEffects) -> list[dict[str, Any]]:
    """The raters as plain response rows (``s.RaterEffect``'s fields), each column out of numpy
    once (tens of thousands of raters; the values come from the model, already valid)."""
    ids, roles, groups = result.rater.tolist(), result.role.tolist(), result.group.tolist()
    effect, se = _column(result.effect), _column(result.standard_error)
    mean_square = _column(result.mean_square)
    between, within = _column(result.between_ratio), _column(result.within_ratio)
    ratings, shared = result.ratings.tolist(), result.shared_ratings.tolist()
    subjects, distribution = result.subjects.tolist(), result.distribution.tolist()
    rows = []
    for i, rater_id in enumerate(ids):
        role, ref = names.get(rater_id, (RATER_ROLES[roles[i]], str(rater_id)))
        rows.append(
            {
                "rater_ref": ref,
                "role": role,
                "group": groups[i] if groups[i] >= 0 else None,
                "status": result.status[i],
                "effect": effect[i],
                "standard_error": se[i],
                "ratings": ratings[i],
                "shared_ratings": shared[i],
                "subjects": subjects[i],
                "mean_square": mean_square[i],
                "between_ratio": between[i],
                "within_ratio": within[i],
                "flags": [{"kind": f.kind, "evidence": f.evidence} for f in result.flags[i]],
                "distribution": distribution[i],
            }
        )
    return rows


def _rounded(values: Any) -> list[list[float | None]]:
    """Values as JSON rows, rounded to 6 decimals, NaN (unrated) as null."""
    rows: list[list[float | None]] = np.round(values, 6).tolist()  # no copy of each row
    for r in np.flatnonzero(np.isnan(values).any(axis=1)).tolist():
        rows[r] = [None if v is not None and math.isnan(v) else v for v in rows[r]]
    return rows


def _fair_averages(
    fw: Framework, cohort: cohorts.LoadedCohort, result: RaterEffects, as_of: datetime
) -> list[dict[str, Any]]:
    """Each person scored as rated and with every reported effect removed, by the engine, as
    plain rows (``s.FairPerson``'s fields)."""
    tracks = cohort.subjects.tracks
    raw = score_cohort(fw, cohort.ratings, as_of=as_of, tracks=tracks)
    raw_values, raw_index, raw_level = (
        _rounded(raw.values),
        raw.level_index.tolist(),
        raw.attained.tolist(),
    )
    del raw  # memory: its matrices are per person, and the second scoring needs as much
    fair = score_cohort(fw, adjusted_ratings(cohort.ratings, result), as_of=as_of, tracks=tracks)
    fair_values, fair_index, fair_level = (
        _rounded(fair.values),
        fair.level_index.tolist(),
        fair.attained.tolist(),
    )
    del fair
    # One level object per level, and plain lists out of numpy once: built per person through
    # validation, 100,000 people took seconds (the values come from the engine, already valid).
    levels = [present.level_ref(fw, lv.key) for lv in fw.levels]
    return [
        {
            "subject_ref": ref,
            "values": raw_values[i],
            "fair_values": fair_values[i],
            "level_index": raw_index[i],
            "fair_level_index": fair_index[i],
            "attained_level": levels[raw_level[i]] if raw_level[i] >= 0 else None,
            "fair_attained_level": levels[fair_level[i]] if fair_level[i] >= 0 else None,
        }
        for i, ref in enumerate(cohort.subjects.refs)
    ]
