"""HTTP routes that answer: where does this person stand, what is missing, what to do next."""

import json
import uuid
from datetime import datetime
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Query, Request, Response

from app import idempotency
from app.assessments.schemas import FrameworkRef
from app.auth.dependencies import AnalyticsRead, AssessmentsWrite, SessionDep
from app.charts import memo as chart_memo
from app.charts import negotiate, person
from app.errors import NotFound, error_responses
from app.idempotency import IdempotencyKey
from app.models import utcnow
from app.pagination import PageCursor, PageSize, decode_cursor, invalid_cursor, next_page
from app.schemas import KEY_MAX_LENGTH, KEY_PATTERN, Timestamp
from app.scores import present, service
from app.scores import schemas as s
from app.scores.memo import ScoreMemo, etag_matches
from app.subjects import service as subjects
from app.subjects.router import SubjectRef

router = APIRouter(tags=["scores"])
ERRORS = error_responses(401, 403, 404, 422, 503)

FrameworkKey = Annotated[
    str | None,
    Query(
        max_length=KEY_MAX_LENGTH,
        pattern=KEY_PATTERN,
        description="Framework key; default: the framework of the subject's latest assessment.",
    ),
]
Version = Annotated[int | None, Query(ge=1, le=1_000_000, description="Default: latest published.")]
AsOf = Annotated[Timestamp | None, Query(description="Score as of this moment; default now.")]
Track = Annotated[
    str | None,
    Query(
        max_length=KEY_MAX_LENGTH,
        pattern=KEY_PATTERN,
        description="Default: the subject's track.",
    ),
]
TargetLevel = Annotated[
    str | None,
    Query(
        max_length=KEY_MAX_LENGTH,
        pattern=KEY_PATTERN,
        description="Default: the next level on the subject's track; any level may be named.",
    ),
]


ChartLevel = Annotated[
    str | None,
    Query(
        max_length=KEY_MAX_LENGTH,
        pattern=KEY_PATTERN,
        description="Charts only: the level whose requirements the chart compares against "
        "(default: the next level). The JSON answer lists every level and ignores it.",
    ),
]


def framework_choice(
    framework: FrameworkKey = None, version: Version = None
) -> FrameworkRef | None:
    """The framework (and version) a read names; a version without a framework is ignored."""
    return FrameworkRef(key=framework, version=version) if framework else None


async def score_query(
    framework: FrameworkKey = None, version: Version = None, as_of: AsOf = None, track: Track = None
) -> service.ScoreQuery:
    """The query parameters the score, gaps and recommendations reads share."""
    return service.ScoreQuery(framework_choice(framework, version), as_of, track)


async def history_query(
    framework: FrameworkKey = None, version: Version = None, track: Track = None
) -> service.ScoreQuery:
    """The same parameters for the history, which has no moment of its own."""
    return service.ScoreQuery(framework_choice(framework, version), None, track)


ScoreParams = Annotated[service.ScoreQuery, Depends(score_query)]
HistoryParams = Annotated[service.ScoreQuery, Depends(history_query)]


IfNoneMatch = Annotated[
    str | None,
    Header(max_length=2000, description="An ETag of an earlier read: 304 if it still holds."),
]


def _etag_header(what: str, inputs: str) -> dict[str, Any]:
    return {
        "description": f"Weak ETag of this {what}: the same while its inputs ({inputs}) stay the "
        "same. Send it as If-None-Match to get 304 Not Modified while it holds.",
        "schema": {"type": "string"},
    }


_INPUTS = "the subject, its assessments, the framework version, the recorded rater effects"
_WINDOW = "and the ratings inside the window"


def conditional_responses(what: str, inputs: str) -> dict[int | str, dict[str, Any]]:
    """A conditional read's responses: JSON or charts with an ETag, and its 304."""
    etag = _etag_header(what, inputs)
    charts = negotiate.chart_responses()
    ok = charts[200]
    return {
        **charts,
        200: {**ok, "headers": {**ok["headers"], "ETag": etag}},
        304: {
            "description": f"The {what} is unchanged since the ETag sent as If-None-Match.",
            "headers": {"ETag": etag},
        },
        **ERRORS,
    }


def not_modified(etag: str, media: str, if_none_match: str | None) -> tuple[dict[str, str], bool]:
    """The headers of a conditional read's answer in ``media``, and whether it is a 304: the
    representation's own ETag, so no chart's tag answers for the JSON or another chart."""
    headers = {"ETag": negotiate.representation_etag(etag, media), **negotiate.VARY}
    return headers, etag_matches(negotiate.json_if_none_match(if_none_match, media), etag)


@router.get(
    "/v1/subjects/{ref}/score",
    summary="Score a subject",
    response_model=s.ScoreRead,
    responses=conditional_responses("score", f"{_INPUTS} {_WINDOW}"),
)
async def get_score(
    ref: SubjectRef,
    principal: AnalyticsRead,
    session: SessionDep,
    query: ScoreParams,
    request: Request,
    if_none_match: IfNoneMatch = None,
    level: ChartLevel = None,
) -> Response:
    """Readiness for every level, the attained level, the level index and confidence.

    `explanation` lists the settings, each rater's contribution and each level's weights, so
    every number can be recomputed by hand. The `ETag` changes whenever the score can; send it
    back as `If-None-Match` to poll cheaply (304 while nothing changed).

    By `Accept`, the same score as a chart: actual vs required per competency for the next
    level (or `level`), grouped by area, critical expectations and blind spots marked, and
    readiness for each level of the track (Vega-Lite, SVG or PNG).
    """
    media = negotiate.representation(request)
    # This worker's memo of rendered scores (created with the app); read here rather than
    # through a dependency of its own, which FastAPI would resolve on every read.
    memo: ScoreMemo = request.app.state.score_memo
    charts = chart_memo.memo_of(request.app)
    try:
        answer = await service.read_score(
            session, principal, ref, query, memo, negotiate.json_if_none_match(if_none_match, media)
        )
    except NotFound:
        charts.forget((principal.tenant_id, ref))  # erased (or never there): keep nothing
        raise
    etag = negotiate.representation_etag(answer.etag, media)
    headers = {"ETag": etag, "Server-Timing": f'memo;desc="{answer.outcome}"', **negotiate.VARY}
    if answer.body is None:
        return Response(status_code=304, headers=headers)
    if media == negotiate.JSON:
        return Response(answer.body, media_type="application/json", headers=headers)
    build = partial(person.build_score, level=level)
    if media == negotiate.VEGA_LITE:
        return await negotiate.chart(media, json.loads(answer.body), build, headers)
    key = (principal.tenant_id, ref, answer.etag, level)
    content = await chart_memo.image(charts, key, media, json.loads(answer.body), build)
    return Response(content, media_type=media, headers=headers)


@router.get(
    "/v1/subjects/{ref}/gaps",
    summary="Gap analysis toward a level",
    response_model=s.GapsRead,
    responses=conditional_responses("gap analysis", f"{_INPUTS}, the target level {_WINDOW}"),
)
async def get_gaps(
    ref: SubjectRef,
    principal: AnalyticsRead,
    session: SessionDep,
    query: ScoreParams,
    request: Request,
    target_level: TargetLevel = None,
    if_none_match: IfNoneMatch = None,
) -> Response:
    """What stands between the subject and the target level, competency by competency.

    `readiness_points_lost` of all items adds up to 1 − readiness; critical gaps come first.
    By `Accept`, a chart of the readiness points each competency costs, largest first.
    The `ETag` works as the score's: send it back as `If-None-Match` to poll cheaply.
    """
    media = negotiate.representation(request)
    ready = await service.prepare(session, principal, ref, query, "gaps", target_level)
    headers, unchanged = not_modified(ready.etag, media, if_none_match)
    if unchanged:
        return Response(status_code=304, headers=headers)
    outcome = await service.outcome_of(
        session,
        principal,
        ready.data,
        ready.moment,
        track=query.track,
        target_level=target_level,
        parts="gaps",
    )
    assert outcome.gaps is not None
    gaps = present.gaps(ready.data.framework, outcome.gaps, ref, outcome.fair_gaps)
    return await negotiate.chart_or_json(
        request, gaps, person.build_gaps, media=media, headers=headers
    )


@router.get(
    "/v1/subjects/{ref}/recommendations",
    summary="Development plan toward a level",
    response_model=s.PlanRead,
    responses=conditional_responses(
        "plan", f"{_INPUTS}, the completed activities, the target, budget and step limit {_WINDOW}"
    ),
)
async def get_recommendations(
    ref: SubjectRef,
    principal: AnalyticsRead,
    session: SessionDep,
    query: ScoreParams,
    request: Request,
    target_level: TargetLevel = None,
    budget_hours: Annotated[
        float | None, Query(ge=0, le=100_000, description="Hour budget.")
    ] = None,
    max_steps: Annotated[int | None, Query(ge=0, le=100)] = None,
    if_none_match: IfNoneMatch = None,
) -> Response:
    """An ordered plan of development activities with the projected readiness after each step.

    Greedy by readiness gained per effort hour; stops when the target is met, the budget or
    step limit is reached, or nothing helps. Completed activities are not recommended again.
    By `Accept`, a chart of the projected readiness against cumulative hours, with the threshold.
    The `ETag` works as the score's, and changes when an activity is completed.
    """
    media = negotiate.representation(request)
    ready = await service.prepare(
        session, principal, ref, query, "recommendations", target_level, budget_hours, max_steps
    )
    headers, unchanged = not_modified(ready.etag, media, if_none_match)
    if unchanged:
        return Response(status_code=304, headers=headers)
    data = ready.data
    outcome = await service.outcome_of(
        session,
        principal,
        data,
        ready.moment,
        track=query.track,
        target_level=target_level,
        budget_hours=budget_hours,
        max_steps=max_steps,
    )
    assert outcome.plan is not None
    plan = present.plan(data.framework, outcome.plan, ref, data.completed, outcome.fair_gaps)
    build = partial(
        person.build_recommendations, threshold=data.framework.settings.readiness_threshold
    )
    return await negotiate.chart_or_json(request, plan, build, media=media, headers=headers)


@router.post("/v1/subjects/{ref}/what-if", summary="What-if evaluation", responses=ERRORS)
async def what_if(
    ref: SubjectRef,
    principal: AnalyticsRead,
    session: SessionDep,
    body: Annotated[s.WhatIfRequest, Body()],
) -> s.EvaluationRead:
    """Score, gaps and plan if some competencies had other values; nothing is stored."""
    data = await service.load_subject(session, principal, ref, body.framework)
    moment = body.as_of or utcnow()
    outcome = await service.outcome_of(
        session,
        principal,
        data,
        moment,
        track=body.track,
        target_level=body.target_level,
        budget_hours=body.budget_hours,
        max_steps=body.max_steps,
        overrides=body.changes,
        settings=body.settings,
        query=False,
    )
    return service.bundle(data.framework, outcome, ref, moment, data.completed)


@router.get(
    "/v1/subjects/{ref}/history",
    summary="Score history",
    response_model=s.HistoryRead,
    responses=conditional_responses("history", f"{_INPUTS} and the track"),
)
async def get_history(
    ref: SubjectRef,
    principal: AnalyticsRead,
    session: SessionDep,
    query: HistoryParams,
    request: Request,
    if_none_match: IfNoneMatch = None,
) -> Response:
    """The score as of each assessment date, and the level index's velocity per 90 days.

    By `Accept`, a chart of the level index over time with the velocity.
    The `ETag` works as the score's: send it back as `If-None-Match` to poll cheaply.
    """
    media = negotiate.representation(request)
    ready = await service.prepare(session, principal, ref, query, "history")
    headers, unchanged = not_modified(ready.etag, media, if_none_match)
    if unchanged:
        return Response(status_code=304, headers=headers)
    history = await service.history(session, principal, ref, ready.data, query.track)
    return await negotiate.chart_or_json(
        request, history, person.build_history, media=media, headers=headers
    )


@router.post(
    "/v1/evaluate",
    summary="Stateless evaluation",
    responses=error_responses(401, 403, 404, 413, 422, 503),
)
async def evaluate(
    principal: AnalyticsRead, session: SessionDep, body: Annotated[s.EvaluateRequest, Body()]
) -> s.EvaluationRead:
    """Score, gaps and plan for ratings sent in the request, against a stored framework.

    For systems that keep their own data: nothing is stored. The answer is identical to the
    stored path's for identical inputs.
    """
    return await service.evaluate_stateless(session, principal, body)


@router.post(
    "/v1/subjects/{ref}/completed-activities",
    status_code=201,
    response_model=s.CompletedActivityRead,
    summary="Record a completed activity",
    responses=error_responses(401, 403, 404, 409, 422, 503),
)
async def add_completed_activity(
    ref: SubjectRef,
    principal: AssessmentsWrite,
    session: SessionDep,
    request: Request,
    body: Annotated[s.CompletedActivityCreate, Body()],
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """A learning system reports a finished development activity; plans skip it from now on."""

    async def produce() -> tuple[s.CompletedActivityRead, dict[str, str], uuid.UUID]:
        row = await service.add_completed(session, principal, ref, body)
        read = s.CompletedActivityRead(activity=row.activity_key, completed_at=row.completed_at)
        return read, {}, row.subject_id

    return await idempotency.execute(session, principal, request, idempotency_key, produce)


@router.get(
    "/v1/subjects/{ref}/completed-activities",
    summary="List completed activities",
    responses=ERRORS,
)
async def list_completed_activities(
    ref: SubjectRef,
    principal: AnalyticsRead,
    session: SessionDep,
    limit: PageSize,
    cursor: PageCursor = None,
) -> s.CompletedActivityPage:
    """Development activities the subject has completed, in the order they were completed."""
    after = decode_cursor(cursor, 2)
    try:
        after_key = (datetime.fromisoformat(after[0]), after[1]) if after else None
    except ValueError:
        raise invalid_cursor() from None
    subject = await subjects.get(session, principal, ref)
    rows = [
        r
        for r in await service.completed_activities(session, principal, subject.id)
        if after_key is None or (r.completed_at, r.activity_key) > after_key
    ]
    kept, next_cursor = next_page(
        rows[: limit + 1], limit, lambda row: [row.completed_at.isoformat(), row.activity_key]
    )
    return s.CompletedActivityPage(
        items=[
            s.CompletedActivityRead(activity=r.activity_key, completed_at=r.completed_at)
            for r in kept
        ],
        next_cursor=next_cursor,
    )
