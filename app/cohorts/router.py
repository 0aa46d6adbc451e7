"""HTTP route of cohort analytics (JSON, or CSV for the people table and the heatmap)."""

import io
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query
from fastapi.responses import Response

from app import csv_output
from app.auth.dependencies import AnalyticsRead, SessionDep
from app.cohorts import service
from app.cohorts.schemas import CohortRequest, CohortResponse
from app.errors import error_responses

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


def _cell(value: Any) -> Any:
    """A CSV cell: a level by its key (a table is flat), nothing as empty."""
    if isinstance(value, dict):
        return value["key"]
    return "" if value is None else value


@router.post(
    "/evaluate",
    summary="Evaluate a cohort",
    response_model=CohortResponse,
    responses={
        **error_responses(401, 403, 404, 413, 422, 503),
        200: {"content": {"application/json": {}, "text/csv": {"schema": {"type": "string"}}}},
    },
)
async def evaluate_cohort(
    principal: AnalyticsRead,
    session: SessionDep,
    body: Annotated[CohortRequest, Body()],
    format: Annotated[Literal["json", "csv"], Query(description="csv returns one table.")] = "json",
    table: Annotated[
        Literal["people", "heatmap"], Query(description="Which table as CSV.")
    ] = "people",
) -> Response:
    """Attained levels, readiness, top gaps per person; level distribution, the cohort's biggest
    gaps, promotion-ready and below-level lists, and a competency × person heatmap.

    Every number equals what the per-subject score endpoints answer for the same person.
    """
    answer = await service.evaluate(session, principal, body)
    if format == "json":
        return Response(answer.json(), media_type="application/json")
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
