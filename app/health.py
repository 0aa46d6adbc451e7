"""Liveness and readiness probes (no authentication: load balancers call them)."""

import asyncio
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import text

from app.errors import error_responses

router = APIRouter(tags=["health"])

READY_TIMEOUT_SECONDS = 2.0


class Health(BaseModel):
    status: Literal["ok", "unavailable"]


@router.get("/healthz", summary="Liveness")
async def check_liveness() -> Health:
    """The process is up. Never touches the database."""
    return Health(status="ok")


@router.get("/readyz", summary="Readiness", responses=error_responses(503))
async def check_readiness(request: Request) -> Health:
    """The database answers; 503 otherwise, so a load balancer stops sending traffic."""
    engine = request.app.state.engine
    try:
        async with asyncio.timeout(READY_TIMEOUT_SECONDS):
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
    except Exception:
        return JSONResponse(  # type: ignore[return-value]
            {
                "type": "https://competency-ladder.dev/problems/unavailable",
                "title": "Service unavailable",
                "status": 503,
                "detail": "The database is not reachable.",
                "instance": "/readyz",
            },
            status_code=503,
            media_type="application/problem+json",
            headers={"Retry-After": "5"},
        )
    return Health(status="ok")
