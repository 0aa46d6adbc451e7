"""HTTP route of cohort analytics (JSON, CSV for the people table and the heatmap, or a chart)."""

import io
import json
from functools import partial
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from app import csv_output
from app.auth.dependencies import AnalyticsRead, SessionDep
from app.charts import cohort as cohort_chart
from app.charts import negotiate
from app.cohorts import service
from app.cohorts.schemas import CohortRequest, CohortResponse
from app.errors import error_responses
from app.subjects.schemas import AttrKey

router = APIRouter(prefix="/v1/cohorts", tags=["cohorts"])

PEOPLE_COLUMNS = (
    "subject_ref",
    "display_name",
    "track",
    "current_level",
    "attained_level",
    "next_level",
    "level_index",
    "target_level",
    "target_readiness",
    "coverage",
    "confidence",
)


CHART_RESPONSES = negotiate.chart_responses(
    "The cohort as JSON, one table as CSV (`format=csv`), or a chart of the same numbers."
)
CHART_RESPONSES[200]["content"]["text/csv"] = {"schema": {"type": "string"}}


def _cell(value: Any) -> Any:
    """A CSV cell: a level by its key (a table is flat), nothing as empty."""
    if isinstance(value, dict):
        return value["key"]
    return "" if value is None else value


@router.post(
    "/evaluate",
    summary="Evaluate a cohort",
    response_model=CohortResponse,
    responses={**error_responses(401, 403, 404, 413, 422, 503), **CHART_RESPONSES},
)
async def evaluate_cohort(
    principal: AnalyticsRead,
    session: SessionDep,
    request: Request,
    body: Annotated[CohortRequest, Body()],
    format: Annotated[Literal["json", "csv"], Query(description="csv returns one table.")] = "json",
    table: Annotated[
        Literal["people", "heatmap"], Query(description="Which table as CSV.")
    ] = "people",
    chart: Annotated[
        cohort_chart.Chart, Query(description="Which chart, when Accept asks for one.")
    ] = "heatmap",
    group_by: Annotated[
        AttrKey | None,
        Query(
            description="Heatmap chart: one row per value of this subject attribute (e.g. team), "
            f"the mean of its people; without it, above {cohort_chart.HEATMAP_PEOPLE_CAP} people, "
            "one row per official level."
        ),
    ] = None,
) -> Response:
    """Attained levels, readiness, top gaps per person; level distribution, the cohort's biggest
    gaps, promotion-ready and below-level lists, and a competency × person heatmap.

    Every number equals what the per-subject score endpoints answer for the same person.
    By `Accept` (with `format=json`), the same answer as a chart (`chart`): the heatmap of actual
    minus required, the attained level distribution, or attained vs official level.
    """
    media = negotiate.representation(request) if format == "json" else None
    answer = await service.evaluate(session, principal, body)
    if media == negotiate.JSON:
        return Response(answer.json(), media_type=negotiate.JSON, headers=negotiate.VARY)
    if media is not None:
        groups = None
        if chart == "heatmap" and group_by is not None:
            refs = answer.response.heatmap.subject_refs if answer.response.heatmap else []
            groups = await service.attribute_values(session, principal, refs, group_by)
        build = partial(cohort_chart.build, chart=chart, groups=groups, group_by=group_by)
        # Decoding 100,000 people takes seconds: off the event loop, like the rendering.
        decoded = await run_in_threadpool(json.loads, answer.json())
        return await negotiate.chart(media, decoded, build)
    out = io.StringIO()
    writer = csv_output.Writer(out)  # names and refs are the caller's text: no formulas
    if table == "people":
        writer.writerow([*PEOPLE_COLUMNS, "top_gaps"])
        for person in answer.people or []:
            gaps = ";".join(
                f"{g['competency']}:{g['readiness_points_lost']:.4f}" for g in person["top_gaps"]
            )
            writer.writerow([*(_cell(person[c]) for c in PEOPLE_COLUMNS), gaps])
    else:
        heatmap = answer.response.heatmap
        writer.writerow(["subject_ref", *(heatmap.competencies if heatmap else [])])
        if heatmap:
            for ref, values in zip(heatmap.subject_refs, heatmap.values, strict=True):
                writer.writerow([ref, *("" if v is None else v for v in values)])
    return Response(
        out.getvalue(),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="cohort-{table}.csv"'},
    )
