"""The request a line of work belongs to: its id, and the caller once authenticated.

The id comes from the caller's ``X-Request-ID`` when it is a plausible id (bounded length, a
safe character set), otherwise a new one is made. It is kept in a context variable for the
request's duration, so every log line and problem response of that request can carry it.
"""

import re
import uuid
from contextvars import ContextVar
from dataclasses import dataclass

from opentelemetry import trace

REQUEST_ID_HEADER = "X-Request-ID"
MAX_REQUEST_ID_LENGTH = 128
# Letters, digits and the separators of common id formats (UUIDs, ULIDs, hex, base64url, the
# load balancers' own): nothing that could break a log line or a header.
_SAFE_ID = re.compile(rf"[A-Za-z0-9._:=+/\-]{{1,{MAX_REQUEST_ID_LENGTH}}}")


@dataclass(slots=True)
class RequestContext:
    """What the logs may say about the request in progress (never who it is about)."""

    request_id: str
    tenant_id: uuid.UUID | None = None
    key_id: uuid.UUID | None = None
    # The trace the request's span belongs to (traces on), seen when the answer started: the
    # request line is written after that span has ended.
    trace_id: str | None = None
    span_id: str | None = None


_current: ContextVar[RequestContext | None] = ContextVar("request_context", default=None)


def accept_request_id(offered: str | None) -> str:
    """The caller's request id if it is safe to repeat, else a new one."""
    if offered is not None and _SAFE_ID.fullmatch(offered):
        return offered
    return uuid.uuid4().hex


def current() -> RequestContext | None:
    """The request in progress in this task, if any."""
    return _current.get()


def current_request_id() -> str | None:
    """The id of the request in progress, if any."""
    ctx = _current.get()
    return ctx.request_id if ctx is not None else None


def note_caller(tenant_id: uuid.UUID, key_id: uuid.UUID | None) -> None:
    """Record who the request in progress was authenticated as (for its log line)."""
    ctx = _current.get()
    if ctx is not None:
        ctx.tenant_id, ctx.key_id = tenant_id, key_id


def current_trace() -> tuple[str, str] | None:
    """The trace and span ids (hex) of the span current in this task, if traces are on."""
    span = trace.get_current_span().get_span_context()
    if not span.is_valid:
        return None
    return format(span.trace_id, "032x"), format(span.span_id, "016x")


def enter(request_id: str) -> RequestContext:
    """Start a request's context in the current task."""
    ctx = RequestContext(request_id)
    _current.set(ctx)
    return ctx
