"""Baselines of the API read benchmark: a bare JSON endpoint and the floor of a database read.

Served exactly like the service (uvicorn, same workers, same host and flags):
``uvicorn bench.baseline_app:app --workers 2``. ``GET /bare`` answers a constant without touching
the database. ``GET /row?id=<external_ref>`` reads one subject through the unique index on
(tenant_id, external_ref) with the raw asyncpg driver and returns it: the least any
database-backed read of this service can cost.

Environment: ``BASELINE_DATABASE_URL`` (the service's own connection URL), ``BASELINE_TENANT_ID``
(set once per pooled connection, so row-level security filters exactly as for the service) and
``BASELINE_POOL_SIZE`` (default 20: the service's default pool size plus overflow).
"""

import json
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import asyncpg
from fastapi import FastAPI, HTTPException, Query, Request

ROW_QUERY = """
SELECT id, external_ref, display_name, track, current_level, attributes, created_at, updated_at
FROM subject
WHERE tenant_id = $1 AND external_ref = $2
"""


async def _json_codec(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec(
        "jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog", format="text"
    )


async def _no_reset(_conn: asyncpg.Connection) -> None:
    """Nothing to undo after a plain read."""


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Open the asyncpg pool when a database is configured."""
    url = os.environ.get("BASELINE_DATABASE_URL")
    pool: asyncpg.Pool | None = None
    if url:
        tenant_id = os.environ["BASELINE_TENANT_ID"]
        size = int(os.environ.get("BASELINE_POOL_SIZE", "20"))
        pool = await asyncpg.create_pool(
            url.replace("postgresql+asyncpg://", "postgresql://"),
            min_size=min(10, size),
            max_size=size,
            init=_json_codec,
            # The read leaves no session state, so connections need no reset on release (the
            # service's score lookups skip it too); with asyncpg's default each read would pay
            # a second round trip.
            reset=_no_reset,
            server_settings={
                "application_name": "ladder-bench-baseline",
                "app.tenant_id": tenant_id,
            },
        )
        app.state.tenant_id = uuid.UUID(tenant_id)
    app.state.pool = pool
    try:
        yield
    finally:
        if pool is not None:
            await pool.close()


app = FastAPI(title="bench baselines", lifespan=lifespan, docs_url=None, redoc_url=None)


@app.get("/bare")
async def bare() -> dict[str, str]:
    """A constant JSON answer: the cost of the web stack alone."""
    return {"status": "ok"}


@app.get("/row")
async def row(request: Request, ref: Annotated[str, Query(alias="id", max_length=200)]) -> Any:
    """One subject row by (tenant_id, external_ref), read with the raw driver."""
    pool: asyncpg.Pool | None = request.app.state.pool
    if pool is None:
        raise HTTPException(503, "BASELINE_DATABASE_URL is not set")
    record = await pool.fetchrow(ROW_QUERY, request.app.state.tenant_id, ref)
    if record is None:
        raise HTTPException(404, f"no subject {ref!r}")
    return {
        "id": str(record["id"]),
        "external_ref": record["external_ref"],
        "display_name": record["display_name"],
        "track": record["track"],
        "current_level": record["current_level"],
        "attributes": record["attributes"],
        "created_at": record["created_at"].isoformat(),
        "updated_at": record["updated_at"].isoformat(),
    }
