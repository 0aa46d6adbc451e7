"""FastAPI dependencies: every protected route declares the scope it needs."""

import base64
import binascii
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPBearer
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.requests import HTTPConnection

from app.auth.keys import KEY_SHAPE
from app.auth.principal import Principal
from app.auth.ratelimit import Limiter
from app.auth.service import authenticate, require_scope
from app.content_types import require_declared_media_type
from app.db import get_session
from app.observability.context import note_caller


class BearerToken(HTTPBearer):
    """The ``Authorization: Bearer`` token as a string, or None (declared in OpenAPI as
    HTTPBearer declares it). Read on every request, so it builds no credentials model."""

    async def __call__(self, request: HTTPConnection) -> str | None:  # type: ignore[override]
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        token = token.strip()
        return token if token and scheme.lower() == "bearer" else None


bearer = BearerToken(
    auto_error=False,
    scheme_name="ApiKey",
    description=f"An API key: `Authorization: Bearer {KEY_SHAPE}`.",
)

# "function" scope: the unit of work commits when the handler has returned and its response is
# rendered, before anything is sent, so a failed COMMIT still becomes the request's problem answer.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


def basic_password(request: Request) -> str | None:
    """The password of an ``Authorization: Basic`` header (the whole API key; the user name is
    not read), or None. xAPI clients (LRS forwarding) can only send credentials this way."""
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    _, colon, password = decoded.partition(":")
    return password if colon else None


async def _authenticate(request: Request, session: AsyncSession, token: str | None) -> Principal:
    state = request.app.state
    return await authenticate(
        session,
        token if token is not None else basic_password(request),
        prefix=state.settings.api_key_prefix,
        cache=state.key_cache,
    )


async def refuse_unauthenticated(request: Request) -> None:
    """Raise Unauthenticated unless the request carries a valid key. The error handlers that
    answer before a route's dependencies run (invalid input) ask this, so 401 comes first."""
    async with request.app.state.sessionmaker() as session:
        await _authenticate(request, session, await bearer(request))


def scoped(scope: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency that authenticates the caller, demands one scope, then checks the body's
    media type (so a caller without a valid key learns nothing but 401)."""

    async def dependency(
        request: Request,
        session: SessionDep,
        token: Annotated[str | None, Security(bearer)],
    ) -> Principal:
        principal = await _authenticate(request, session, token)
        note_caller(principal.tenant_id, principal.key_id)  # for the request's log line
        limiter: Limiter = request.app.state.rate_limiter
        if principal.key_id is not None:
            await limiter.check(principal.tenant_id, principal.key_id)
        require_scope(principal, scope)
        await require_declared_media_type(request)
        return principal

    dependency.__name__ = f"scope_{scope.replace(':', '_')}"
    return dependency


FrameworksRead = Annotated[Principal, Depends(scoped("frameworks:read"))]
FrameworksWrite = Annotated[Principal, Depends(scoped("frameworks:write"))]
SubjectsRead = Annotated[Principal, Depends(scoped("subjects:read"))]
SubjectsWrite = Annotated[Principal, Depends(scoped("subjects:write"))]
AssessmentsRead = Annotated[Principal, Depends(scoped("assessments:read"))]
AssessmentsWrite = Annotated[Principal, Depends(scoped("assessments:write"))]
AnalyticsRead = Annotated[Principal, Depends(scoped("analytics:read"))]
Admin = Annotated[Principal, Depends(scoped("admin"))]
LearningRecordsRead = Annotated[Principal, Depends(scoped("learning-records:read"))]
LearningRecordsWrite = Annotated[Principal, Depends(scoped("learning-records:write"))]
