"""Idempotency-Key for creates: a replay returns the stored response and creates nothing.

The create and the stored response are added to the request's one unit of work (the session
dependency commits it), so a request either happened once (and its replay answers identically)
or not at all (and a retry performs it). While one request with a key is in flight, a duplicate
gets 409 until that unit of work has ended: Postgres holds a transaction-scoped advisory lock on
(tenant, key); SQLite, a single-process store, uses an in-process set.
"""

import hashlib
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import Header, Request, Response
from pydantic import BaseModel
from sqlalchemy import text
from sqlmodel import col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.auth.principal import Principal
from app.db import after_unit_of_work
from app.errors import FieldError, InvalidInput, StillInFlight
from app.models import IdempotencyRecord, utcnow

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        pattern=r"^[\x21-\x7e]+$",
        description="Makes the create safe to retry: a replay returns the first response. "
        "Keys are per tenant and expire after IDEMPOTENCY_TTL_HOURS (default 24).",
    ),
]

REPLAYED_HEADERS = ("etag", "location")
EXPIRED_PURGE_BATCH = 100

# What a create hands back: the response model, headers, and the subject it concerns (if any),
# so the stored response is erased with the person.
Produced = tuple[BaseModel, dict[str, str]] | tuple[BaseModel, dict[str, str], uuid.UUID | None]
_IN_FLIGHT: set[tuple[uuid.UUID, str]] = set()


def _fingerprint(request: Request, body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (
        request.method.encode(),
        request.url.path.encode(),
        request.url.query.encode(),
        body,
    ):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


async def _lock(session: AsyncSession, tenant_id: uuid.UUID, key: str) -> bool:
    conn = await session.connection()
    if conn.dialect.name != "postgresql":
        return True
    got = await conn.execute(
        text("SELECT pg_try_advisory_xact_lock(hashtextextended(:k, 0))"),
        {"k": f"idempotency:{tenant_id}:{key}"},
    )
    return bool(got.scalar())


async def execute(
    session: AsyncSession,
    principal: Principal,
    request: Request,
    key: str | None,
    produce: Callable[[], Awaitable[Produced]],
    status_code: int = 201,
) -> Response:
    """Run a create once per key; its response is stored in the same unit of work."""
    if key is None and request.app.state.settings.require_idempotency_key:
        raise InvalidInput(
            "This service requires an Idempotency-Key on every create, so that a retry after "
            "an unknown outcome cannot create a duplicate.",
            errors=[
                FieldError(
                    loc=["header", "Idempotency-Key"],
                    msg="required by this service (REQUIRE_IDEMPOTENCY_KEY)",
                    type="missing",
                )
            ],
        )
    if key is None:
        model, headers, _ = _unpack(await produce())
        # Rendered inside the unit of work: an answer that cannot be rendered must not follow a
        # stored effect. By alias, as FastAPI serializes response models (e.g. a level band's
        # "from" and "to").
        body = model.model_dump_json(by_alias=True).encode()
        return _response(body, status_code, headers)
    slot = (principal.tenant_id, key)
    if slot in _IN_FLIGHT or not await _lock(session, principal.tenant_id, key):
        raise StillInFlight(
            "A request with this Idempotency-Key is still in flight; retry after Retry-After."
        )
    _IN_FLIGHT.add(slot)
    # Held until the request's transaction has committed or rolled back, not just until the
    # create returns: a duplicate arriving in between must not miss the stored response.
    after_unit_of_work(session, lambda: _IN_FLIGHT.discard(slot))
    return await _execute_once(session, principal, request, key, produce, status_code)


async def _execute_once(
    session: AsyncSession,
    principal: Principal,
    request: Request,
    key: str,
    produce: Callable[[], Awaitable[Produced]],
    status_code: int,
) -> Response:
    fingerprint = _fingerprint(request, await request.body())
    stmt = select(IdempotencyRecord).where(
        IdempotencyRecord.tenant_id == principal.tenant_id, IdempotencyRecord.key == key
    )
    existing = (await session.exec(stmt)).first()
    now = utcnow()
    if existing is not None and existing.expires_at > now:
        if existing.fingerprint != fingerprint:
            raise InvalidInput(
                "This Idempotency-Key was used with a different request.",
                errors=[
                    FieldError(
                        loc=["header", "Idempotency-Key"],
                        msg="reused with another body",
                        type="idempotency_mismatch",
                    )
                ],
            )
        replay = _response(existing.body.encode(), existing.status_code, dict(existing.headers))
        replay.headers["Idempotency-Replayed"] = "true"
        return replay
    if existing is not None:
        await session.delete(existing)
        await session.flush()
    await _purge_expired(session, principal.tenant_id, now)
    model, headers, subject_id = _unpack(await produce())
    body = model.model_dump_json(by_alias=True)  # inside the unit of work, as above
    kept = {k: v for k, v in headers.items() if k.lower() in REPLAYED_HEADERS}
    session.add(
        IdempotencyRecord(
            tenant_id=principal.tenant_id,
            key=key,
            fingerprint=fingerprint,
            subject_id=subject_id,
            status_code=status_code,
            body=body,
            headers=kept,
            expires_at=now + timedelta(hours=request.app.state.settings.idempotency_ttl_hours),
        )
    )
    return _response(body.encode(), status_code, headers)


def _unpack(produced: Produced) -> tuple[BaseModel, dict[str, str], uuid.UUID | None]:
    if len(produced) == 3:
        return produced
    return produced[0], produced[1], None


async def _purge_expired(session: AsyncSession, tenant_id: uuid.UUID, now: datetime) -> None:
    """Forget a few expired records of this tenant on each keyed request (bounded work)."""
    expired = (
        select(IdempotencyRecord.key)
        .where(IdempotencyRecord.tenant_id == tenant_id, col(IdempotencyRecord.expires_at) <= now)
        .limit(EXPIRED_PURGE_BATCH)
    )
    keys = list((await session.exec(expired)).all())
    if keys:
        await session.exec(
            delete(IdempotencyRecord).where(
                col(IdempotencyRecord.tenant_id) == tenant_id, col(IdempotencyRecord.key).in_(keys)
            )
        )


def _response(body: bytes, status_code: int, headers: dict[str, str]) -> Response:
    return Response(
        content=body, status_code=status_code, media_type="application/json", headers=headers
    )
