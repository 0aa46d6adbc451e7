"""Scoring use cases: load a subject's ratings, run the pure engine, shape the answer.

The stored path (a subject's assessments) and the stateless path (ratings in the request) meet
in ``run``, so identical inputs give identical answers whichever way they arrive.
"""

from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.assessments import repository as assessments_repo
from app.assessments.schemas import FrameworkRef
from app.audit.repository import record
from app.auth.principal import Principal
from app.errors import Conflict, FieldError, InvalidInput
from app.frameworks import service as frameworks
from app.models import CompletedActivity, Subject, utcnow
from app.scores import present
from app.scores import schemas as s
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
)
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
    return Outcome(ev, ga, pl)


@dataclass(frozen=True, slots=True)
class SubjectData:
    subject: Subject
    framework: Framework
    ratings: list[Rating]
    completed: list[str]


async def load_subject(
    session: AsyncSession,
    principal: Principal,
    ref: str,
    framework: FrameworkRef | None,
    *,
    with_completed: bool = True,
) -> SubjectData:
    """A subject with every rating made against any version of the chosen framework."""
    subject = await subjects.get(session, principal, ref)
    if framework is None:
        latest = await assessments_repo.latest_framework_of(
            session, principal.tenant_id, subject.id
        )
        if latest is None:
            raise InvalidInput(
                f"Subject {ref!r} has no assessments yet; name the framework to score against.",
                errors=[
                    FieldError(
                        loc=["query", "framework"],
                        msg="required when the subject has no assessments",
                        type="missing",
                    )
                ],
            )
        framework = FrameworkRef(key=latest.key, version=None)
    compiled, owner = await frameworks.compiled_for_scoring(
        session, principal, framework.key, framework.version
    )
    rows = await assessments_repo.subject_ratings(session, principal.tenant_id, subject.id, owner)
    ratings = [
        Rating(
            competency=key,
            proficiency=float(value),
            rater_ref=rater,
            role=role,
            assessed_at=at,
            sequence=sequence,
        )
        for key, value, rater, role, at, sequence in rows
    ]
    completed = (
        [c.activity_key for c in await completed_activities(session, principal, subject)]
        if with_completed
        else []
    )
    return SubjectData(subject, compiled, ratings, completed)


async def completed_activities(
    session: AsyncSession, principal: Principal, subject: Subject
) -> list[CompletedActivity]:
    stmt = (
        select(CompletedActivity)
        .where(
            CompletedActivity.tenant_id == principal.tenant_id,
            CompletedActivity.subject_id == subject.id,
        )
        .order_by(col(CompletedActivity.completed_at), col(CompletedActivity.activity_key))
    )
    return list((await session.exec(stmt)).all())


async def score_subject(
    session: AsyncSession,
    principal: Principal,
    ref: str,
    *,
    framework: FrameworkRef | None,
    as_of: datetime | None,
    track: str | None,
    target_level: str | None = None,
    budget_hours: float | None = None,
    max_steps: int | None = None,
    overrides: Mapping[str, float] | None = None,
    settings: s.SettingsOverride | None = None,
    query: bool = True,
    parts: Parts = "plan",
) -> tuple[SubjectData, Outcome, datetime]:
    """Everything the score, gaps, recommendations and what-if routes need (and no more)."""
    data = await load_subject(session, principal, ref, framework, with_completed=parts == "plan")
    moment = as_of or utcnow()
    outcome = run(
        data.framework,
        data.ratings,
        as_of=moment,
        track=track if track is not None else data.subject.track,
        settings=present.merge_settings(data.framework.settings, settings),
        overrides=overrides,
        target_level=target_level,
        budget_hours=budget_hours,
        max_steps=max_steps,
        completed=data.completed,
        query=query,
        parts=parts,
    )
    return data, outcome, moment


async def history(
    session: AsyncSession,
    principal: Principal,
    ref: str,
    *,
    framework: FrameworkRef | None,
    track: str | None,
) -> s.HistoryRead:
    """The score as of each assessment date, and the level index's velocity."""
    data = await load_subject(session, principal, ref, framework)
    chosen_track = track if track is not None else data.subject.track
    moments = sorted({r.assessed_at for r in data.ratings})
    points = []
    with engine_errors({UnknownTrack: ["query", "track"]}):
        for moment in moments:
            ev = evaluate(data.framework, data.ratings, as_of=moment, track=chosen_track)
            points.append(
                s.HistoryPoint(
                    as_of=moment,
                    attained_level=present.level_ref(data.framework, ev.attained_level),
                    next_level=present.level_ref(data.framework, ev.next_level),
                    level_index=ev.level_index,
                    readiness_next=ev.level(ev.next_level).readiness if ev.next_level else None,
                    confidence=ev.confidence,
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
    outcome = run(
        fw,
        ratings,
        as_of=moment,
        track=body.track,
        settings=present.merge_settings(fw.settings, body.settings),
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
        score=present.score(fw, outcome.evaluation, ref, as_of),
        gaps=present.gaps(fw, outcome.gaps, ref),
        plan=present.plan(fw, outcome.plan, ref, excluded),
    )


async def add_completed(
    session: AsyncSession, principal: Principal, ref: str, body: s.CompletedActivityCreate
) -> CompletedActivity:
    """Record that a subject completed a development activity (it is not recommended again)."""
    subject = await subjects.get(session, principal, ref)
    existing = await completed_activities(session, principal, subject)
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
