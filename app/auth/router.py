"""Admin routes for API keys."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Body, Path, Request

from app.auth import repository as repo
from app.auth import service
from app.auth.dependencies import Admin, SessionDep
from app.auth.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyPage, ApiKeyRead
from app.errors import error_responses
from app.models import ApiKey
from app.pagination import PageCursor, PageSize, decode_moment_cursor, moment_cursor, next_page

router = APIRouter(prefix="/v1/api-keys", tags=["api keys"])


def _read(key: ApiKey) -> ApiKeyRead:
    return ApiKeyRead(
        id=key.id,
        name=key.name,
        scopes=list(key.scopes),
        created_at=key.created_at,
        expires_at=key.expires_at,
        revoked_at=key.revoked_at,
    )


@router.get("", summary="List API keys", responses=error_responses(401, 403, 422, 503))
async def list_api_keys(
    principal: Admin, session: SessionDep, limit: PageSize, cursor: PageCursor = None
) -> ApiKeyPage:
    """Your tenant's keys, oldest first (never the secrets)."""
    rows = await repo.list_keys(
        session, principal.tenant_id, limit=limit + 1, after=decode_moment_cursor(cursor)
    )
    kept, next_cursor = next_page(rows, limit, lambda row: moment_cursor(row.created_at, row.id))
    return ApiKeyPage(items=[_read(k) for k in kept], next_cursor=next_cursor)


@router.post(
    "", status_code=201, summary="Create an API key", responses=error_responses(401, 403, 422, 503)
)
async def create_api_key(
    principal: Admin,
    session: SessionDep,
    request: Request,
    body: Annotated[ApiKeyCreate, Body()],
) -> ApiKeyCreated:
    """Issue a key with the given scopes. The full key is in this response and nowhere else."""
    key, token = await service.create_key(
        session,
        principal.tenant_id,
        name=body.name,
        scopes=body.scopes,
        expires_at=body.expires_at,
        prefix=request.app.state.settings.api_key_prefix,
        actor=principal,
    )
    return ApiKeyCreated(**_read(key).model_dump(), key=token)


@router.delete(
    "/{key_id}", summary="Revoke an API key", responses=error_responses(401, 403, 404, 422, 503)
)
async def revoke_api_key(
    key_id: Annotated[uuid.UUID, Path()], principal: Admin, session: SessionDep
) -> ApiKeyRead:
    """Revoke a key at once; requests with it then get 401."""
    key = await service.revoke_key(session, principal, key_id)
    return _read(key)
