"""Application factory: routers, error handlers, docs served offline, lifespan."""

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.resources import files
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import IntegrityError
from starlette.types import Receive, Scope, Send

from app.assessments.router import router as assessments_router
from app.audit.router import router as audit_router
from app.auth.dependencies import refuse_unauthenticated
from app.auth.keycache import KeyCache, start_key_listener, stop_key_listener
from app.auth.ratelimit import make_limiter
from app.auth.router import router as api_keys_router
from app.calibration.router import router as calibration_router
from app.calibration.sessions import router as calibration_sessions_router
from app.cohorts.router import router as cohorts_router
from app.config import Settings, get_settings
from app.db import create_engine, make_sessionmaker, unit_of_work
from app.errors import install_error_handlers
from app.frameworks import service as frameworks_service
from app.frameworks.router import router as frameworks_router
from app.health import router as health_router
from app.interop.router import router as interop_router
from app.limits import RequestGuards
from app.observability import metrics
from app.observability.middleware import observed
from app.observability.tracing import install_tracing, shutdown_tracing
from app.openapi_contract import operation_id, tidy_contract
from app.openapi_examples import add_examples
from app.openapi_links import add_links
from app.routing import leaf_routes
from app.scores.memo import ScoreMemo
from app.scores.router import router as scores_router
from app.subjects.router import router as subjects_router
from app.webhooks.dispatcher import Dispatcher
from app.webhooks.router import router as webhooks_router
from app.xapi.router import router as xapi_router
from app.xapi.statements import XAPI_PREFIX, version_header

log = logging.getLogger(__name__)

# The routers in the order the API reference lists their operations.
ROUTERS: tuple[APIRouter, ...] = (
    health_router,
    metrics.router,
    frameworks_router,
    interop_router,
    subjects_router,
    assessments_router,
    scores_router,
    cohorts_router,
    calibration_router,
    calibration_sessions_router,
    api_keys_router,
    audit_router,
    webhooks_router,
    xapi_router,
)
# A request is matched against the routes in the order they were included, each costing a
# couple of microseconds, so the reads dashboards poll (a person's score, gaps, plan, history)
# are included first; the OpenAPI document keeps the order above.
MATCHED_FIRST: tuple[APIRouter, ...] = (scores_router,)

DESCRIPTION = """
Open, explainable competency scoring over REST.

Store competency frameworks (career ladders) and assessments of people, then ask:
**where does this person stand** (readiness per level, attained level, level index),
**what is missing** for the next level (gap analysis), and **what to do next**
(a development plan with the projected effect of each step).

Every route except the health probes and these docs needs an API key:
`Authorization: Bearer <key>`. `make run` prints a development key.
Errors are `application/problem+json` (RFC 9457).
"""

STATIC_URL = "/_static"


# The cyclic garbage collector's young generation is collected every 700 allocations by
# default. A bulk request of 5,000 assessments allocates about a million objects, and those
# passes took two thirds of its CPU (measured: validating and preparing 5,000 assessments took
# 0.75 s with the default, 0.21 s with 10,000). Reference counting still frees almost everything
# at once; only cycles wait a little longer.
GC_YOUNG_THRESHOLD = 10_000


def tune_garbage_collector() -> None:
    """Collect the young generation less often, and never scan what start-up loaded."""
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    engine = create_engine(settings)
    app.state.engine = engine
    app.state.sessionmaker = make_sessionmaker(engine)
    metrics.instrument_pool(engine, settings)
    if settings.load_builtin_frameworks:
        try:
            async with unit_of_work(app.state.sessionmaker) as session:
                loaded = await frameworks_service.ensure_builtin(session)
        except IntegrityError:
            # Another worker starting at the same moment loaded them first.
            loaded = []
        if loaded:
            log.info("loaded built-in frameworks: %s", ", ".join(loaded))
    tune_garbage_collector()
    key_listener = start_key_listener(settings, app.state.key_cache)
    dispatcher_task = None
    if settings.webhooks_enabled:
        dispatcher = Dispatcher(app.state.sessionmaker, settings)
        dispatcher_task = asyncio.create_task(dispatcher.run_forever(), name="webhook-dispatcher")
    try:
        yield
    finally:
        await stop_key_listener(key_listener)
        if dispatcher_task is not None:
            dispatcher_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await dispatcher_task
            await dispatcher.aclose()
        await app.state.rate_limiter.aclose()
        shutdown_tracing(app.state.tracer_provider)  # exports buffered spans
        await engine.dispose()
        metrics.forget_pool(settings)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the ASGI app for the given settings (the environment's by default)."""
    settings = settings or get_settings()
    app = FastAPI(
        title="Competency Ladder",
        version="1.0.0",
        summary="Where does this person stand, what is missing, and what to do next.",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        license_info={"name": "Apache-2.0", "identifier": "Apache-2.0"},
        generate_unique_id_function=operation_id,
    )
    app.state.settings = settings
    app.state.rate_limiter = make_limiter(settings)
    app.state.score_memo = ScoreMemo(settings.score_cache_mb * 1024 * 1024)
    app.state.key_cache = KeyCache(settings.api_key_cache_seconds)  # trusted while listening
    install_error_handlers(app, authenticate_first=refuse_unauthenticated)
    # Response headers (nosniff, no-store), body size limit, invalid Unicode, Server-Timing:
    # one layer, so a request pays for one frame and one send wrapper.
    app.add_middleware(
        RequestGuards,
        max_bytes=settings.max_request_bytes,
        overrides={
            "/v1/assessments/bulk": settings.max_bulk_request_bytes,
            "/v1/subjects/bulk": settings.max_bulk_request_bytes,
        },
        protocol_headers={XAPI_PREFIX: version_header},
    )
    # Traces (off unless OTEL_* asks for them) wrap Starlette's error handling; the request
    # log and metrics wrap them.
    app.state.tracer_provider = install_tracing(app)
    # Around Starlette's own error handling too, so a 500 is counted and logged with its id.
    app.build_middleware_stack = observed(app.build_middleware_stack, settings)  # type: ignore[method-assign]
    for router in sorted(ROUTERS, key=lambda r: r not in MATCHED_FIRST):
        app.include_router(router)
    _install_openapi_extras(app)
    if settings.docs_enabled:
        _mount_docs(app)
    return app


def in_reference_order(schema: dict[str, Any]) -> dict[str, Any]:
    """The document with its paths grouped in the order of ``ROUTERS`` (each router's own
    order kept), whatever order the routers are matched in."""
    owner: dict[str, int] = {}
    for index, router in enumerate(ROUTERS):
        for route in leaf_routes(router.routes):
            if isinstance(path := getattr(route, "path_format", None), str):
                owner.setdefault(path, index)
    paths = schema.get("paths", {})
    schema["paths"] = dict(sorted(paths.items(), key=lambda item: owner.get(item[0], len(owner))))
    return schema


def _install_openapi_extras(app: FastAPI) -> None:
    """Links, recorded examples and the client-facing contract (FastAPI cannot declare them)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = in_reference_order(generate())
            app.openapi_schema = add_examples(add_links(tidy_contract(schema)))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


# ReDoc's bundle draws its sidebar footer logo from its vendor's CDN, with no option to turn it
# off: the page would ask the internet for it. The bundle is served with that one address
# replaced by an empty local image.
REDOC_BUNDLE = "redoc.standalone.js"
REDOC_CDN_LOGO = b"https://cdn.redoc.ly/redoc/logo-mini.svg"
EMPTY_SVG = b"data:image/svg+xml,%3Csvg%20xmlns%3D%22http%3A%2F%2Fwww.w3.org%2F2000%2Fsvg%22%2F%3E"


class DocsAssets:
    """The docs' static assets from the installed wheel, ReDoc's bundle without its CDN logo."""

    def __init__(self, directory: str) -> None:
        self.files = StaticFiles(directory=directory)
        bundle = (Path(directory) / REDOC_BUNDLE).read_bytes()
        self.redoc = Response(
            bundle.replace(REDOC_CDN_LOGO, EMPTY_SVG), media_type="text/javascript"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].endswith(f"/{REDOC_BUNDLE}"):
            await self.redoc(scope, receive, send)
        else:
            await self.files(scope, receive, send)


# Swagger UI shows an `image/svg+xml` answer as XML source. This plugin draws the chart above
# the source (as an image from a data: URL, so its scripts, if it had any, would not run).
SVG_PREVIEW = """<script>
const LadderSvgPreview = () => ({
  wrapComponents: {
    responseBody: (Original, system) => (props) => {
      const React = system.React;
      const type = String(props.contentType || "").split(";")[0].trim().toLowerCase();
      if (type !== "image/svg+xml" || typeof props.content !== "string") {
        return React.createElement(Original, props);
      }
      const src = "data:image/svg+xml;charset=utf-8," + encodeURIComponent(props.content);
      return React.createElement("div", null,
        React.createElement("img", {src: src, alt: "The SVG answer, drawn", className: "svg-preview"}),
        React.createElement(Original, props));
    },
  },
});
</script>
"""


def _with_svg_preview(page: str) -> str:
    """The Swagger UI page with the SVG preview plugin defined and registered."""
    marker = "const ui = SwaggerUIBundle({"
    if marker not in page:  # another FastAPI page layout: the docs work as before, without it
        return page
    page = page.replace("<script>", SVG_PREVIEW + "<script>", 1)
    return page.replace(marker, marker + "\n    plugins: [LadderSvgPreview],", 1)


def _mount_docs(app: FastAPI) -> None:
    """Swagger UI and ReDoc from assets shipped in an installed wheel: no CDN, works offline."""
    assets = files("fastapi_offline") / "static"
    app.mount(STATIC_URL, DocsAssets(str(assets)), name="static")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        page = get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=f"{app.title} — API docs",
            swagger_js_url=f"{STATIC_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{STATIC_URL}/swagger-ui.css",
            swagger_favicon_url=f"{STATIC_URL}/favicon.png",
            swagger_ui_parameters={"persistAuthorization": True, "displayRequestDuration": True},
        )
        return HTMLResponse(_with_svg_preview(bytes(page.body).decode()))

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        page = get_redoc_html(
            openapi_url="/openapi.json",
            title=f"{app.title} — reference",
            redoc_js_url=f"{STATIC_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{STATIC_URL}/favicon.png",
            with_google_fonts=False,
        )
        page.headers["Content-Security-Policy"] = "img-src 'self' data:"
        return page
