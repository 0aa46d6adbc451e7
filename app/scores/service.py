"""Scoring use cases: load a subject's ratings, run the pure engine, shape the answer.

The stored path (a subject's assessments) and the stateless path (ratings in the request) meet
in ``run``, so identical inputs give identical answers whichever way they arrive.
"""

import json
import time
import uuid
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

import numpy as np
from pydantic import TypeAdapter
from sqlmodel.ext.asyncio.session import AsyncSession

from app.assessments import repository as assessments_repo
from app.assessments.schemas import FrameworkRef
from app.audit.repository import record
from app.auth.principal import Principal
from app.calibration import estimates_repository as estimates
from app.errors import Conflict, FieldError, InvalidInput, NotFound
from app.frameworks import evolution
from app.frameworks import service as frameworks
from app.models import CompletedActivity, utcnow
from app.observability import metrics
from app.scores import present
from app.scores import repository as repo
from app.scores import schemas as s
from app.scores.memo import (
    SENTINEL,
    Entry,
    Fingerprint,
    ScoreMemo,
    Template,
    Variant,
    etag_matches,
    make_etag,
    stable_span,
)
from app.scoring import (
    Evaluation,
    Framework,
    GapAnalysis,
    Plan,
    Rating,
    ScoringError,
    ScoringSettings,
    UnknownCompetency,
    UnknownLevel,
    UnknownTrack,
    analyze_gaps,
    evaluate,
    recommend,
    velocity_per_90_days,
    window_start,
)
from app.scoring.calibration import adjust_cohort_ratings, adjust_subject_ratings
from app.scoring.cohort import CohortRatings
from app.scoring.engine import format_number
from app.subjects import service as subjects


@contextmanager
def engine_errors(where: Mapping[type[ScoringError], list[str | int]]) -> Iterator[None]:
    """Turn the engine's domain errors into 422 problems pointing at the input that caused them."""
    try:
        yield
    except ScoringError as exc:
        fallback: list[str | int] = ["body"]
        loc = next((v for k, v in where.items() if isinstance(exc, k)), fallback)
        raise InvalidInput(
            str(exc), errors=[FieldError(loc=loc, msg=str(exc), type="unknown_reference")]
        ) from None


Parts = Literal["score", "gaps", "plan"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """The evaluation, and the gaps and plan when they were asked for."""

    evaluation: Evaluation
    gaps: GapAnalysis | None
    plan: Plan | None
    # A framework with rater_adjustment: what the recorded effects did, and with preview the
    # evaluation of the adjusted ratings beside the plain one.
    adjustment: present.Adjustment | None = None
    fair: Evaluation | None = None
    fair_gaps: GapAnalysis | None = None


def run(
    fw: Framework,
    ratings: Sequence[Rating],
    *,
    as_of: datetime,
    track: str | None,
    settings: ScoringSettings | None = None,
    overrides: Mapping[str, float] | None = None,
    target_level: str | None = None,
    budget_hours: float | None = None,
    max_steps: int | None = None,
    completed: Collection[str] = (),
    query: bool = True,
    parts: Parts = "plan",
) -> Outcome:
    """Score, gaps and plan for one subject's ratings (pure; both API paths call this)."""
    prefix = "query" if query else "body"
    where: dict[type[ScoringError], list[str | int]] = {
        UnknownTrack: [prefix, "track"],
        UnknownLevel: [prefix, "target_level"],
        UnknownCompetency: ["body", "changes"],
    }
    started = time.perf_counter()
    with engine_errors(where):
        ev = evaluate(fw, ratings, as_of=as_of, track=track, settings=settings, overrides=overrides)
        # Each route computes only what it returns: a plan rescans every activity per step.
        ga = analyze_gaps(fw, ev, target_level=target_level) if parts != "score" else None
        pl = (
            recommend(
                fw,
                ev,
                target_level=target_level,
                budget_hours=budget_hours,
                max_steps=max_steps,
                completed_activities=completed,
            )
            if parts == "plan"
            else None
        )
    metrics.record_scoring("subject", time.perf_counter() - started)
    return Outcome(ev, ga, pl)


def run_adjusted(
    fw: Framework,
    ratings: Sequence[Rating],
    adjustment: present.Adjustment | None,
    *,
    as_of: datetime,
    track: str | None,
    settings: ScoringSettings | None = None,
    overrides: Mapping[str, float] | None = None,
    target_level: str | None = None,
    budget_hours: float | None = None,
    max_steps: int | None = None,
    completed: Collection[str] = (),
    query: bool = True,
    parts: Parts = "plan",
) -> Outcome:
    """``run`` on the ratings as the framework's rater_adjustment wants them: as rated (none,
    or no estimate recorded), adjusted (apply), or as rated with the adjusted score beside
    (preview)."""

    def go(chosen: Sequence[Rating], what: Parts) -> Outcome:
        return run(
            fw,
            chosen,
            as_of=as_of,
            track=track,
            settings=settings,
            overrides=overrides,
            target_level=target_level,
            budget_hours=budget_hours,
            max_steps=max_steps,
            completed=completed,
            query=query,
            parts=what,
        )

    if adjustment is None or adjustment.result is None:
        return replace(go(ratings, parts), adjustment=adjustment)
    adjusted = adjustment.result.ratings
    if adjustment.mode == "apply":
        return replace(go(adjusted, parts), adjustment=adjustment)
    fair = go(adjusted, "score" if parts == "score" else "gaps")
    return replace(
        go(ratings, parts), adjustment=adjustment, fair=fair.evaluation, fair_gaps=fair.gaps
    )


async def rater_adjustment(
    session: AsyncSession,
    principal: Principal,
    fw: Framework,
    estimate: str | None,
    ratings: Sequence[Rating],
    window: tuple[datetime, datetime] | None,
) -> present.Adjustment | None:
    """The recorded rater effects a framework with rater_adjustment scores by: the estimate the
    score inputs named (the version's latest), applied to this person's ratings (their group
    voted over the ratings inside ``window``)."""
    mode = fw.settings.rater_adjustment
    if mode == "none":
        return None
    row = None
    if estimate is not None:
        row = await estimates.get(session, principal.tenant_id, uuid.UUID(estimate.split(":")[0]))
    if row is None:
        return present.Adjustment(mode, None, None, None, None)
    effects = await estimates.effects_of(
        session, principal.tenant_id, row.id, {(r.role, r.rater_ref) for r in ratings}
    )
    result = adjust_subject_ratings(ratings, effects, fw.scale_min, fw.scale_max, window)
    return present.Adjustment(mode, row.id, row.recorded_at, row.as_of, result)


@dataclass(frozen=True, slots=True)
class SubjectData:
    subject_id: uuid.UUID
    track: str | None
    framework: Framework
    ratings: list[Rating]
    completed: list[str]
    estimate: str | None = None  # the version's latest rater-effect estimate ("id:revision")
    fingerprint: Fingerprint | None = None  # what the data was read from (see memo.py)


@dataclass(frozen=True, slots=True)
class Loaded:
    """A subject's score inputs (ratings None when the known fingerprint still held) and the
    compiled framework version they are scored against."""

    inputs: repo.ScoreInputs
    version: repo.VersionRow
    framework: Framework


def _no_assessments(ref: str) -> InvalidInput:
    return InvalidInput(
        f"Subject {ref!r} has no assessments yet; name the framework to score against.",
        errors=[
            FieldError(
                loc=["query", "framework"],
                msg="required when the subject has no assessments",
                type="missing",
            )
        ],
    )


async def load_inputs(
    session: AsyncSession,
    principal: Principal,
    ref: str,
    framework: FrameworkRef | None,
    known: Fingerprint | None = None,
) -> Loaded:
    """The subject, its fingerprint, its ratings and the version to score against, in one
    statement; errors (and a subject whose latest framework is not recorded) take more."""
    key = framework.key if framework else None
    number = framework.version if framework else None
    inputs = await repo.score_inputs(session, principal.tenant_id, ref, key, number, known)
    if inputs is None:
        await subjects.get(session, principal, ref)  # raises the 404
        raise Conflict(f"Subject {ref!r} changed while it was read; retry.")
    if inputs.version is None and framework is None:
        # The trigger that records the latest framework runs on Postgres only (and a subject
        # left unfilled by its migration has none yet): ask the assessments themselves.
        latest = await assessments_repo.latest_framework_of(
            session, principal.tenant_id, inputs.subject_id
        )
        if latest is None:
            raise _no_assessments(ref)
        key = latest.key
        inputs = await repo.score_inputs(session, principal.tenant_id, ref, key, None, known)
        if inputs is None:
            await subjects.get(session, principal, ref)
            raise Conflict(f"Subject {ref!r} changed while it was read; retry.")
    if inputs.version is None:
        assert key is not None
        await frameworks.resolve(session, principal, key, number)  # raises the precise 404
        raise NotFound(f"No framework {key!r} is visible to this tenant.")
    v = inputs.version
    compiled = await frameworks.compiled_version(session, v.owner, v.id, v.revision, v.number)
    if inputs.ratings is not None:  # ratings of older versions go through their maps
        chain = await evolution.chain_for(
            session, v.owner, v.framework_id, v.id, v.revision, v.number
        )
        carried = await evolution.subject_ratings(
            session, principal.tenant_id, inputs.subject_id, v.owner, chain, inputs.ratings
        )
        inputs = replace(inputs, ratings=carried)
        if chain.maps:  # the explanation names the maps
            compiled = replace(compiled, carried_maps=chain.maps)
    return Loaded(inputs, v, compiled)


def _complete(inputs: repo.ScoreInputs) -> Loaded | None:
    """What ``load_inputs`` would make of inputs read alone, when it would read nothing more:
    the compiled version and its chain in this worker's memory, no older version's ratings to
    carry, no recorded rater effects to apply. None otherwise."""
    v = inputs.version
    if v is None or inputs.ratings is None:
        return None
    compiled = frameworks.remembered(v.id, v.revision)
    chain = evolution.remembered_chain(v.id, v.revision)
    if compiled is None or chain is None or chain.carried:
        return None
    if compiled.settings.rater_adjustment != "none" and inputs.estimate is not None:
        return None
    if chain.maps:  # the explanation names the maps
        compiled = replace(compiled, carried_maps=chain.maps)
    return Loaded(inputs, v, compiled)


async def load_subject(
    session: AsyncSession,
    principal: Principal,
    ref: str,
    framework: FrameworkRef | None,
    *,
    with_completed: bool = True,
) -> SubjectData:
    """A subject with every rating made against any version of the chosen framework."""
    loaded = await load_inputs(session, principal, ref, framework)
    assert loaded.inputs.ratings is not None  # no known fingerprint: always sent
    completed = (
        [
            c.activity_key
            for c in await completed_activities(session, principal, loaded.inputs.subject_id)
        ]
        if with_completed
        else []
    )
    return SubjectData(
        loaded.inputs.subject_id,
        loaded.inputs.track,
        loaded.framework,
        loaded.inputs.ratings,
        completed,
        loaded.inputs.estimate,
        loaded.inputs.fingerprint,
    )


async def completed_activities(
    session: AsyncSession, principal: Principal, subject_id: uuid.UUID
) -> list[CompletedActivity]:
    """A subject's completed activities, in the order they were completed."""
    return await repo.completed_activities(session, principal.tenant_id, subject_id)


async def outcome_of(
    session: AsyncSession,
    principal: Principal,
    data: SubjectData,
    moment: datetime,
    *,
    track: str | None,
    target_level: str | None = None,
    budget_hours: float | None = None,
    max_steps: int | None = None,
    overrides: Mapping[str, float] | None = None,
    settings: s.SettingsOverride | None = None,
    query: bool = True,
    parts: Parts = "plan",
) -> Outcome:
    """The engine's answer for a subject's loaded data at ``moment``, rater effects applied."""
    merged = present.merge_settings(data.framework.settings, settings)
    adjustment = await rater_adjustment(
        session,
        principal,
        data.framework,
        data.estimate,
        data.ratings,
        (window_start(moment, merged.window_days), moment),
    )
    return run_adjusted(
        data.framework,
        data.ratings,
        adjustment,
        as_of=moment,
        track=track if track is not None else data.track,
        settings=merged,
        overrides=overrides,
        target_level=target_level,
        budget_hours=budget_hours,
        max_steps=max_steps,
        completed=data.completed,
        query=query,
        parts=parts,
    )


@dataclass(frozen=True, slots=True)
class Prepared:
    """A conditional read's loaded data, its moment and the ETag of what it would answer."""

    data: SubjectData
    moment: datetime
    etag: str


async def prepare(
    session: AsyncSession,
    principal: Principal,
    ref: str,
    query: "ScoreQuery",
    read: Literal["gaps", "recommendations", "history"],
    *chosen: object,
) -> Prepared:
    """Load what a gaps, recommendations or history read is computed from, and name it by an
    ETag before anything is computed, so a caller whose If-None-Match holds costs the read alone.

    The ETag is made from the fingerprint (subject, assessments, framework version, recorded
    rater effects), the read's name, its framework, version and track, ``chosen`` (the read's
    own parameters), the completed activities for the plan, and the span of moments in which
    the same ratings count (the history has no moment: the span is left out).
    """
    plan = read == "recommendations"
    data = await load_subject(session, principal, ref, query.framework, with_completed=plan)
    assert data.fingerprint is not None  # a loaded subject always has its version
    moment = query.as_of or utcnow()
    fw = query.framework
    variant: list[object] = [read, fw.key if fw else None, fw.version if fw else None]
    variant += [query.track, *chosen]
    if plan:
        variant.append(json.dumps(sorted(data.completed)))
    span = (
        None
        if read == "history"
        else stable_span(data.ratings, data.framework.settings.window_days, moment)
    )
    return Prepared(data, moment, make_etag(data.fingerprint, variant, span))


_SCORE = TypeAdapter(s.ScoreRead)


def render(content: s.ScoreRead) -> bytes:
    """A score response's JSON body (the bytes the route sends)."""
    return _SCORE.dump_json(content)


@dataclass(frozen=True, slots=True)
class ScoreQuery:
    """What a score read may choose: framework (and version), moment and track."""

    framework: FrameworkRef | None
    as_of: datetime | None
    track: str | None


@dataclass(frozen=True, slots=True)
class ScoreAnswer:
    """A rendered score (None when the caller's If-None-Match still holds), its ETag, and
    whether it came from memory (``hit``), was computed (``miss``) or needed neither (``304``)."""

    body: bytes | None
    etag: str
    outcome: Literal["hit", "miss", "not-modified"]


async def read_score(
    session: AsyncSession,
    principal: Principal,
    ref: str,
    query: ScoreQuery,
    memo: ScoreMemo,
    if_none_match: str | None = None,
) -> ScoreAnswer:
    """The score response, rendered anew only when its inputs changed since it was last made.

    One statement reads the subject's fingerprint, and its ratings only when the remembered
    rendering (if any) no longer matches; the ETag names the fingerprint and the span of moments
    over which the same ratings count, so an unchanged score answers If-None-Match with 304.
    """
    moment = query.as_of or utcnow()
    key = (principal.tenant_id, ref)
    fw = query.framework
    variant: Variant = (fw.key if fw else None, fw.version if fw else None, query.track)
    entry = memo.get(key, variant, moment) if memo.enabled else None
    known = entry.fingerprint if entry else None
    # The statement alone (one round trip, and the whole unit of work when it can be sent so):
    # enough when the remembered rendering still holds, or when the score needs nothing else
    # read. Otherwise every read runs on the request's transaction, in one snapshot.
    alone = await repo.score_inputs_alone(
        session, principal.tenant_id, ref, variant[0], variant[1], known
    )
    if entry is not None and alone is not None and alone.fingerprint == entry.fingerprint:
        return _remembered(memo, entry, moment, if_none_match)
    loaded = _complete(alone) if alone is not None else None
    if loaded is None:
        try:
            loaded = await load_inputs(session, principal, ref, fw, known)
        except NotFound:
            memo.forget(key)  # erased (or never there): keep nothing about it
            raise
    inputs = loaded.inputs
    fingerprint = inputs.fingerprint
    assert fingerprint is not None
    if entry is not None and entry.fingerprint == fingerprint:
        return _remembered(memo, entry, moment, if_none_match)
    if memo.enabled:
        memo.count(hit=False)
    assert inputs.ratings is not None  # sent whenever the known fingerprint did not hold
    settings = loaded.framework.settings
    span = stable_span(inputs.ratings, settings.window_days, moment)
    etag = make_etag(fingerprint, variant, span)
    if etag_matches(if_none_match, etag):
        return ScoreAnswer(None, etag, "not-modified")
    adjustment = await rater_adjustment(
        session,
        principal,
        loaded.framework,
        inputs.estimate,
        inputs.ratings,
        (window_start(moment, settings.window_days), moment),
    )
    outcome = run_adjusted(
        loaded.framework,
        inputs.ratings,
        adjustment,
        as_of=moment,
        track=query.track if query.track is not None else inputs.track,
        parts="score",
    )
    window = timedelta(days=settings.window_days)
    template = None
    if memo.enabled:
        rendered = render(scored(loaded.framework, outcome, ref, SENTINEL))
        template = Template.cut(rendered, window)
    if template is None:  # not remembered (or, with insane data, not cut): render at the moment
        body = render(scored(loaded.framework, outcome, ref, moment))
        return ScoreAnswer(body, etag, "miss")
    memo.put(key, variant, Entry(fingerprint, *span, etag, template, memo.clock()))
    return ScoreAnswer(template.fill(moment), etag, "miss")


def _remembered(
    memo: ScoreMemo, entry: Entry, moment: datetime, if_none_match: str | None
) -> ScoreAnswer:
    """The remembered rendering at ``moment``, or 304 when the caller's ETag still holds."""
    memo.count(hit=True)
    if etag_matches(if_none_match, entry.etag):
        return ScoreAnswer(None, entry.etag, "not-modified")
    return ScoreAnswer(entry.template.fill(moment), entry.etag, "hit")


@dataclass(frozen=True, slots=True)
class CohortAdjustment:
    """A cohort's ratings as its framework's rater_adjustment scores them, and the estimate."""

    ratings: CohortRatings
    mode: str
    estimate_id: uuid.UUID | None
    recorded_at: datetime | None

    @property
    def note(self) -> str:
        """What the estimate did to the cohort's numbers, in a sentence."""
        if self.estimate_id is None:
            return "No rater-effect estimate is recorded for this framework version: as rated."
        if self.mode == "apply":
            return "Each rating minus its rater's recorded effect, as each person's score uses."
        return "As rated (preview): each person's score carries the fair score beside it."


async def cohort_rater_adjustment(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    fw: Framework,
    version_id: uuid.UUID,
    ratings: CohortRatings,
    subject_ids: Sequence[uuid.UUID],
    window: tuple[datetime, datetime],
) -> CohortAdjustment | None:
    """The cohort's ratings with the version's latest recorded effects subtracted (apply; as
    rated with preview or none recorded), row by row as each person's score subtracts them."""
    mode = fw.settings.rater_adjustment
    if mode == "none":
        return None
    row = await estimates.latest(session, tenant_id, version_id)
    if row is None:
        return CohortAdjustment(ratings, mode, None, None)
    if mode != "apply":
        return CohortAdjustment(ratings, mode, row.id, row.recorded_at)
    names = await assessments_repo.rater_names(
        session, tenant_id, subject_ids, window[0], window[1]
    )
    known = await estimates.effects_of(session, tenant_id, row.id, names.values())
    ids, inverse = np.unique(ratings.rater, return_inverse=True)
    effect = np.full(ids.size, np.nan)
    group = np.full(ids.size, -1, dtype=np.int64)
    for i, rater_id in enumerate(ids.tolist()):
        found = known.get(names.get(rater_id, ("", "")))
        if found is not None and found.status == "ok" and found.effect is not None:
            effect[i] = found.effect
            group[i] = -1 if found.group is None else found.group
    adjusted = adjust_cohort_ratings(
        ratings, effect[inverse], group[inverse], fw.scale_min, fw.scale_max
    )
    return CohortAdjustment(adjusted, mode, row.id, row.recorded_at)


def scored(fw: Framework, outcome: Outcome, ref: str | None, as_of: datetime) -> s.ScoreRead:
    """The score response of an outcome, with its rater adjustment and fair score if any."""
    return present.score(fw, outcome.evaluation, ref, as_of, outcome.adjustment, outcome.fair)


async def history(
    session: AsyncSession, principal: Principal, ref: str, data: SubjectData, track: str | None
) -> s.HistoryRead:
    """The score as of each assessment date, and the level index's velocity."""
    chosen_track = track if track is not None else data.track
    moments = sorted({r.assessed_at for r in data.ratings})
    ratings: Sequence[Rating] = data.ratings
    adj = await rater_adjustment(
        session, principal, data.framework, data.estimate, data.ratings, None
    )
    fair_ratings: Sequence[Rating] | None = None
    if adj is not None and adj.result is not None:
        # Every point with the effects recorded now, the group voted over all the ratings.
        if adj.mode == "apply":
            ratings = adj.result.ratings
        else:
            fair_ratings = adj.result.ratings
    points = []
    with engine_errors({UnknownTrack: ["query", "track"]}):
        for moment in moments:
            ev = evaluate(data.framework, ratings, as_of=moment, track=chosen_track)
            fair = (
                evaluate(data.framework, fair_ratings, as_of=moment, track=chosen_track)
                if fair_ratings is not None
                else None
            )
            points.append(
                s.HistoryPoint(
                    as_of=moment,
                    attained_level=present.level_ref(data.framework, ev.attained_level),
                    next_level=present.level_ref(data.framework, ev.next_level),
                    level_index=ev.level_index,
                    readiness_next=ev.level(ev.next_level).readiness if ev.next_level else None,
                    confidence=ev.confidence,
                    fair_level_index=fair.level_index if fair else None,
                )
            )
    return s.HistoryRead(
        subject_ref=ref,
        framework=FrameworkRef(key=data.framework.key, version=data.framework.version),
        track=chosen_track,
        points=points,
        velocity_per_90_days=velocity_per_90_days([(p.as_of, p.level_index) for p in points]),
    )


def off_scale_ratings(
    ratings: Sequence[s.EvaluateRating], scale: Collection[int]
) -> list[FieldError]:
    """Ratings whose proficiency is not a value of the scale, refused as /v1/assessments does."""
    return [
        FieldError(
            loc=["body", "ratings", i, "proficiency"],
            msg=f"{format_number(r.proficiency)} is not on the scale {sorted(scale)}",
            type="out_of_scale",
        )
        for i, r in enumerate(ratings)
        if not (r.proficiency.is_integer() and int(r.proficiency) in scale)
    ]


def request_ratings(ratings: Sequence[s.EvaluateRating], moment: datetime) -> list[Rating]:
    """The engine's ratings for a stateless request. Every sequence is 0: a request has no
    creation order, so an exact (rater, competency, instant) tie keeps the higher proficiency
    and the order of the list never changes the answer."""
    return [
        Rating(
            competency=r.competency,
            proficiency=r.proficiency,
            rater_ref=r.rater_ref,
            role=r.rater_role,
            assessed_at=r.assessed_at or moment,
            sequence=0,
        )
        for r in ratings
    ]


async def evaluate_stateless(
    session: AsyncSession, principal: Principal, body: s.EvaluateRequest
) -> s.EvaluationRead:
    """Score ratings sent in the request against a stored framework; nothing is stored."""
    resolved = await frameworks.resolve(
        session, principal, body.framework.key, body.framework.version
    )
    fw = frameworks.compiled(resolved.version)
    errors = off_scale_ratings(body.ratings, frameworks.scale_values(resolved.version))
    if errors:
        raise InvalidInput(
            f"{len(errors)} rating(s) are not on the framework's scale; nothing was scored.",
            errors=errors,
        )
    moment = body.as_of or utcnow()
    ratings = request_ratings(body.ratings, moment)
    merged = present.merge_settings(fw.settings, body.settings)
    adjustment = None
    if fw.settings.rater_adjustment != "none":  # the raters' recorded effects, as stored scores
        latest = await estimates.latest(session, principal.tenant_id, resolved.version.id)
        adjustment = await rater_adjustment(
            session,
            principal,
            fw,
            estimates.marker(latest.id, latest.revision) if latest else None,
            ratings,
            (window_start(moment, merged.window_days), moment),
        )
    outcome = run_adjusted(
        fw,
        ratings,
        adjustment,
        as_of=moment,
        track=body.track,
        settings=merged,
        overrides=body.changes or None,
        target_level=body.target_level,
        budget_hours=body.budget_hours,
        max_steps=body.max_steps,
        completed=body.completed_activities,
        query=False,
    )
    return bundle(fw, outcome, None, moment, list(body.completed_activities))


def bundle(
    fw: Framework, outcome: Outcome, ref: str | None, as_of: datetime, excluded: list[str]
) -> s.EvaluationRead:
    """Score, gaps and plan in one response."""
    assert outcome.gaps is not None, "bundle needs the gaps"
    assert outcome.plan is not None, "bundle needs the plan"
    return s.EvaluationRead(
        score=scored(fw, outcome, ref, as_of),
        gaps=present.gaps(fw, outcome.gaps, ref, outcome.fair_gaps),
        plan=present.plan(fw, outcome.plan, ref, excluded, outcome.fair_gaps),
    )


async def add_completed(
    session: AsyncSession, principal: Principal, ref: str, body: s.CompletedActivityCreate
) -> CompletedActivity:
    """Record that a subject completed a development activity (it is not recommended again)."""
    subject = await subjects.get(session, principal, ref)
    existing = await completed_activities(session, principal, subject.id)
    if any(c.activity_key == body.activity for c in existing):
        raise Conflict(f"Activity {body.activity!r} is already recorded for {ref!r}.")
    row = CompletedActivity(
        tenant_id=principal.tenant_id,
        subject_id=subject.id,
        activity_key=body.activity,
        completed_at=body.completed_at,
    )
    session.add(row)
    record(
        session,
        principal,
        "activity.completed",
        "subject",
        str(subject.id),
        {"activity": body.activity},
    )
    await session.flush()
    return row
