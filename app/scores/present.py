"""Turn the engine's plain results into API models (no I/O, no decisions)."""

import uuid
from dataclasses import dataclass, replace
from datetime import datetime

from app.assessments.schemas import FrameworkRef
from app.scores import schemas as s
from app.scoring import Evaluation, Framework, GapAnalysis, Plan, ScoringSettings, window_start
from app.scoring.calibration import SubjectAdjustment

INDEX_FORMULA = "rank(attained level, 0 if none) + min(0.99, readiness for the next level); the top level scores its rank"
CONFIDENCE_FORMULA = "coverage × (1 − 0.5 ^ distinct raters)"
READINESS_FORMULA = "Σ weight × attainment / Σ weight, attainment = min(1, actual / required)"


def merge_settings(base: ScoringSettings, override: s.SettingsOverride | None) -> ScoringSettings:
    """The framework's settings with a request's overrides applied."""
    if override is None:
        return base
    changes = override.model_dump(exclude_none=True)
    if "role_weights" in changes:
        changes["role_weights"] = {**base.role_weights, **changes["role_weights"]}
    return replace(base, **changes)


@dataclass(frozen=True, slots=True)
class Adjustment:
    """Recorded rater effects for one person's score: the framework's mode, the estimate used
    (None: none recorded, scored as rated) and the adjusted ratings."""

    mode: str  # preview | apply
    estimate_id: uuid.UUID | None
    recorded_at: datetime | None
    as_of: datetime | None
    result: SubjectAdjustment | None


def adjustment_note(adj: Adjustment) -> s.RaterAdjustmentNote:
    """The explanation of what the recorded rater effects did to each rating."""
    if adj.result is None:
        note = (
            "No rater-effect estimate is recorded for this framework version: scored as rated "
            "(as with rater_adjustment none). An admin records one with POST "
            "/v1/calibration/rater-effects and record: true."
        )
    elif adj.mode == "apply":
        note = (
            "The score uses each rating's value: rated − the rater's recorded effect, clamped "
            "to the scale; ratings not adjusted say why."
        )
    else:
        note = (
            "The score uses the ratings as rated; fair is the same score with each rating's "
            "value (rated − the rater's recorded effect, clamped to the scale)."
        )
    return s.RaterAdjustmentNote(
        mode=adj.mode,  # type: ignore[arg-type]
        estimate_id=str(adj.estimate_id) if adj.estimate_id else None,
        estimate_recorded_at=adj.recorded_at,
        estimate_as_of=adj.as_of,
        group=adj.result.group if adj.result else None,
        note=note,
        ratings=[
            s.AdjustedRatingRead(
                competency=n.rating.competency,
                rater_ref=n.rating.rater_ref,
                role=n.rating.role,
                assessed_at=n.rating.assessed_at,
                rated=n.rating.proficiency,
                effect=n.effect,
                value=n.value,
                clamped=n.clamped,
                reason=n.reason,  # type: ignore[arg-type]
            )
            for n in (adj.result.notes if adj.result else ())
        ],
    )


def fair_score(fw: Framework, ev: Evaluation) -> s.FairScore:
    """The adjusted evaluation's headline numbers (rater_adjustment preview)."""
    return s.FairScore(
        attained_level=level_ref(fw, ev.attained_level),
        next_level=level_ref(fw, ev.next_level),
        level_index=ev.level_index,
        readiness_next=ev.level(ev.next_level).readiness if ev.next_level else None,
        values={c.key: ev.values.get(c.key) for c in fw.competencies},
    )


def level_ref(fw: Framework, key: str | None) -> s.LevelRef | None:
    """A level as every response names one: key, name, rank and track (None stays None)."""
    if key is None:
        return None
    level = next(lv for lv in fw.levels if lv.key == key)
    return s.LevelRef(key=level.key, name=level.name, rank=level.rank, track=level.track)


def _framework_ref(fw: Framework) -> FrameworkRef:
    return FrameworkRef(key=fw.key, version=fw.version)


def score(
    fw: Framework,
    ev: Evaluation,
    subject_ref: str | None,
    as_of: datetime | None,
    adjustment: Adjustment | None = None,
    fair: Evaluation | None = None,
) -> s.ScoreRead:
    """The score response, with the explanation that reproduces it (and, for a framework with
    rater_adjustment, the adjustment and the fair score beside it)."""
    agg = ev.aggregation
    competencies = []
    contributions: dict[str, list[s.ContributionRead]] = {}
    for comp in fw.competencies:
        cv = agg.values.get(comp.key) if agg else None
        value = ev.values.get(comp.key)
        competencies.append(
            s.CompetencyScore(
                key=comp.key,
                name=comp.name,
                area=comp.area,
                value=value,
                raters=cv.raters if cv else 0,
                spread=cv.spread if cv else 0.0,
                calibrated=cv.calibrated if cv else False,
                self_vs_others=cv.self_vs_others if cv else None,
                blind_spot=cv.blind_spot if cv else False,
                hidden_strength=cv.hidden_strength if cv else False,
            )
        )
        if cv and cv.contributions:
            contributions[comp.key] = [
                s.ContributionRead(
                    rater_ref=c.rater_ref,
                    role=c.role,
                    proficiency=c.proficiency,
                    weight=c.weight,
                    assessed_at=c.assessed_at,
                )
                for c in cv.contributions
            ]
    levels = [
        s.LevelScore(
            level=lr.level,
            name=lr.name,
            rank=lr.rank,
            track=lr.track,
            readiness=lr.readiness,
            coverage=lr.coverage,
            meets=lr.meets,
            reasons=list(lr.reasons),
            critical_unmet=list(lr.critical_unmet),
            below_tolerance=list(lr.below_tolerance),
        )
        for lr in ev.levels
    ]
    explained = [
        s.LevelExplanation(
            level=lr.level,
            weight_total=sum(w.weight for w in lr.weights),
            weights=[
                s.LevelWeightRead(
                    competency=w.competency,
                    area=w.area,
                    weight=w.weight,
                    required=w.required,
                    actual=w.actual,
                    attainment=w.attainment,
                    critical=w.critical,
                )
                for w in lr.weights
            ],
            formula=READINESS_FORMULA,
        )
        for lr in ev.levels
    ]
    settings = ev.settings
    readiness_next = ev.level(ev.next_level).readiness if ev.next_level else None
    return s.ScoreRead(
        subject_ref=subject_ref,
        framework=_framework_ref(fw),
        track=ev.track,
        as_of=as_of,
        attained_level=level_ref(fw, ev.attained_level),
        next_level=level_ref(fw, ev.next_level),
        level_index=ev.level_index,
        readiness_next=readiness_next,
        coverage=ev.coverage,
        confidence=ev.confidence,
        levels=levels,
        competencies=competencies,
        fair=fair_score(fw, fair) if fair is not None else None,
        explanation=s.Explanation(
            settings=s.SettingsRead(
                readiness_threshold=settings.readiness_threshold,
                gap_tolerance=settings.gap_tolerance,
                gap_tolerance_mode=settings.gap_tolerance_mode,
                window_days=settings.window_days,
                role_weights=dict(settings.role_weights),
                rater_adjustment=settings.rater_adjustment,
            ),
            window_start=window_start(as_of, settings.window_days) if as_of else None,
            as_of=as_of,
            path=list(ev.path),
            distinct_raters=agg.distinct_raters if agg else 0,
            ignored_competencies=list(agg.ignored_competencies) if agg else [],
            overrides=dict(ev.overrides),
            contributions=contributions,
            levels=explained,
            level_index_formula=INDEX_FORMULA,
            confidence_formula=CONFIDENCE_FORMULA,
            competency_maps=[
                s.CompetencyMapNote(
                    version=carried.version,
                    entries=[
                        s.MapEntryNote(
                            kind=e.kind,  # type: ignore[arg-type]
                            from_=list(e.sources),
                            to=list(e.targets),
                            weights=dict(e.weights),
                        )
                        for e in carried.entries
                    ],
                )
                for carried in fw.carried_maps
            ],
            rater_adjustment=adjustment_note(adjustment) if adjustment else None,
        ),
    )


def fair_gaps(ga: GapAnalysis | None) -> s.FairGaps | None:
    """The adjusted gap analysis's headline numbers (rater_adjustment preview)."""
    if ga is None:
        return None
    return s.FairGaps(
        readiness=ga.readiness,
        meets=ga.meets,
        gap_count=ga.gap_count,
        critical_gap_count=ga.critical_gap_count,
    )


def gaps(
    fw: Framework, ga: GapAnalysis, subject_ref: str | None, fair: GapAnalysis | None = None
) -> s.GapsRead:
    """The gap analysis response."""
    return s.GapsRead(
        subject_ref=subject_ref,
        framework=_framework_ref(fw),
        target_level=level_ref(fw, ga.target_level),
        readiness=ga.readiness,
        meets=ga.meets,
        reasons=list(ga.reasons),
        gap_count=ga.gap_count,
        critical_gap_count=ga.critical_gap_count,
        items=[
            s.GapItemRead(
                competency=i.competency,
                name=i.name,
                area=i.area,
                required=i.required,
                actual=i.actual,
                gap_points=i.gap_points,
                readiness_points_lost=i.readiness_points_lost,
                critical=i.critical,
                status=i.status,
                indicators_not_shown=list(i.indicators_not_shown),
                uncertain=i.uncertain,
                raters=i.raters,
                spread=i.spread,
            )
            for i in ga.items
        ],
        strengths=list(ga.strengths),
        blind_spots=list(ga.blind_spots),
        hidden_strengths=list(ga.hidden_strengths),
        fair=fair_gaps(fair),
    )


def plan(
    fw: Framework,
    p: Plan,
    subject_ref: str | None,
    excluded: list[str],
    fair: GapAnalysis | None = None,
) -> s.PlanRead:
    """The development plan response."""
    iris = {a.key: a.iri for a in fw.activities}
    return s.PlanRead(
        subject_ref=subject_ref,
        framework=_framework_ref(fw),
        target_level=level_ref(fw, p.target_level),
        readiness_now=p.readiness_now,
        meets_now=p.meets_now,
        steps=[
            s.PlanStepRead(
                activity=st.activity,
                title=st.title,
                kind=st.kind,
                develops=dict(st.develops),
                effort_hours=st.effort_hours,
                cumulative_hours=st.cumulative_hours,
                readiness_before=st.readiness_before,
                readiness_after=st.readiness_after,
                meets_after=st.meets_after,
                url=st.url,
                iri=iris.get(st.activity),
            )
            for st in p.steps
        ],
        projected_readiness=p.projected_readiness,
        target_met=p.target_met,
        total_hours=p.total_hours,
        stop_reason=p.stop_reason,
        message=p.message,
        excluded_activities=excluded,
        fair=fair_gaps(fair),
    )
