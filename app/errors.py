"""One error hierarchy for the domain and one RFC 9457 handler that maps it to HTTP."""

import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import (
    DBAPIError,
    EmulatedDBAPIException,
    IntegrityError,
    InterfaceError,
    OperationalError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Route
from starlette.types import Send

from app.observability.context import current_request_id
from app.routing import leaf_routes

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "https://competency-ladder.dev/problems/"


class FieldError(BaseModel):
    """One offending field: where it is (a JSON path) and what is wrong with it."""

    model_config = ConfigDict(extra="forbid")

    loc: list[str | int] = Field(
        description="Path to the field, e.g. ['competencies', 2, 'weight']."
    )
    msg: str = Field(max_length=2000)
    type: str = Field(max_length=100)


class Problem(BaseModel):
    """An RFC 9457 problem details object."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(max_length=300)
    title: str = Field(max_length=300)
    status: int
    detail: str | None = Field(default=None, max_length=4000)
    instance: str | None = Field(default=None, max_length=2000)
    errors: list[FieldError] | None = None
    request_id: str | None = Field(
        default=None,
        max_length=128,
        description="The request's id, as in its X-Request-ID response header and the logs.",
    )


class AppError(Exception):
    """Base of every error the service raises on purpose."""

    slug = "error"
    title = "Error"

    def __init__(self, detail: str, *, errors: Sequence[FieldError] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = list(errors) if errors else None


class NotFound(AppError):
    slug, title = "not-found", "Not found"


class Conflict(AppError):
    slug, title = "conflict", "Conflict"


class InvalidInput(AppError):
    slug, title = "validation-error", "Invalid input"


class BadRequest(AppError):
    """Input refused where the protocol names 400 rather than 422 (xAPI statements)."""

    slug, title = "bad-request", "Bad request"


class PreconditionRequired(AppError):
    slug, title = "precondition-required", "Precondition required"


class PreconditionFailed(AppError):
    slug, title = "precondition-failed", "Precondition failed"


class Unauthenticated(AppError):
    slug, title = "unauthenticated", "Authentication required"


class Forbidden(AppError):
    slug, title = "forbidden", "Forbidden"


class PayloadTooLarge(AppError):
    slug, title = "payload-too-large", "Payload too large"


class UnsupportedMediaType(AppError):
    slug, title = "unsupported-media-type", "Unsupported media type"


class NotAcceptable(AppError):
    """The Accept header names no representation the operation has; `available` lists them."""

    slug, title = "not-acceptable", "Not acceptable"

    def __init__(self, detail: str, *, available: Sequence[str]) -> None:
        super().__init__(detail)
        self.available = list(available)


class Unavailable(AppError):
    slug, title = "unavailable", "Service unavailable"


class CommitOutcomeUnknown(Unavailable):
    """The connection failed while COMMIT was in flight: the write may or may not be stored."""

    slug, title = "commit-outcome-unknown", "Outcome unknown"


class StillInFlight(Conflict):
    """A request with the same Idempotency-Key is still running."""

    retry_after_seconds = 1


class RateLimited(AppError):
    slug, title = "rate-limited", "Too many requests"

    def __init__(self, detail: str, *, retry_after_seconds: int) -> None:
        super().__init__(detail)
        self.retry_after_seconds = retry_after_seconds


STATUS_BY_ERROR: dict[type[AppError], int] = {
    NotFound: 404,
    Conflict: 409,
    InvalidInput: 422,
    BadRequest: 400,
    PreconditionRequired: 428,
    PreconditionFailed: 412,
    Unauthenticated: 401,
    Forbidden: 403,
    PayloadTooLarge: 413,
    UnsupportedMediaType: 415,
    NotAcceptable: 406,
    Unavailable: 503,
    RateLimited: 429,
}

DB_RETRY_AFTER_SECONDS = 5


def problem_body(status: int, *, slug: str, title: str, detail: str | None) -> dict[str, Any]:
    """The RFC 9457 members of every problem answer, also those sent before the app runs, and
    the id of the request it answers when there is one (not for an answer of the HTTP server)."""
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + slug,
        "title": title,
        "status": status,
        "detail": detail,
    }
    request_id = current_request_id()
    if request_id is not None:
        body["request_id"] = request_id
    return body


async def send_problem(
    send: Send, body: dict[str, Any], headers: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    """Answer a problem from plain ASGI code (outside routing), closing the connection."""
    content = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": body["status"],
            "headers": [
                (b"content-type", PROBLEM_JSON.encode()),
                (b"x-content-type-options", b"nosniff"),
                (b"content-length", str(len(content)).encode("ascii")),
                (b"connection", b"close"),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": content, "more_body": False})


def problem_response(
    request: Request,
    status: int,
    *,
    slug: str,
    title: str,
    detail: str | None,
    errors: Sequence[FieldError] | None = None,
    headers: dict[str, str] | None = None,
    members: dict[str, Any] | None = None,
) -> JSONResponse:
    """Build an ``application/problem+json`` response (`members`: extension members)."""
    body: dict[str, Any] = {
        **problem_body(status, slug=slug, title=title, detail=detail),
        "instance": request.url.path,
        **(members or {}),
    }
    if errors:
        body["errors"] = [e.model_dump() for e in errors]
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def printable(value: object) -> str:
    """The value as text any encoder accepts (a lone surrogate becomes ``\\udfff``)."""
    # A loc can hold a key the client sent, e.g. a lone surrogate that UTF-8 cannot encode.
    return str(value).encode("utf-8", "backslashreplace").decode("utf-8")


def _field_errors_from_pydantic(raw: Sequence[Any]) -> list[FieldError]:
    out = []
    for err in raw:
        loc = [p if isinstance(p, int) else printable(p) for p in err.get("loc", ())]
        out.append(
            FieldError(
                loc=loc,
                msg=printable(err.get("msg", ""))[:2000],
                type=str(err.get("type", ""))[:100],
            )
        )
    return out


async def _app_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    status = next(s for cls, s in STATUS_BY_ERROR.items() if isinstance(exc, cls))
    headers = None
    if isinstance(exc, (RateLimited, StillInFlight)):
        headers = {"Retry-After": str(exc.retry_after_seconds)}
    elif isinstance(exc, Unavailable):
        headers = {"Retry-After": str(DB_RETRY_AFTER_SECONDS)}
    elif isinstance(exc, Unauthenticated):
        headers = {"WWW-Authenticate": 'Bearer realm="competency-ladder"'}
    members = {"available": exc.available} if isinstance(exc, NotAcceptable) else None
    return problem_response(
        request,
        status,
        slug=exc.slug,
        title=exc.title,
        detail=exc.detail,
        errors=exc.errors,
        headers=headers,
        members=members,
    )


PUBLIC_PATHS = ("/healthz", "/readyz", "/docs", "/redoc", "/openapi.json", "/_static/")


RequestAuthentication = Callable[[Request], Awaitable[None]]
"""Raises Unauthenticated unless the request carries a valid key (the auth package's check)."""


async def _unauthenticated(request: Request) -> JSONResponse | None:
    """A 401 for a caller without a valid key, whatever else is wrong with the request.

    FastAPI parses a JSON body before running dependencies, so a broken body would otherwise
    answer 422 to anonymous callers; authentication must come first on every protected route.
    The check is the one ``install_error_handlers`` was given: this module knows no keys.
    """
    if request.url.path.startswith(PUBLIC_PATHS):
        return None
    authenticate: RequestAuthentication = request.app.state.authenticate_first
    try:
        await authenticate(request)
    except Unauthenticated as exc:
        return await _app_error(request, exc)
    return None


async def refuse_invalid_input(request: Request, exc: InvalidInput) -> JSONResponse:
    """The 422 of input refused before routing (a middleware), after the 401 it may owe first."""
    refused = await _unauthenticated(request)
    if refused is not None:
        return refused
    return await _app_error(request, exc)


async def _request_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    refused = await _unauthenticated(request)
    if refused is not None:
        return refused
    errors = _field_errors_from_pydantic(exc.errors())
    return problem_response(
        request,
        422,
        slug="validation-error",
        title="Invalid input",
        detail=f"The request has {len(errors)} invalid field(s).",
        errors=errors,
    )


def _allowed_methods(request: Request) -> str:
    """The methods of the request's path, for the ``Allow`` header of a 405.

    As in the OpenAPI document, a path without parameters is the resource a URL names before any
    template that also matches it: ``/v1/subjects/bulk`` allows POST, although GET on it is
    routed to ``/v1/subjects/{ref}`` (a subject may be called "bulk"). HEAD goes wherever GET
    does (see RequestGuards).
    """
    by_specificity: dict[int, set[str]] = {}
    for route in leaf_routes(request.app.router.routes):
        if isinstance(route, Route) and route.methods:
            match, _ = route.matches(request.scope)
            if match is not Match.NONE:
                by_specificity.setdefault(len(route.param_convertors), set()).update(route.methods)
    allowed = by_specificity[min(by_specificity)] if by_specificity else set()
    if "GET" in allowed:
        allowed.add("HEAD")
    return ", ".join(sorted(allowed))


_UNDECODABLE_JSON: dict[type[BaseException], str] = {
    UnicodeDecodeError: "not valid UTF-8",
    RecursionError: "nested too deeply",
}


async def _http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    slug = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
    if exc.status_code == 400 and isinstance(exc.__cause__, (ValueError, RecursionError)):
        # FastAPI answers a JSON body it cannot decode with a bare 400 unless the cause is a
        # syntax error. Bytes that are not UTF-8, nesting deeper than the decoder recurses and
        # integers longer than Python converts are malformed JSON too: the same documented 422.
        reason = _UNDECODABLE_JSON.get(type(exc.__cause__), "not valid JSON")
        return problem_response(
            request,
            422,
            slug="validation-error",
            title="Invalid input",
            detail=f"The request body is {reason}.",
            errors=[FieldError(loc=["body"], msg=reason, type="json_invalid")],
        )
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        # Starlette names only the methods of the first route on the path; a resource with GET
        # and POST on separate routes must still answer `Allow: GET, POST`.
        headers["Allow"] = _allowed_methods(request)
    return problem_response(
        request,
        exc.status_code,
        slug=slug,
        title=str(exc.detail) if exc.detail else "Error",
        detail=str(exc.detail) if exc.detail else None,
        headers=headers or None,
    )


async def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    log.warning("database unavailable: %s", type(exc).__name__)
    return problem_response(
        request,
        503,
        slug="unavailable",
        title="Service unavailable",
        detail="The database is not reachable right now; retry the same request later.",
        headers={"Retry-After": str(DB_RETRY_AFTER_SECONDS)},
    )


# SQLSTATE classes that mean "the database is not available right now", not "bad query":
# connection exceptions, operator intervention (shutdown, statement timeout), resources.
TRANSIENT_SQLSTATE_PREFIXES = ("08", "57", "53", "40001", "40P01")


def is_transient_database_error(exc: BaseException) -> bool:
    """True for database errors a retry of the same request may cure."""
    if isinstance(
        exc,
        (
            OperationalError,
            InterfaceError,
            PoolTimeoutError,
            ConnectionError,
            TimeoutError,
            CommitOutcomeUnknown,
            # The driver's protocol out of step with the server, e.g. "cannot switch to state
            # 12" when a connection dies during a restart: that connection is discarded.
            asyncpg.InternalClientError,
        ),
    ):
        return True
    # The raw driver (bulk reads use asyncpg directly) raises its own errors with a SQLSTATE.
    code = getattr(exc, "sqlstate", None)
    if isinstance(code, str) and code.startswith(TRANSIENT_SQLSTATE_PREFIXES):
        return True
    if type(exc).__module__.startswith("asyncpg") and "Connection" in type(exc).__name__:
        return True
    # The raw driver's answer on a connection that died before this statement (not a retryable
    # state in general: the same class also reports the caller's own mistakes).
    if isinstance(exc, asyncpg.InterfaceError) and "connection is closed" in str(exc):
        return True
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        orig = exc.orig
        code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
        if isinstance(code, str) and code.startswith(TRANSIENT_SQLSTATE_PREFIXES):
            return True
        return isinstance(
            getattr(orig, "__cause__", None),
            (ConnectionError, OSError, TimeoutError, asyncpg.InternalClientError),
        )
    return False


FOREIGN_KEY_VIOLATION = "23503"
UNIQUE_VIOLATION = "23505"


def _sqlstate(exc: BaseException) -> str | None:
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    return code if isinstance(code, str) else None


def _unique_violation(exc: BaseException) -> bool:
    """A unique constraint refused the write (Postgres by SQLSTATE, SQLite by its message)."""
    if _sqlstate(exc) == UNIQUE_VIOLATION:
        return True
    return isinstance(exc, IntegrityError) and "UNIQUE constraint failed" in str(exc.orig)


def _constraint(exc: BaseException) -> str | None:
    """The name of the constraint a driver error names (never its values: they may be personal
    data, so the error's own text is not logged)."""
    for err in (
        exc,
        getattr(exc, "orig", None),
        getattr(getattr(exc, "orig", None), "__cause__", None),
    ):
        name = getattr(err, "constraint_name", None)
        if isinstance(name, str):
            return name
    return None


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    if is_transient_database_error(exc):
        return await _database_unavailable(request, exc)
    if _sqlstate(exc) == FOREIGN_KEY_VIOLATION:
        # Services check what a write refers to before writing, so this is a race: e.g. the
        # subject was erased between that check and the insert. The transaction rolled back.
        gone = Conflict(
            "Something this request refers to was removed while it ran (for example, the "
            "subject was erased); nothing was stored."
        )
        return await _app_error(request, gone)
    if _unique_violation(exc):
        # Services look for what a creation would duplicate before writing, so this too is a
        # race: a concurrent request created the same key, ref or id between that look and the
        # insert. The transaction rolled back; sent again, the request gets its usual refusal.
        log.warning("a unique constraint refused a concurrent write: %s", _constraint(exc))
        taken = Conflict(
            "Another request created the same thing (the same key, ref or id) while this one "
            "ran; nothing was stored. Sent again, it is answered as that record now exists."
        )
        return await _app_error(request, taken)
    return await _unexpected(request, exc)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem_response(
        request,
        500,
        slug="internal",
        title="Internal error",
        detail="An unexpected error occurred; it has been logged.",
    )


def install_error_handlers(app: FastAPI, *, authenticate_first: RequestAuthentication) -> None:
    """Route every error through one problem-details shape; input refused before a route's
    dependencies ran is answered 401 first when ``authenticate_first`` refuses the caller."""
    app.state.authenticate_first = authenticate_first
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(StarletteHTTPException, _http_exception)
    for db_error in (PoolTimeoutError, ConnectionError, TimeoutError, OSError):
        app.add_exception_handler(db_error, _database_unavailable)
    app.add_exception_handler(DBAPIError, _database_error)
    # The driver's errors as SQLAlchemy's async adapters raise them where no SQLAlchemy
    # connection wraps them (a raw pool checkout): with their SQLSTATE, like the wrapped ones.
    app.add_exception_handler(EmulatedDBAPIException, _database_error)
    app.add_exception_handler(asyncpg.PostgresError, _database_error)
    app.add_exception_handler(asyncpg.InterfaceError, _database_error)
    app.add_exception_handler(asyncpg.InternalClientError, _database_error)  # raw driver reads
    app.add_exception_handler(Exception, _unexpected)


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries documenting problem responses of a route."""
    descriptions = {
        401: "Missing, malformed, unknown, expired or revoked API key.",
        403: "The API key lacks the scope this operation needs.",
        404: "No such resource in your tenant.",
        406: "The Accept header names no representation this operation has; `available` "
        "lists them.",
        409: "The request conflicts with the resource's current state.",
        412: "The If-Match ETag is stale.",
        413: "The request body is too large.",
        415: "The body's Content-Type is not one this operation accepts.",
        422: "The input is invalid; `errors` lists each offending field.",
        428: "This update requires an If-Match header.",
        429: "Rate limit exceeded; see Retry-After.",
        503: "The database is unavailable; retry after Retry-After seconds.",
    }
    return {
        s: {"model": Problem, "description": descriptions[s], "content": {PROBLEM_JSON: {}}}
        for s in statuses
    }
