"""Liveness and readiness probes (no authentication: load balancers call them)."""

import asyncio
from typing import Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.errors import Unavailable, error_responses

router = APIRouter(tags=["health"])

READY_TIMEOUT_SECONDS = 2.0


class Health(BaseModel):
    status: Literal["ok", "unavailable"]


@router.get("/healthz", summary="Liveness")
async def check_liveness() -> Health:
    """The process is up. Never touches the database."""
    return Health(status="ok")


# Checks still cleaning up after their answer was sent (kept so they are not collected early).
_checks: set["asyncio.Task[None]"] = set()


async def _select_one(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


def _forget(check: "asyncio.Task[None]") -> None:
    _checks.discard(check)
    if not check.cancelled():
        check.exception()  # retrieved, so a failed check is not reported as never retrieved


@router.get("/readyz", summary="Readiness", responses=error_responses(503))
async def check_readiness(request: Request) -> Health:
    """The database answers; 503 otherwise, so a load balancer stops sending traffic."""
    check = asyncio.ensure_future(_select_one(request.app.state.engine))
    _checks.add(check)
    check.add_done_callback(_forget)
    done, _ = await asyncio.wait({check}, timeout=READY_TIMEOUT_SECONDS)
    if check not in done or check.exception() is not None:
        # Cancelled, not awaited: cleaning up a connection to a hung server (the driver's
        # cancel request, closing it) must not hold the answer past its timeout.
        check.cancel()
        raise Unavailable("The database is not reachable.")
    return Health(status="ok")
