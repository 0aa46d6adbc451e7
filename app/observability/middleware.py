"""The outermost layer of every HTTP request: its id, its metrics and its log line."""

import logging
import time
from collections.abc import Callable
from typing import Any

from starlette.routing import Match, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.config import Settings
from app.observability import context, metrics
from app.observability.context import REQUEST_ID_HEADER
from app.routing import leaf_routes

log = logging.getLogger("app.request")

UNMATCHED = "unmatched"
_HEADER = REQUEST_ID_HEADER.lower().encode("latin-1")


def route_template(scope: Scope) -> str:
    """The route a request matched, as its template (never the path, which holds refs)."""
    route = scope.get("route")
    if route is not None:
        return str(getattr(route, "path", UNMATCHED))
    # Answered before routing (a middleware refused it): find the route it would have taken.
    app = scope.get("app")
    for candidate in leaf_routes(getattr(getattr(app, "router", None), "routes", ())):
        match, _ = candidate.matches(scope)
        if match is Match.FULL:
            if isinstance(candidate, Mount):
                return f"{candidate.path}/{{path}}"
            return str(getattr(candidate, "path", UNMATCHED))
    return UNMATCHED


class Observe:
    """Give each request an id (the caller's X-Request-ID when it is safe), return it, count the
    request in the metrics and write one log line for it when it ends.

    It wraps the whole application, error handling included, so a 500 is counted, logged and
    carries its id like any other answer.
    """

    def __init__(
        self, app: ASGIApp, *, metrics_enabled: bool, log_requests: bool, tenant_label: bool
    ) -> None:
        self.app = app
        self.metrics_enabled = metrics_enabled
        self.log_requests = log_requests
        self.tenant_label = tenant_label

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        offered = None
        for name, value in scope["headers"]:
            if name == _HEADER:
                offered = value.decode("latin-1")
                break
        # Never reset: uvicorn runs each request in a task of its own, and a traceback it logs
        # after the app raised still belongs to this request.
        ctx = context.enter(context.accept_request_id(offered))
        header = (_HEADER, ctx.request_id.encode("ascii"))
        status = 500
        sent = 0

        async def observed(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
                # Sent from inside the request's span when traces wrap the app: note its ids.
                ids = context.current_trace()
                if ids is not None:
                    ctx.trace_id, ctx.span_id = ids
                message = {**message, "headers": [*message.get("headers", ()), header]}
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, observed)
        finally:
            self._finish(scope, ctx, status, sent, time.perf_counter() - started)

    def _finish(
        self, scope: Scope, ctx: context.RequestContext, status: int, sent: int, seconds: float
    ) -> None:
        route = route_template(scope)
        method: str = scope["method"]
        if self.metrics_enabled:
            tenant = str(ctx.tenant_id) if self.tenant_label and ctx.tenant_id else ""
            metrics.record_request(route, method, status, seconds, tenant)
        if self.log_requests:
            duration_ms = round(seconds * 1000, 2)
            extra: dict[str, Any] = {
                "route": route,
                "method": method,
                "status": status,
                "duration_ms": duration_ms,
                "bytes": sent,
            }
            log.info("%s %s %d %.1f ms", method, route, status, duration_ms, extra=extra)


def observed(build: Callable[[], ASGIApp], settings: Settings) -> Callable[[], ASGIApp]:
    """Starlette's middleware stack builder, with Observe around all of it."""

    def build_observed() -> ASGIApp:
        return Observe(
            build(),
            metrics_enabled=settings.metrics_enabled,
            log_requests=settings.log_requests,
            tenant_label=settings.metrics_tenant_label,
        )

    return build_observed
