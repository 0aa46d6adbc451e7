"""HTTP routes of calibration (JSON, CSV for the rater-effects and fair-averages tables, or a
chart of the raters)."""

import io
import json
from functools import partial
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from app import csv_output
from app.auth.dependencies import AnalyticsRead, SessionDep
from app.auth.service import require_scope
from app.calibration import schemas as s
from app.calibration import service
from app.charts import calibration as calibration_chart
from app.charts import negotiate
from app.errors import error_responses

router = APIRouter(prefix="/v1/calibration", tags=["calibration"])

RATER_COLUMNS = (
    "rater_ref",
    "role",
    "group",
    "status",
    "effect",
    "standard_error",
    "ratings",
    "shared_ratings",
    "subjects",
    "mean_square",
    "between_ratio",
    "within_ratio",
)


CHART_RESPONSES = negotiate.chart_responses(
    "Rater effects as JSON, one table as CSV (`format=csv`), or a chart of the same numbers."
)
CHART_RESPONSES[200]["content"]["text/csv"] = {"schema": {"type": "string"}}


def _cell(value: Any) -> Any:
    return "" if value is None else value


def _csv(answer: s.RaterEffectsResponse, table: str) -> str:
    out = io.StringIO()
    writer = csv_output.Writer(out)  # refs are the caller's text: no formulas
    if table == "raters":
        scale = [f"count_{v:g}" for v in answer.scale]
        writer.writerow([*RATER_COLUMNS, "flags", *scale])
        for rater in answer.raters:
            row = [_cell(getattr(rater, c)) for c in RATER_COLUMNS]
            flags = ";".join(f.kind for f in rater.flags)
            writer.writerow([*row, flags, *rater.distribution])
    else:
        fair = answer.fair_averages
        keys = fair.competencies if fair else []
        writer.writerow(
            [
                "subject_ref",
                "level_index",
                "fair_level_index",
                *keys,
                *(f"fair_{k}" for k in keys),
            ]
        )
        for person in fair.people if fair else []:
            writer.writerow(
                [
                    person.subject_ref,
                    person.level_index,
                    person.fair_level_index,
                    *(_cell(v) for v in person.values),
                    *(_cell(v) for v in person.fair_values),
                ]
            )
    return out.getvalue()


@router.post(
    "/rater-effects",
    summary="Measure rater effects",
    response_model=s.RaterEffectsResponse,
    responses={**error_responses(401, 403, 404, 413, 422, 429, 503), **CHART_RESPONSES},
)
async def rater_effects(
    principal: AnalyticsRead,
    session: SessionDep,
    request: Request,
    body: Annotated[s.RaterEffectsRequest, Body()],
    format: Annotated[Literal["json", "csv"], Query(description="csv returns one table.")] = "json",
    table: Annotated[
        Literal["raters", "fair_averages"], Query(description="Which table as CSV.")
    ] = "raters",
    chart: Annotated[
        calibration_chart.Chart, Query(description="Which chart, when Accept asks for one.")
    ] = "distributions",
) -> Response:
    """Each rater's leniency (+) or severity (−) in scale points with its standard error, from
    an additive model fitted by least squares (rating = person's level on the competency + rater
    effect + noise); connected groups, flags with their evidence, agreement per competency, the
    distribution of each rater's ratings, self ratings beside the others', and fair averages.

    Raters are compared only inside a connected group (linked by people and competencies they
    both rated); effects sum to zero over a group's raters with enough evidence.

    With `record: true` (admin scope) the raters' effects are stored as the framework version's
    latest estimate: scores of a framework with `rater_adjustment` preview or apply use it.

    By `Accept` (with `format=json`), a chart (`chart`): each rater's distribution of ratings
    beside the cohort's, or each rater's effect with its interval.
    """
    media = negotiate.representation(request) if format == "json" else None
    if body.record:
        require_scope(principal, "admin")  # recording changes the scores that use it
    answer = await service.answer(session, principal, body)
    if media == negotiate.JSON:
        # Rendered once from plain rows: letting FastAPI validate 100,000 people again took
        # seconds, and holding them as model instances hundreds of MiB.
        return Response(answer.json(), media_type=media, headers=negotiate.VARY)
    if media is not None:
        decoded = await run_in_threadpool(json.loads, answer.json())
        build = partial(calibration_chart.build, chart=chart)
        return await negotiate.chart(media, decoded, build)
    return Response(
        _csv(answer.model(), table),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="rater-effects-{table}.csv"'},
    )
