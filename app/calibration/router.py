"""HTTP routes of calibration."""

from typing import Annotated

from fastapi import APIRouter, Body
from fastapi.responses import Response

from app.auth.dependencies import AnalyticsRead, SessionDep
from app.calibration import schemas as s
from app.calibration import service
from app.errors import error_responses

router = APIRouter(prefix="/v1/calibration", tags=["calibration"])


@router.post(
    "/rater-effects",
    summary="Measure rater effects",
    response_model=s.RaterEffectsResponse,
    responses=error_responses(401, 403, 404, 413, 422, 429, 503),
)
async def rater_effects(
    principal: AnalyticsRead,
    session: SessionDep,
    body: Annotated[s.RaterEffectsRequest, Body()],
) -> Response:
    """Each rater's leniency (+) or severity (−) in scale points with its standard error, from
    an additive model fitted by least squares (rating = person's level on the competency + rater
    effect + noise); connected groups, flags with their evidence, agreement per competency, the
    distribution of each rater's ratings, self ratings beside the others', and fair averages.

    Raters are compared only inside a connected group (linked by people and competencies they
    both rated); effects sum to zero over a group's raters with enough evidence.
    """
    answer = await service.rater_effects(session, principal, body)
    # Serialized once as built: letting FastAPI validate 100,000 people again took seconds.
    return Response(answer.model_dump_json(), media_type="application/json")
